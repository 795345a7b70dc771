package fakes

import (
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// handler answers one request at negotiated server version v.
type handler func(sc Script, v int, fields []string) [][]string

// handlers holds what the gateway answers to each request it serves. A
// request whose id is missing here is answered by unserved.
var handlers map[int]handler

func init() {
	silent := func(Script, int, []string) [][]string { return nil }
	handlers = map[int]handler{
		inReqCurrentTime: func(Script, int, []string) [][]string {
			return [][]string{currentTimeFields(time.Now())}
		},
		inReqManagedAccts: func(sc Script, _ int, _ []string) [][]string {
			return [][]string{managedAcctsFields(sc.Accounts)}
		},
		inReqPositions:      replyPositions,
		inReqAccountSummary: replyAccountSummary,
		inReqAcctData:       replyAccountUpdates,
		inReqExecutions:     replyExecutions,
		// PLACE_ORDER, CANCEL_ORDER, REQ_IDS and the order lists are served by
		// the order simulator (orderHandlers in orders.go).
		// REQ_AUTO_OPEN_ORDERS binds future TWS orders; real TWS answers
		// nothing (only client 0 may send it, and there are none to bind).
		inReqAutoOpenOrders: silent,
		// REQ_MARKET_DATA_TYPE only sets the type of later market data
		// (announced by MARKET_DATA_TYPE on each REQ_MKT_DATA): no reply.
		inReqMarketDataType:   silent,
		inReqPositionsMulti:   replyPositionsMulti,
		inReqAcctUpdatesMulti: replyAccountUpdatesMulti,
		inReqPnL:              replyPnL,
		inReqPnLSingle:        replyPnLSingle,
		// Cancellations of subscriptions: real TWS confirms none of them.
		inCancelPositions:     silent,
		inCancelAccountSumm:   silent,
		inCancelPositionsMult: silent,
		inCancelAcctUpdsMulti: silent,
		inCancelPnL:           silent,
		inCancelPnLSingle:     silent,
		inCancelMktData:       silent,
		inCancelHistorical:    silent,
	}
	registerMarketData() // pacing.go
}

// contractRequests are requests for data on a contract: the fake knows no
// contract definitions, so each gets the error real TWS sends for an unknown
// contract.
var contractRequests = map[int]bool{
	inReqMktData: true, inReqContractData: true, inReqMktDepth: true, inReqHistoricalData: true,
	inReqRealTimeBars: true, inReqSecDefOptParams: true, inReqHeadTimestamp: true, inReqHistoricalTicks: true,
	inReqTickByTick: true,
}

// reqIDField says where a request carries its request id (or order id), for
// errors about it; requests missing here carry none.
var reqIDField = map[int]int{
	inReqMktData: 2, inCancelMktData: 2, inCancelOrder: 2, inReqExecutions: 2, inReqContractData: 2,
	inReqMktDepth: 2, inReqHistoricalData: 1, inCancelHistorical: 2, inReqRealTimeBars: 2,
	inReqAccountSummary: 2, inCancelAccountSumm: 2, inReqPositionsMulti: 2, inCancelPositionsMult: 2,
	inReqAcctUpdatesMulti: 2, inCancelAcctUpdsMulti: 2, inReqSecDefOptParams: 1, inReqHeadTimestamp: 1,
	inReqPnL: 1, inCancelPnL: 1, inReqPnLSingle: 1, inCancelPnLSingle: 1, inReqHistoricalTicks: 1,
	inReqTickByTick: 1,
}

// requestID returns the request id a text request carries at server version
// v, or -1.
func requestID(v int, fields []string) int64 {
	id, err := strconv.Atoi(field(fields, 0))
	if err != nil {
		return -1
	}
	i, ok := reqIDField[id]
	switch {
	case id == inPlaceOrder:
		i, ok = 1, true
		if v < minVerOrderContainer {
			i = 2
		}
	case id == inCancelOrder && v >= minVerCMETagging:
		i = 1
	case id == inReqHistoricalData && v <= minVerSyntRealtimeBars:
		i = 2
	}
	if !ok {
		return -1
	}
	return intField(fields, i, -1)
}

// field returns fields[i], or "" if there is no such field.
func field(fields []string, i int) string {
	if i < len(fields) {
		return fields[i]
	}
	return ""
}

// intField returns fields[i] as an integer, or def if it is missing or not one.
func intField(fields []string, i int, def int64) int64 {
	n, err := strconv.ParseInt(field(fields, i), 10, 64)
	if err != nil {
		return def
	}
	return n
}

// replies returns the messages that answer one request at server version v.
func replies(sc Script, v int, fields []string) [][]string {
	id, err := strconv.Atoi(fields[0])
	if err != nil {
		id = -1
	}
	if n := minFields[id]; len(fields) < n {
		// Short: typically a protobuf request (server version 201 and up)
		// whose body the fake does not decode yet. Never guess: say so.
		return [][]string{errorFields(v, requestID(v, fields), CodeValidationError,
			"Error validating request.-'"+fields[0]+"' : cause - the fake gateway cannot read message id "+
				fields[0]+" with "+itoa(len(fields))+" fields at server version "+itoa(v))}
	}
	if h, ok := handlers[id]; ok {
		return h(sc, v, fields)
	}
	return [][]string{unserved(v, id, fields)}
}

// minFields is how many text fields (id included) a handler needs to read a
// request; see replies.
var minFields = map[int]int{
	inReqAcctData: 4, inReqExecutions: 3, inReqOpenOrders: 2, inReqAllOpenOrders: 2, inReqAutoOpenOrders: 3,
	inReqCompletedOrders: 2, inReqMarketDataType: 3, inReqPositionsMulti: 5, inCancelPositionsMult: 3,
	inReqAcctUpdatesMulti: 6, inCancelAcctUpdsMulti: 3, inReqPnL: 4, inCancelPnL: 2, inReqPnLSingle: 5,
	inCancelPnLSingle: 2, inReqAccountSummary: 5,
}

// unserved is the error for a request the fake cannot serve: 200 for a
// contract it does not know, else 321 naming the message id, as real TWS
// answers a request it cannot validate.
func unserved(v, id int, fields []string) []string {
	if contractRequests[id] {
		return errorFields(v, requestID(v, fields), CodeNoSecurityDefinition, textNoSecurityDefinition)
	}
	return errorFields(v, -1, CodeValidationError,
		"Error validating request.-'"+field(fields, 0)+"' : cause - the fake gateway does not serve message id "+
			field(fields, 0))
}

func replyPositions(sc Script, _ int, _ []string) [][]string {
	out := make([][]string, 0, len(sc.Positions)+1)
	for _, p := range sc.Positions {
		out = append(out, positionFields(p))
	}
	return append(out, positionEndFields())
}

// replyAccountSummary answers "62,1,reqId,group,tags".
func replyAccountSummary(sc Script, _ int, fields []string) [][]string {
	reqID := field(fields, 2)
	var out [][]string
	eachSummaryRow(sc.Summary, field(fields, 4), func(account, tag string, v broker.SummaryValue) {
		out = append(out, accountSummaryFields(reqID, account, tag, v))
	})
	return append(out, accountSummaryEndFields(reqID))
}

// replyAccountUpdates answers REQ_ACCT_DATA "6,2,subscribe,account": on
// subscribe, the account's values (sorted by key), its portfolio, the update
// time and ACCT_DOWNLOAD_END; on unsubscribe nothing. An account the script
// does not manage gets error 321, as real TWS refuses it.
func replyAccountUpdates(sc Script, v int, fields []string) [][]string {
	if field(fields, 2) != "1" && !strings.EqualFold(field(fields, 2), "true") {
		return nil
	}
	account := field(fields, 3)
	if account == "" && len(sc.Accounts) == 1 {
		account = sc.Accounts[0]
	}
	if !slices.Contains(sc.Accounts, account) {
		return [][]string{errorFields(v, -1, CodeValidationError,
			"Error validating request.-'bB' : cause - Invalid account code "+account)}
	}
	var out [][]string
	for _, a := range sc.Summary {
		if a.Account != account {
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(a.Values)) {
			out = append(out, acctValueFields(key, a.Values[key], account))
		}
	}
	for _, p := range sc.Positions {
		if p.Account == account {
			out = append(out, portfolioValueFields(p, sc.mark(p)))
		}
	}
	return append(out, acctUpdateTimeFields(time.Now()), acctDownloadEndFields(account))
}

// replyExecutions answers "7,3,reqId,clientId,acctCode,time,symbol,secType,exchange,side".
func replyExecutions(sc Script, v int, fields []string) [][]string {
	reqID := field(fields, 2)
	var out [][]string
	for _, e := range sc.executions(intField(fields, 3, 0), field(fields, 4), field(fields, 5), field(fields, 6),
		field(fields, 7), field(fields, 8), field(fields, 9)) {
		out = append(out, executionFields(v, reqID, e), commissionReportFields(e))
	}
	return append(out, executionEndFields(reqID))
}

// replyPositionsMulti answers "74,1,reqId,account,modelCode": the positions of
// account ("" or "All": every account).
func replyPositionsMulti(sc Script, _ int, fields []string) [][]string {
	reqID, account, model := field(fields, 2), field(fields, 3), field(fields, 4)
	var out [][]string
	for _, p := range sc.Positions {
		if account == "" || strings.EqualFold(account, "All") || p.Account == account {
			out = append(out, positionMultiFields(reqID, p, model))
		}
	}
	return append(out, positionMultiEndFields(reqID))
}

// replyAccountUpdatesMulti answers "76,1,reqId,account,modelCode,ledgerAndNLV":
// the account's values sorted by key ("" or "All": every account).
func replyAccountUpdatesMulti(sc Script, _ int, fields []string) [][]string {
	reqID, account, model := field(fields, 2), field(fields, 3), field(fields, 4)
	var out [][]string
	for _, a := range sc.Summary {
		if account != "" && !strings.EqualFold(account, "All") && a.Account != account {
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(a.Values)) {
			out = append(out, accountUpdateMultiFields(reqID, a.Account, model, key, a.Values[key]))
		}
	}
	return append(out, accountUpdateMultiEndFields(reqID))
}

// replyPnL answers "92,reqId,account,modelCode" with one PNL: the sums of the
// account's marks.
func replyPnL(sc Script, v int, fields []string) [][]string {
	reqID, account := field(fields, 1), field(fields, 2)
	if !slices.Contains(sc.Accounts, account) {
		return [][]string{errorFields(v, intField(fields, 1, -1), CodeValidationError,
			"Error validating request.-'bq' : cause - Invalid account code "+account)}
	}
	daily, unreal, real := new(big.Rat), new(big.Rat), new(big.Rat)
	for _, p := range sc.Positions {
		if p.Account == account {
			m := sc.mark(p)
			daily.Add(daily, m.DailyPnL.Rat())
			unreal.Add(unreal, m.UnrealizedPnL.Rat())
			real.Add(real, m.RealizedPnL.Rat())
		}
	}
	return [][]string{pnlFields(v, reqID, ratDecimal(daily), ratDecimal(unreal), ratDecimal(real))}
}

// replyPnLSingle answers "94,reqId,account,modelCode,conId" with one
// PNL_SINGLE for that position; a position the account does not hold gets
// error 200, as real TWS gives for a contract it cannot find.
func replyPnLSingle(sc Script, v int, fields []string) [][]string {
	reqID, account, conID := field(fields, 1), field(fields, 2), intField(fields, 4, -1)
	for _, p := range sc.Positions {
		if p.Account == account && p.Contract.ConID == conID {
			return [][]string{pnlSingleFields(v, reqID, p, sc.mark(p))}
		}
	}
	return [][]string{errorFields(v, intField(fields, 1, -1), CodeNoSecurityDefinition, textNoSecurityDefinition)}
}

// eachSummaryRow calls emit for each row a gateway answers to a summary request
// for the comma-separated tagList: for each account in script order, the
// requested tags in request order, each once, skipping tags the account lacks; a
// tag starting with "$" ($LEDGER, $LEDGER:ALL, ...) stands for all of the
// account's tags, sorted. Gateway and Memory share it so that they agree.
func eachSummaryRow(summary []broker.AccountSummary, tagList string, emit func(account, tag string, v broker.SummaryValue)) {
	var tags []string
	for t := range strings.SplitSeq(tagList, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	for _, a := range summary {
		seen := map[string]bool{}
		one := func(tag string) {
			v, ok := a.Values[tag]
			if !ok || seen[tag] {
				return
			}
			seen[tag] = true
			emit(a.Account, tag, v)
		}
		for _, t := range tags {
			if strings.HasPrefix(t, "$") {
				for _, all := range slices.Sorted(maps.Keys(a.Values)) {
					one(all)
				}
				continue
			}
			one(t)
		}
	}
}
