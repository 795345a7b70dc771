package fakes

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/fakes/internal/twspb"
)

// This file holds the protobuf forms of the account-update, execution, order
// list, multi and PnL messages, and of the requests for them (codec.go holds
// the session's own messages). Request groups move at scmhub's versions
// (MIN_SERVER_VER_PROTOBUF_*); answers move with their requests (docs/adr/0010).
//
// Requests are decoded in whichever form they come (scmhub sends PLACE_ORDER
// and CANCEL_ORDER as protobuf from 203, contract data from 205, market data
// from 206, historical data from 208); the fake answers those from their id.
const (
	versionProtobufCompletedOrders = 204 // open/completed order lists
	versionProtobufPnL             = 210 // MIN_SERVER_VER_PROTOBUF_SCAN_DATA: scanner and PnL
)

func init() {
	for id, po := range map[int]protoOut{
		outExecutionData:      {VersionRawIDs, executionProto},
		outExecutionDataEnd:   {VersionRawIDs, reqIDOnly(2, func(id *int32) proto.Message { return &twspb.ExecutionDetailsEnd{ReqId: id} })},
		outCommissionReport:   {VersionRawIDs, commissionProto},
		outOpenOrderEnd:       {versionProtobufCompletedOrders, func([]string) (proto.Message, error) { return &twspb.OpenOrdersEnd{}, nil }},
		outCompletedOrdersEnd: {versionProtobufCompletedOrders, func([]string) (proto.Message, error) { return &twspb.CompletedOrdersEnd{}, nil }},
		outAcctValue:          {VersionProtobufAccounts, acctValueProto},
		outPortfolioValue:     {VersionProtobufAccounts, portfolioProto},
		outAcctUpdateTime: {VersionProtobufAccounts, func(f []string) (proto.Message, error) {
			return &twspb.AccountUpdateTime{TimeStamp: proto.String(field(f, 2))}, nil
		}},
		outAcctDownloadEnd: {VersionProtobufAccounts, func(f []string) (proto.Message, error) {
			return &twspb.AccountDataEnd{AccountName: proto.String(field(f, 2))}, nil
		}},
		outPositionMulti:         {VersionProtobufAccounts, positionMultiProto},
		outPositionMultiEnd:      {VersionProtobufAccounts, reqIDOnly(2, func(id *int32) proto.Message { return &twspb.PositionMultiEnd{ReqId: id} })},
		outAccountUpdateMulti:    {VersionProtobufAccounts, accountUpdateMultiProto},
		outAccountUpdateMultiEnd: {VersionProtobufAccounts, reqIDOnly(2, func(id *int32) proto.Message { return &twspb.AccountUpdateMultiEnd{ReqId: id} })},
		outPnL:                   {versionProtobufPnL, pnlProto},
		outPnLSingle:             {versionProtobufPnL, pnlSingleProto},
	} {
		protoOutgoing[id] = po
	}
	for id, in := range map[int]protoIn{
		inReqAcctData: func(b []byte) ([]string, error) {
			var m twspb.AccountDataRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			return []string{itoa(inReqAcctData), "2", boolText(m.GetSubscribe()), m.GetAcctCode()}, nil
		},
		inReqExecutions: func(b []byte) ([]string, error) {
			var m twspb.ExecutionRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			f := m.GetExecutionFilter()
			return []string{itoa(inReqExecutions), "3", optInt32(m.ReqId), optInt32(f.ClientId), f.GetAcctCode(),
				f.GetTime(), f.GetSymbol(), f.GetSecType(), f.GetExchange(), f.GetSide()}, nil
		},
		inReqOpenOrders:    emptyRequest[*twspb.OpenOrdersRequest](inReqOpenOrders),
		inReqAllOpenOrders: emptyRequest[*twspb.AllOpenOrdersRequest](inReqAllOpenOrders),
		inReqAutoOpenOrders: func(b []byte) ([]string, error) {
			var m twspb.AutoOpenOrdersRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			return []string{itoa(inReqAutoOpenOrders), "1", boolText(m.GetAutoBind())}, nil
		},
		inReqCompletedOrders: func(b []byte) ([]string, error) {
			var m twspb.CompletedOrdersRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			return []string{itoa(inReqCompletedOrders), boolText(m.GetApiOnly())}, nil
		},
		inReqMarketDataType: func(b []byte) ([]string, error) {
			var m twspb.MarketDataTypeRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			return []string{itoa(inReqMarketDataType), "1", optInt32(m.MarketDataType)}, nil
		},
		inReqPositionsMulti: func(b []byte) ([]string, error) {
			var m twspb.PositionsMultiRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			return []string{itoa(inReqPositionsMulti), "1", optInt32(m.ReqId), m.GetAccount(), m.GetModelCode()}, nil
		},
		inReqAcctUpdatesMulti: func(b []byte) ([]string, error) {
			var m twspb.AccountUpdatesMultiRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			return []string{itoa(inReqAcctUpdatesMulti), "1", optInt32(m.ReqId), m.GetAccount(), m.GetModelCode(),
				boolText(m.GetLedgerAndNLV())}, nil
		},
		inReqPnL: func(b []byte) ([]string, error) {
			var m twspb.PnLRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			return []string{itoa(inReqPnL), optInt32(m.ReqId), m.GetAccount(), m.GetModelCode()}, nil
		},
		inReqPnLSingle: func(b []byte) ([]string, error) {
			var m twspb.PnLSingleRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			return []string{itoa(inReqPnLSingle), optInt32(m.ReqId), m.GetAccount(), m.GetModelCode(), optInt32(m.ConId)}, nil
		},
		// Cancellations and requests the fake answers from their id alone: the
		// text layout up to the request id (see reqIDField and requestID).
		inCancelPositionsMult: leadingID(inCancelPositionsMult, "1"),
		inCancelAcctUpdsMulti: leadingID(inCancelAcctUpdsMulti, "1"),
		inCancelPnL:           leadingID(inCancelPnL),
		inCancelPnLSingle:     leadingID(inCancelPnLSingle),
		inCancelMktData:       leadingID(inCancelMktData, "2"),
		inCancelHistorical:    leadingID(inCancelHistorical, "1"),
		inPlaceOrder:          placeOrderFromProto,  // from 203 (orders_codec.go)
		inCancelOrder:         cancelOrderFromProto, // from 203
	} {
		protoIncoming[id] = in
	}
}

