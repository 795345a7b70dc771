package ibkr

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scmhub/ibapi"
	"github.com/scmhub/ibapi/protobuf"
	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/broker"
)

// The request/answer market data operations: contract details, snapshots,
// historical bars and the market data type. Each waits for IB's pacing first
// (pacing.go), with the wait counted in the caller's context.

// ContractDetails implements broker.Broker with REQ_CONTRACT_DATA under a fresh
// request id, collecting CONTRACT_DATA rows until CONTRACT_DATA_END. Error 200
// (nothing matches) is broker.ErrNotFound.
func (a *Adapter) ContractDetails(ctx context.Context, c broker.Contract) ([]broker.ContractDetails, error) {
	if err := checkContract(c); err != nil {
		return nil, err
	}
	s, id, err := a.startPaced(ctx)
	if err != nil {
		return nil, err
	}
	r := &contractReq{done: make(chan struct{}), version: s.info().ServerVersion}
	if err := s.startByID(id, r, reqContractData(s.info().ServerVersion, id, c)); err != nil {
		return nil, err
	}
	if err := s.waitByID(ctx, "contract details", id, r.done, request{}); err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, fmt.Errorf("ibkr: contract details: %w", r.err)
	}
	return r.rows, nil
}

// Snapshot implements broker.Broker with a snapshot REQ_MKT_DATA under a fresh
// request id, collecting ticks until TICK_SNAPSHOT_END. If ctx ends first the
// request is cancelled with CANCEL_MKT_DATA. Warnings 10090 (part of the data
// not subscribed) and 10167 (delayed data
// displayed) does not end the request.
func (a *Adapter) Snapshot(ctx context.Context, c broker.Contract) (broker.Quote, error) {
	if err := checkContract(c); err != nil {
		return broker.Quote{}, err
	}
	s, id, err := a.startPaced(ctx)
	if err != nil {
		return broker.Quote{}, err
	}
	r := &snapReq{done: make(chan struct{}), q: broker.Quote{Contract: c}}
	if err := s.startMktData(ctx, "snapshot", id, r, c, true, r.done); err != nil {
		return broker.Quote{}, err
	}
	if r.err != nil {
		return broker.Quote{}, fmt.Errorf("ibkr: snapshot: %w", r.err)
	}
	r.q.Time = time.Now().UTC()
	return r.q, nil
}

// HistoricalBars implements broker.Broker with REQ_HISTORICAL_DATA (dates as
// epoch seconds, formatDate 2) under a fresh request id, collecting
// HISTORICAL_DATA until its end. Besides the message rate, the call waits for
// IB's historical pacing (WithPacing): no more than HistoricalRequests within
// HistoricalWindow from this adapter, and none identical to one made within
// IdenticalWithin. Other clients of the same gateway count against IB's
// limit too; the adapter cannot see them.
func (a *Adapter) HistoricalBars(ctx context.Context, c broker.Contract, q broker.BarsRequest) ([]broker.Bar, error) {
	if err := checkContract(c); err != nil {
		return nil, err
	}
	if err := checkBars(&q); err != nil {
		return nil, err
	}
	if _, err := a.live(); err != nil {
		return nil, err
	}
	h := reqHistorical(0, 0, c, q)
	if err := a.pace.waitHistorical(ctx, strings.Join(h.fields[1:], "\x00")); err != nil {
		return nil, err
	}
	s, id, err := a.startPaced(ctx)
	if err != nil {
		return nil, err
	}
	r := &barsReq{done: make(chan struct{}), daily: dailyBars(q.BarSize)}
	if err := s.startByID(id, r, reqHistorical(s.info().ServerVersion, id, c, q)); err != nil {
		return nil, err
	}
	if err := s.waitByID(ctx, "historical bars", id, r.done, request{}); err != nil {
		if ctx.Err() != nil {
			_ = s.sendLocked(cancelHistorical(id))
		}
		return nil, err
	}
	if r.err != nil {
		return nil, fmt.Errorf("ibkr: historical bars: %w", r.err)
	}
	return r.bars, nil
}

// SetMarketDataType implements broker.Broker with REQ_MARKET_DATA_TYPE; the
// gateway answers nothing, and later requests on the socket see the new type.
func (a *Adapter) SetMarketDataType(ctx context.Context, t broker.MarketDataType) error {
	if !t.Valid() {
		return fmt.Errorf("%w: market data type %d", broker.ErrInvalidArgument, int(t))
	}
	s, err := a.live()
	if err != nil {
		return err
	}
	if err := a.pace.wait(ctx, 1); err != nil {
		return err
	}
	req := reqMarketDataType(int64(t))
	req.paced = true
	return s.sendLocked(req)
}

