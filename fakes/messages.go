package fakes

import (
	"strconv"
	"strings"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// This file holds every message the gateway sends after the handshake: one
// function per message, returning its fields in the text encoding of server
// version v (below 201). Layouts follow scmhub/ibapi's decoder.go and
// @stoqey/ib's decoder.js; the tests decode each with scmhub and count fields.

// Per-request errors real TWS sends, with its texts: broker's IB codes
// (broker/ibcodes.go) under the names fakes gives them.
const (
	// CodeNoSecurityDefinition answers a request for a contract the gateway does not know.
	CodeNoSecurityDefinition = broker.IBCodeNoSecurityDefinition
	// CodeValidationError answers a request the gateway refuses to serve
	// (real TWS: read-only API, or a request it cannot validate).
	CodeValidationError = broker.IBCodeValidationError
	// CodeOrderNotFound answers CANCEL_ORDER for an order that does not exist.
	CodeOrderNotFound = broker.IBCodeOrderNotFound
)

const (
	textNoSecurityDefinition = "No security definition has been found for the request"
	textReadOnly             = "Error validating request.-'bW' : cause - The API interface is currently in Read-Only mode."
)

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// errorFields is ERR_MSG: "4,2,id,code,msg[,advancedOrderRejectJson]" below
// 194, "4,id,code,msg,json,errorTimeMs" from 194.
func errorFields(v int, id, code int64, msg string) []string {
	switch {
	case v >= minVerErrorTime:
		return []string{itoa(outErrMsg), i64(id), i64(code), msg, "", i64(time.Now().UnixMilli())}
	case v >= minVerAdvancedReject:
		return []string{itoa(outErrMsg), "2", i64(id), i64(code), msg, ""}
	default:
		return []string{itoa(outErrMsg), "2", i64(id), i64(code), msg}
	}
}

// managedAcctsFields is MANAGED_ACCTS "15,1,DU1,DU2".
func managedAcctsFields(accounts []string) []string {
	return []string{itoa(outManagedAccts), "1", strings.Join(accounts, ",")}
}

// nextValidIDFields is NEXT_VALID_ID "9,1,orderId".
func nextValidIDFields(id int64) []string { return []string{itoa(outNextValidID), "1", i64(id)} }

// currentTimeFields is CURRENT_TIME "49,1,unixSeconds".
func currentTimeFields(t time.Time) []string {
	return []string{itoa(outCurrentTime), "1", i64(t.Unix())}
}

// positionFields is POSITION_DATA version 3: 16 fields, no primaryExch.
func positionFields(p broker.Position) []string {
	c := p.Contract
	return []string{
		itoa(outPositionData), "3", p.Account,
		i64(c.ConID), c.Symbol, c.SecType, c.Expiry, c.Strike.String(), c.Right, c.Multiplier,
		c.Exchange, c.Currency, c.LocalSymbol, c.TradingClass,
		p.Quantity.String(), p.AvgCost.String(),
	}
}

// positionEndFields is POSITION_END "62,1".
func positionEndFields() []string { return []string{itoa(outPositionEnd), "1"} }

// accountSummaryFields is ACCOUNT_SUMMARY "63,1,reqId,account,tag,value,currency".
func accountSummaryFields(reqID, account, tag string, v broker.SummaryValue) []string {
	return []string{itoa(outAccountSummary), "1", reqID, account, tag, v.Value, v.Currency}
}

// accountSummaryEndFields is ACCOUNT_SUMMARY_END "64,1,reqId".
func accountSummaryEndFields(reqID string) []string {
	return []string{itoa(outAccountSummaryEnd), "1", reqID}
}

// acctValueFields is ACCT_VALUE version 2: "6,2,key,value,currency,account".
func acctValueFields(key string, v broker.SummaryValue, account string) []string {
	return []string{itoa(outAcctValue), "2", key, v.Value, v.Currency, account}
}

// portfolioValueFields is PORTFOLIO_VALUE version 8 (20 fields): the contract
// with multiplier, primaryExch and tradingClass, position, market price and
// value, average cost, unrealized and realized PnL, account.
func portfolioValueFields(p broker.Position, m Mark) []string {
	c := p.Contract
	return []string{
		itoa(outPortfolioValue), "8",
		i64(c.ConID), c.Symbol, c.SecType, c.Expiry, c.Strike.String(), c.Right, c.Multiplier, c.Exchange,
		c.Currency, c.LocalSymbol, c.TradingClass,
		p.Quantity.String(), m.MarketPrice.String(), m.MarketValue.String(), p.AvgCost.String(),
		m.UnrealizedPnL.String(), m.RealizedPnL.String(), p.Account,
	}
}

// acctUpdateTimeFields is ACCT_UPDATE_TIME "8,1,HH:mm".
func acctUpdateTimeFields(t time.Time) []string {
	return []string{itoa(outAcctUpdateTime), "1", t.Format("15:04")}
}

// acctDownloadEndFields is ACCT_DOWNLOAD_END "54,1,account".
func acctDownloadEndFields(account string) []string {
	return []string{itoa(outAcctDownloadEnd), "1", account}
}

// openOrderEndFields is OPEN_ORDER_END "53,1".
func openOrderEndFields() []string { return []string{itoa(outOpenOrderEnd), "1"} }

// completedOrdersEndFields is COMPLETED_ORDERS_END "102": no version field.
func completedOrdersEndFields() []string { return []string{itoa(outCompletedOrdersEnd)} }

// executionFields is EXECUTION_DATA. Below 136 it carries version 10; from
// 136 it has no version field and gains lastLiquidity; modelCode from 103,
// pendingPriceRevision from 178, submitter from 198.
func executionFields(v int, reqID string, e Execution) []string {
	c := e.Contract
	f := []string{itoa(outExecutionData)}
	if v < minVerLastLiquidity {
		f = append(f, "10")
	}
	cum, avg := e.CumQty, e.AvgPrice
	if cum.IsZero() {
		cum = e.Shares
	}
	if avg.IsZero() {
		avg = e.Price
	}
	f = append(f, reqID, i64(e.OrderID),
		i64(c.ConID), c.Symbol, c.SecType, c.Expiry, c.Strike.String(), c.Right, c.Multiplier, c.Exchange,
		c.Currency, c.LocalSymbol, c.TradingClass,
		e.ExecID, e.Time, e.Account, e.Exchange, e.Side, e.Shares.String(), e.Price.String(),
		i64(e.PermID), i64(e.ClientID), "0", cum.String(), avg.String(), e.OrderRef, "", "")
	if v >= minVerModelsSupport {
		f = append(f, "")
	}
	if v >= minVerLastLiquidity {
		f = append(f, "1") // 1: added liquidity
	}
	if v >= minVerPendingPriceRev {
		f = append(f, "0")
	}
	if v >= minVerSubmitter {
		f = append(f, "")
	}
	return f
}

// commissionReportFields is COMMISSION_REPORT version 1: "59,1,execId,
// commission,currency,realizedPNL,yield,yieldRedemptionDate". Real TWS sends
// the largest double for "no value" (yield, and realized PnL of an opening fill).
func commissionReportFields(e Execution) []string {
	const unsetDouble = "1.7976931348623157E308"
	realized := unsetDouble
	if !e.RealizedPnL.IsZero() {
		realized = e.RealizedPnL.String()
	}
	return []string{itoa(outCommissionReport), "1", e.ExecID, e.Commission.String(), e.CommissionCurrency,
		realized, unsetDouble, "0"}
}

// executionEndFields is EXECUTION_DATA_END "55,1,reqId".
func executionEndFields(reqID string) []string {
	return []string{itoa(outExecutionDataEnd), "1", reqID}
}

// positionMultiFields is POSITION_MULTI version 1: "71,1,reqId,account,
// contract (11 fields, no primaryExch),position,avgCost,modelCode".
func positionMultiFields(reqID string, p broker.Position, modelCode string) []string {
	c := p.Contract
	return []string{
		itoa(outPositionMulti), "1", reqID, p.Account,
		i64(c.ConID), c.Symbol, c.SecType, c.Expiry, c.Strike.String(), c.Right, c.Multiplier, c.Exchange,
		c.Currency, c.LocalSymbol, c.TradingClass,
		p.Quantity.String(), p.AvgCost.String(), modelCode,
	}
}

// positionMultiEndFields is POSITION_MULTI_END "72,1,reqId".
func positionMultiEndFields(reqID string) []string {
	return []string{itoa(outPositionMultiEnd), "1", reqID}
}

// accountUpdateMultiFields is ACCOUNT_UPDATE_MULTI version 1:
// "73,1,reqId,account,modelCode,key,value,currency".
func accountUpdateMultiFields(reqID, account, modelCode, key string, v broker.SummaryValue) []string {
	return []string{itoa(outAccountUpdateMulti), "1", reqID, account, modelCode, key, v.Value, v.Currency}
}

// accountUpdateMultiEndFields is ACCOUNT_UPDATE_MULTI_END "74,1,reqId".
func accountUpdateMultiEndFields(reqID string) []string {
	return []string{itoa(outAccountUpdateMultiEnd), "1", reqID}
}

// pnlFields is PNL: "94,reqId,dailyPnL" plus unrealizedPnL from 129 and
// realizedPnL from 135; no version field.
func pnlFields(v int, reqID string, daily, unrealized, realized broker.Decimal) []string {
	f := []string{itoa(outPnL), reqID, daily.String()}
	if v >= minVerUnrealizedPnL {
		f = append(f, unrealized.String())
	}
	if v >= minVerRealizedPnL {
		f = append(f, realized.String())
	}
	return f
}

// pnlSingleFields is PNL_SINGLE: "95,reqId,pos,dailyPnL" plus unrealizedPnL
// from 129 and realizedPnL from 135, then value; no version field.
func pnlSingleFields(v int, reqID string, p broker.Position, m Mark) []string {
	f := []string{itoa(outPnLSingle), reqID, p.Quantity.String(), m.DailyPnL.String()}
	if v >= minVerUnrealizedPnL {
		f = append(f, m.UnrealizedPnL.String())
	}
	if v >= minVerRealizedPnL {
		f = append(f, m.RealizedPnL.String())
	}
	return append(f, m.MarketValue.String())
}