func boolText(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// leadingID decodes a request whose protobuf message starts with its request
// (or order) id as field 1, an int32, into its text layout up to that id: the
// message id, the given fields (its version), the id.
func leadingID(id int, between ...string) protoIn {
	return func(b []byte) ([]string, error) {
		out := append(append([]string{itoa(id)}, between...), "")
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			if num == 1 && typ == protowire.VarintType {
				v, n := protowire.ConsumeVarint(b)
				if n < 0 {
					return nil, protowire.ParseError(n)
				}
				out[len(out)-1] = strconv.FormatInt(int64(int32(v)), 10)
				b = b[n:]
				continue
			}
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
		}
		return out, nil
	}
}

// reqIDOnly builds a message carrying only the request id found at field i.
func reqIDOnly(i int, build func(*int32) proto.Message) func([]string) (proto.Message, error) {
	return func(f []string) (proto.Message, error) {
		id, err := parseInt32("req id", field(f, i))
		if err != nil {
			return nil, err
		}
		return build(id), nil
	}
}

// contractAt reads the 11 contract fields the text messages carry from f[i]:
// conId, symbol, secType, expiry, strike, right, multiplier, exchange,
// currency, localSymbol, tradingClass.
func contractAt(f []string, i int) (*twspb.Contract, error) {
	conID, err := parseInt32("con id", field(f, i))
	if err != nil {
		return nil, err
	}
	strike, err := parseFloat("strike", field(f, i+4))
	if err != nil {
		return nil, err
	}
	mult, err := parseFloat("multiplier", field(f, i+6))
	if err != nil {
		return nil, err
	}
	return &twspb.Contract{ConId: conID, Symbol: optString(field(f, i+1)), SecType: optString(field(f, i+2)),
		LastTradeDateOrContractMonth: optString(field(f, i+3)), Strike: strike, Right: optString(field(f, i+5)),
		Multiplier: mult, Exchange: optString(field(f, i+7)), Currency: optString(field(f, i+8)),
		LocalSymbol: optString(field(f, i+9)), TradingClass: optString(field(f, i+10))}, nil
}