// startPaced waits for a message slot and returns the live session and a fresh
// request id.
func (a *Adapter) startPaced(ctx context.Context) (*session, int64, error) {
	s, err := a.live()
	if err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if err := a.pace.wait(ctx, 1); err != nil {
		return nil, 0, err
	}
	return s, a.reqIDs.Add(1), nil
}

// checkContract refuses a contract that names no instrument, or holds text the
// wire cannot carry.
func checkContract(c broker.Contract) error {
	if c.ConID <= 0 && c.Symbol == "" && c.LocalSymbol == "" {
		return fmt.Errorf("%w: the contract names no instrument (no con id, symbol or local symbol)", broker.ErrInvalidArgument)
	}
	for _, f := range []string{c.Symbol, c.SecType, c.Expiry, c.Right, c.Multiplier, c.Exchange, c.Currency, c.LocalSymbol, c.TradingClass} {
		if strings.ContainsRune(f, 0) {
			return fmt.Errorf("%w: NUL in contract field %q", broker.ErrInvalidArgument, f)
		}
	}
	return nil
}

// checkBars refuses a malformed request and fills WhatToShow's default.
func checkBars(q *broker.BarsRequest) error {
	if q.WhatToShow == "" {
		q.WhatToShow = "TRADES"
	}
	for _, f := range []string{q.Duration, q.BarSize, q.WhatToShow} {
		if strings.TrimSpace(f) == "" || strings.ContainsRune(f, 0) {
			return fmt.Errorf("%w: bars request %+v", broker.ErrInvalidArgument, *q)
		}
	}
	return nil
}

// contractFields are the 12 contract fields of REQ_MKT_DATA, REQ_CONTRACT_DATA
// and REQ_HISTORICAL_DATA, as scmhub encodes them.
func contractFields(c broker.Contract) []string {
	strike := "0"
	if !c.Strike.IsZero() {
		strike = c.Strike.String()
	}
	return []string{strconv.FormatInt(c.ConID, 10), c.Symbol, c.SecType, c.Expiry, strike, c.Right, c.Multiplier,
		c.Exchange, "", c.Currency, c.LocalSymbol, c.TradingClass}
}

// contractPB is scmhub's createContractProto for the fields brokerkit sets.
func contractPB(c broker.Contract) *protobuf.Contract {
	p := &protobuf.Contract{ConId: proto.Int32(int32(c.ConID)), Symbol: optString(c.Symbol), SecType: optString(c.SecType),
		LastTradeDateOrContractMonth: optString(c.Expiry), Strike: proto.Float64(c.Strike.Float64()),
		Right: optString(c.Right), Exchange: optString(c.Exchange), Currency: optString(c.Currency),
		LocalSymbol: optString(c.LocalSymbol), TradingClass: optString(c.TradingClass)}
	if m, err := strconv.ParseFloat(c.Multiplier, 64); err == nil {
		p.Multiplier = &m
	}
	return p
}

// scmhubContract is c as scmhub's Contract, for its request methods.
func scmhubContract(c broker.Contract) *ibapi.Contract {
	ic := ibapi.NewContract()
	ic.ConID, ic.Symbol, ic.SecType, ic.LastTradeDateOrContractMonth = c.ConID, c.Symbol, c.SecType, c.Expiry
	ic.Strike, ic.Right, ic.Multiplier, ic.Exchange = c.Strike.Float64(), c.Right, c.Multiplier, c.Exchange
	ic.Currency, ic.LocalSymbol, ic.TradingClass = c.Currency, c.LocalSymbol, c.TradingClass
	return ic
}

func reqContractData(v int, id int64, c broker.Contract) request {
	f := append([]string{"8", strconv.FormatInt(id, 10)}, contractFields(c)...)
	f = append(f, "0", "", "") // includeExpired, secIdType, secId
	if v >= int(ibapi.MIN_SERVER_VER_BOND_ISSUERID) {
		f = append(f, "")
	}
	return request{id: ibapi.REQ_CONTRACT_DATA, fields: f,
		pb: func() proto.Message {
			return &protobuf.ContractDataRequest{ReqId: proto.Int32(int32(id)), Contract: contractPB(c)}
		},
		call: func(ec *ibapi.EClient) { ec.ReqContractDetails(id, scmhubContract(c)) }}
}

// startMktData sends REQ_MKT_DATA (a snapshot or a stream) for r under id
// and waits until done is closed: the snapshot's end, or a stream's first
// answer. If ctx ends first, the request is dropped and cancelled with
// CANCEL_MKT_DATA. Snapshot and SubscribeQuotes share it.
func (s *session) startMktData(ctx context.Context, what string, id int64, r idRequest, c broker.Contract, snapshot bool, done <-chan struct{}) error {
	if err := s.startByID(id, r, reqMktData(s.info().ServerVersion, id, c, snapshot)); err != nil {
		return err
	}
	if err := s.waitByID(ctx, what, id, done, request{}); err != nil {
		if ctx.Err() != nil {
			_ = s.sendLocked(cancelMktData(id))
		}
		return err
	}
	return nil
}

// reqMktData is REQ_MKT_DATA for c: a snapshot (ended by TICK_SNAPSHOT_END) or
// a stream (ended by CANCEL_MKT_DATA).
func reqMktData(v int, id int64, c broker.Contract, snapshot bool) request {
	snap := "0"
	if snapshot {
		snap = "1"
	}
	f := append([]string{"11", strconv.FormatInt(id, 10)}, contractFields(c)...)
	f = append(f, "0", "", snap) // no delta neutral contract, generic ticks, snapshot
	if v >= int(ibapi.MIN_SERVER_VER_REQ_SMART_COMPONENTS) {
		f = append(f, "0") // regulatory snapshot
	}
	f = append(f, "") // options
	return request{id: ibapi.REQ_MKT_DATA, fields: f, paced: true,
		pb: func() proto.Message {
			return &protobuf.MarketDataRequest{ReqId: proto.Int32(int32(id)), Contract: contractPB(c), Snapshot: optBool(snapshot)}
		},
		call: func(ec *ibapi.EClient) { ec.ReqMktData(id, scmhubContract(c), "", snapshot, false, nil) }}
}

func cancelMktData(id int64) request {
	return request{id: ibapi.CANCEL_MKT_DATA, fields: []string{"2", strconv.FormatInt(id, 10)},
		pb:   func() proto.Message { return &protobuf.CancelMarketData{ReqId: proto.Int32(int32(id))} },
		call: func(ec *ibapi.EClient) { ec.CancelMktData(id) }}
}

func reqMarketDataType(t int64) request {
	return request{id: ibapi.REQ_MARKET_DATA_TYPE, fields: []string{"1", strconv.FormatInt(t, 10)},
		pb:   func() proto.Message { return &protobuf.MarketDataTypeRequest{MarketDataType: proto.Int32(int32(t))} },
		call: func(ec *ibapi.EClient) { ec.ReqMarketDataType(t) }}
}

// barsEnd is the end of a bars window as REQ_HISTORICAL_DATA takes it ("" is now).
func barsEnd(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("20060102 15:04:05") + " UTC"
}

func reqHistorical(v int, id int64, c broker.Contract, q broker.BarsRequest) request {
	var f []string
	if v <= int(ibapi.MIN_SERVER_VER_SYNT_REALTIME_BARS) {
		f = append(f, "6")
	}
	f = append(f, strconv.FormatInt(id, 10))
	f = append(f, contractFields(c)...)
	rth := "0"
	if q.UseRTH {
		rth = "1"
	}
	end := barsEnd(q.End)
	f = append(f, "0", end, q.BarSize, q.Duration, rth, q.WhatToShow, "2")
	if v >= int(ibapi.MIN_SERVER_VER_SYNT_REALTIME_BARS) {
		f = append(f, "0") // keepUpToDate
	}
	f = append(f, "") // chart options
	return request{id: ibapi.REQ_HISTORICAL_DATA, fields: f, paced: true,
		pb: func() proto.Message {
			return &protobuf.HistoricalDataRequest{ReqId: proto.Int32(int32(id)), Contract: contractPB(c),
				EndDateTime: optString(end), Duration: optString(q.Duration), BarSizeSetting: optString(q.BarSize),
				WhatToShow: optString(q.WhatToShow), UseRTH: optBool(q.UseRTH), FormatDate: proto.Int32(2)}
		},
		call: func(ec *ibapi.EClient) {
			ec.ReqHistoricalData(id, scmhubContract(c), end, q.Duration, q.BarSize, q.WhatToShow, q.UseRTH, 2, false, nil)
		}}
}

func cancelHistorical(id int64) request {
	return request{id: ibapi.CANCEL_HISTORICAL_DATA, fields: []string{"1", strconv.FormatInt(id, 10)},
		pb:   func() proto.Message { return &protobuf.CancelHistoricalData{ReqId: proto.Int32(int32(id))} },
		call: func(ec *ibapi.EClient) { ec.CancelHistoricalData(id) }}
}

// dailyBars reports whether IB dates bars of this size by day ("1 day",
// "1 week", "1 month"): those come as "yyyymmdd" whatever formatDate says.
func dailyBars(barSize string) bool {
	s := strings.ToLower(barSize)
	return strings.Contains(s, "day") || strings.Contains(s, "week") || strings.Contains(s, "month")
}

// optBool is nil for false, as scmhub leaves false out of its protobuf requests.
func optBool(b bool) *bool {
	if !b {
		return nil
	}
	return &b
}