// floats parses the fields of f at the given indexes as doubles.
func floats(f []string, idx ...int) ([]*float64, error) {
	out := make([]*float64, len(idx))
	for k, i := range idx {
		v, err := parseFloat(fmt.Sprintf("field %d", i), field(f, i))
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

func acctValueProto(f []string) (proto.Message, error) {
	return &twspb.AccountValue{Key: proto.String(field(f, 2)), Value: proto.String(field(f, 3)),
		Currency: proto.String(field(f, 4)), AccountName: proto.String(field(f, 5))}, nil
}

// portfolioProto: PORTFOLIO_VALUE version 8 (portfolioValueFields).
func portfolioProto(f []string) (proto.Message, error) {
	c, err := contractAt(f, 2)
	if err != nil {
		return nil, err
	}
	c.PrimaryExch, c.Exchange = c.Exchange, nil // this message's contract names its primary exchange
	d, err := floats(f, 14, 15, 16, 17, 18)
	if err != nil {
		return nil, err
	}
	return &twspb.PortfolioValue{Contract: c, Position: optString(field(f, 13)), MarketPrice: d[0], MarketValue: d[1],
		AverageCost: d[2], UnrealizedPNL: d[3], RealizedPNL: d[4], AccountName: proto.String(field(f, 19))}, nil
}

// executionProto: EXECUTION_DATA from version 198 (executionFields, no
// version field).
func executionProto(f []string) (proto.Message, error) {
	reqID, err := parseInt32("req id", field(f, 1))
	if err != nil {
		return nil, err
	}
	orderID, err := parseInt32("order id", field(f, 2))
	if err != nil {
		return nil, err
	}
	c, err := contractAt(f, 3)
	if err != nil {
		return nil, err
	}
	d, err := floats(f, 20, 25)
	if err != nil {
		return nil, err
	}
	perm, err := strconv.ParseInt(field(f, 21), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("perm id %q: %w", field(f, 21), err)
	}
	clientID, err := parseInt32("client id", field(f, 22))
	if err != nil {
		return nil, err
	}
	liquidity, err := parseInt32("last liquidity", field(f, 30))
	if err != nil {
		return nil, err
	}
	e := &twspb.Execution{OrderId: orderID, ExecId: proto.String(field(f, 14)), Time: proto.String(field(f, 15)),
		AcctNumber: proto.String(field(f, 16)), Exchange: proto.String(field(f, 17)), Side: proto.String(field(f, 18)),
		Shares: proto.String(field(f, 19)), Price: d[0], PermId: proto.Int64(perm), ClientId: clientID,
		IsLiquidation: proto.Bool(field(f, 23) == "1"), CumQty: proto.String(field(f, 24)), AvgPrice: d[1],
		OrderRef: optString(field(f, 26)), EvRule: optString(field(f, 27)), ModelCode: optString(field(f, 29)),
		LastLiquidity: liquidity, IsPriceRevisionPending: proto.Bool(field(f, 31) == "1"),
		Submitter: optString(field(f, 32))}
	return &twspb.ExecutionDetails{ReqId: reqID, Contract: c, Execution: e}, nil
}

// commissionProto: COMMISSION_REPORT version 1 (commissionReportFields).
func commissionProto(f []string) (proto.Message, error) {
	d, err := floats(f, 3, 5, 6)
	if err != nil {
		return nil, err
	}
	return &twspb.CommissionAndFeesReport{ExecId: proto.String(field(f, 2)), CommissionAndFees: d[0],
		Currency: proto.String(field(f, 4)), RealizedPNL: d[1], BondYield: d[2],
		YieldRedemptionDate: proto.String(field(f, 7))}, nil
}

// positionMultiProto: POSITION_MULTI version 1 (positionMultiFields).
func positionMultiProto(f []string) (proto.Message, error) {
	id, err := parseInt32("req id", field(f, 2))
	if err != nil {
		return nil, err
	}
	c, err := contractAt(f, 4)
	if err != nil {
		return nil, err
	}
	cost, err := parseFloat("average cost", field(f, 16))
	if err != nil {
		return nil, err
	}
	return &twspb.PositionMulti{ReqId: id, Account: proto.String(field(f, 3)), Contract: c,
		Position: optString(field(f, 15)), AvgCost: cost, ModelCode: optString(field(f, 17))}, nil
}

func accountUpdateMultiProto(f []string) (proto.Message, error) {
	id, err := parseInt32("req id", field(f, 2))
	if err != nil {
		return nil, err
	}
	return &twspb.AccountUpdateMulti{ReqId: id, Account: proto.String(field(f, 3)), ModelCode: optString(field(f, 4)),
		Key: proto.String(field(f, 5)), Value: proto.String(field(f, 6)), Currency: proto.String(field(f, 7))}, nil
}

// pnlProto: PNL from version 135 (pnlFields).
func pnlProto(f []string) (proto.Message, error) {
	id, err := parseInt32("req id", field(f, 1))
	if err != nil {
		return nil, err
	}
	d, err := floats(f, 2, 3, 4)
	if err != nil {
		return nil, err
	}
	return &twspb.PnL{ReqId: id, DailyPnL: d[0], UnrealizedPnL: d[1], RealizedPnL: d[2]}, nil
}

// pnlSingleProto: PNL_SINGLE from version 135 (pnlSingleFields).
func pnlSingleProto(f []string) (proto.Message, error) {
	id, err := parseInt32("req id", field(f, 1))
	if err != nil {
		return nil, err
	}
	d, err := floats(f, 3, 4, 5, 6)
	if err != nil {
		return nil, err
	}
	return &twspb.PnLSingle{ReqId: id, Position: optString(field(f, 2)), DailyPnL: d[0], UnrealizedPnL: d[1],
		RealizedPnL: d[2], Value: d[3]}, nil
}
