package goplugin

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

// This file holds every conversion between broker values and wire messages,
// in both directions, so that each rule is written once.

func connectParamsToPB(p broker.ConnectParams) *pb.ConnectRequest {
	return &pb.ConnectRequest{
		Host:      p.Host,
		Port:      int64(p.Port),
		ClientId:  p.ClientID,
		ReadOnly:  p.ReadOnly,
		TimeoutNs: int64(p.Timeout),
	}
}

func connectParamsFromPB(r *pb.ConnectRequest) (broker.ConnectParams, error) {
	port := r.GetPort()
	if port < 0 || port > 65535 {
		// Out of range for an int on every platform we build for is impossible,
		// but an absurd value must still come back as a clear error.
		return broker.ConnectParams{}, fmt.Errorf("%w: port %d out of range 1..65535", broker.ErrInvalidArgument, port)
	}
	return broker.ConnectParams{
		Host:     r.GetHost(),
		Port:     int(port),
		ClientID: r.GetClientId(),
		ReadOnly: r.GetReadOnly(),
		Timeout:  time.Duration(r.GetTimeoutNs()),
	}, nil
}

func connectInfoToPB(ci broker.ConnectInfo) *pb.ConnectResponse {
	return &pb.ConnectResponse{Accounts: ci.Accounts, ServerVersion: int64(ci.ServerVersion)}
}

func connectInfoFromPB(r *pb.ConnectResponse) broker.ConnectInfo {
	return broker.ConnectInfo{Accounts: r.GetAccounts(), ServerVersion: int(r.GetServerVersion())}
}

func positionsToPB(ps []broker.Position) *pb.PositionsResponse {
	out := make([]*pb.Position, len(ps))
	for i, p := range ps {
		c := p.Contract
		out[i] = &pb.Position{
			Account: p.Account,
			Contract: &pb.Contract{
				ConId:        c.ConID,
				Symbol:       c.Symbol,
				SecType:      c.SecType,
				Expiry:       c.Expiry,
				Strike:       c.Strike.String(),
				Right:        c.Right,
				Multiplier:   c.Multiplier,
				Exchange:     c.Exchange,
				Currency:     c.Currency,
				LocalSymbol:  c.LocalSymbol,
				TradingClass: c.TradingClass,
			},
			Quantity: p.Quantity.String(),
			AvgCost:  p.AvgCost.String(),
		}
	}
	return &pb.PositionsResponse{Positions: out}
}

// positionsFromPB decodes positions; a malformed decimal is a protocol violation.
func positionsFromPB(r *pb.PositionsResponse) ([]broker.Position, error) {
	in := r.GetPositions()
	out := make([]broker.Position, len(in))
	for i, p := range in {
		c := p.GetContract()
		strike, err := wireDecimal("strike", c.GetStrike())
		if err != nil {
			return nil, err
		}
		qty, err := wireDecimal("quantity", p.GetQuantity())
		if err != nil {
			return nil, err
		}
		avg, err := wireDecimal("avg_cost", p.GetAvgCost())
		if err != nil {
			return nil, err
		}
		out[i] = broker.Position{
			Account: p.GetAccount(),
			Contract: broker.Contract{
				ConID:        c.GetConId(),
				Symbol:       c.GetSymbol(),
				SecType:      c.GetSecType(),
				Expiry:       c.GetExpiry(),
				Strike:       strike,
				Right:        c.GetRight(),
				Multiplier:   c.GetMultiplier(),
				Exchange:     c.GetExchange(),
				Currency:     c.GetCurrency(),
				LocalSymbol:  c.GetLocalSymbol(),
				TradingClass: c.GetTradingClass(),
			},
			Quantity: qty,
			AvgCost:  avg,
		}
	}
	return out, nil
}

// wireDecimal parses a decimal field of a message. The empty string is 0 so that
// a peer omitting an unset field is not an error.
func wireDecimal(field, s string) (broker.Decimal, error) {
	if s == "" {
		return broker.Decimal{}, nil
	}
	d, err := broker.ParseDecimal(s)
	if err != nil {
		return broker.Decimal{}, fmt.Errorf("%w: field %s: %w", broker.ErrProtocol, field, err)
	}
	return d, nil
}

func summariesToPB(ss []broker.AccountSummary) *pb.AccountSummaryResponse {
	out := make([]*pb.AccountSummary, len(ss))
	for i, s := range ss {
		vals := make(map[string]*pb.SummaryValue, len(s.Values))
		for tag, v := range s.Values {
			vals[tag] = &pb.SummaryValue{Value: v.Value, Currency: v.Currency}
		}
		out[i] = &pb.AccountSummary{Account: s.Account, Values: vals}
	}
	return &pb.AccountSummaryResponse{Summaries: out}
}

func summariesFromPB(r *pb.AccountSummaryResponse) []broker.AccountSummary {
	in := r.GetSummaries()
	out := make([]broker.AccountSummary, len(in))
	for i, s := range in {
		vals := make(map[string]broker.SummaryValue, len(s.GetValues()))
		for tag, v := range s.GetValues() {
			vals[tag] = broker.SummaryValue{Value: v.GetValue(), Currency: v.GetCurrency()}
		}
		out[i] = broker.AccountSummary{Account: s.GetAccount(), Values: vals}
	}
	return out
}

func eventToPB(e broker.Event) *pb.Event {
	return &pb.Event{
		Kind:    e.Kind.String(),
		Time:    timestamppb.New(e.Time),
		Code:    e.Code,
		Message: e.Message,
	}
}

// eventFromPB decodes an event; an unknown kind is a protocol violation.
func eventFromPB(m *pb.Event) (broker.Event, error) {
	var k broker.EventKind
	if err := k.UnmarshalText([]byte(m.GetKind())); err != nil {
		return broker.Event{}, fmt.Errorf("%w: event: %w", broker.ErrProtocol, err)
	}
	e := broker.Event{Kind: k, Code: m.GetCode(), Message: m.GetMessage()}
	if ts := m.GetTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return broker.Event{}, fmt.Errorf("%w: event time: %v", broker.ErrProtocol, err)
		}
		e.Time = ts.AsTime().Local()
	}
	return e, nil
}

// grpcCodes mirrors brokerkit's wire codes onto gRPC status codes for clients
// that read only the status code. The Error detail stays authoritative.
var grpcCodes = map[string]codes.Code{
	"not_connected":       codes.FailedPrecondition,
	"already_connected":   codes.FailedPrecondition,
	"timeout":             codes.DeadlineExceeded,
	"client_id_in_use":    codes.AlreadyExists,
	"gateway_unreachable": codes.Unavailable,
	"handshake_failed":    codes.Unavailable,
	"unavailable":         codes.Unavailable,
	"protocol":            codes.Internal,
	"closed":              codes.FailedPrecondition,
	"invalid_argument":    codes.InvalidArgument,
	"unsupported":         codes.Unimplemented,
	"not_found":           codes.NotFound,
	"not_subscribed":      codes.PermissionDenied,
	"pacing":              codes.ResourceExhausted,
	"canceled":            codes.Canceled,
	"deadline_exceeded":   codes.DeadlineExceeded,
	"read_only":           codes.PermissionDenied,
	"rejected":            codes.FailedPrecondition,
	"outcome_unknown":     codes.Unknown, // the order may or may not exist
	broker.CodeAPIError:   codes.Unknown,
	broker.CodeInternal:   codes.Internal,
}

// errorToStatus turns a Broker error into the gRPC error the server returns.
func errorToStatus(err error) error {
	if err == nil {
		return nil
	}
	code := broker.ErrorCode(err)
	gc, ok := grpcCodes[code]
	if !ok {
		gc = codes.Unknown
	}
	st, derr := status.New(gc, err.Error()).WithDetails(&pb.Error{
		Code:    code,
		Message: err.Error(),
		IbCode:  broker.IBCode(err),
	})
	if derr != nil { // only if the detail cannot be marshalled, which a fixed message type always can
		return status.Error(gc, err.Error())
	}
	return st.Err()
}

// errorFromStatus rebuilds the broker error carried by a gRPC error: from its
// Error detail when there is one, else from the status code alone.
func errorFromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: %w", broker.ErrUnavailable, err)
	}
	for _, d := range st.Details() {
		if e, ok := d.(*pb.Error); ok {
			return broker.ErrorFromCode(e.GetCode(), e.GetMessage(), e.GetIbCode())
		}
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("%w: %s", broker.ErrUnavailable, st.Message())
	case codes.Canceled:
		return fmt.Errorf("%w: %s", context.Canceled, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %s", context.DeadlineExceeded, st.Message())
	case codes.Unimplemented:
		return fmt.Errorf("%w: %s", broker.ErrUnsupported, st.Message())
	default:
		return fmt.Errorf("%w: grpc status %s: %s", broker.ErrProtocol, st.Code(), st.Message())
	}
}

// ---- read side ----

func contractToPB(c broker.Contract) *pb.Contract {
	return &pb.Contract{ConId: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Expiry: c.Expiry,
		Strike: c.Strike.String(), Right: c.Right, Multiplier: c.Multiplier, Exchange: c.Exchange,
		Currency: c.Currency, LocalSymbol: c.LocalSymbol, TradingClass: c.TradingClass}
}

// decimalReader parses the decimal fields of one message, keeping the first error.
type decimalReader struct{ err error }

func (d *decimalReader) dec(field, s string) broker.Decimal {
	v, err := wireDecimal(field, s)
	if err != nil && d.err == nil {
		d.err = err
	}
	return v
}

func (d *decimalReader) contract(c *pb.Contract) broker.Contract {
	return broker.Contract{ConID: c.GetConId(), Symbol: c.GetSymbol(), SecType: c.GetSecType(),
		Expiry: c.GetExpiry(), Strike: d.dec("strike", c.GetStrike()), Right: c.GetRight(),
		Multiplier: c.GetMultiplier(), Exchange: c.GetExchange(), Currency: c.GetCurrency(),
		LocalSymbol: c.GetLocalSymbol(), TradingClass: c.GetTradingClass()}
}

func accountUpdateToPB(u broker.AccountUpdate) *pb.AccountUpdate {
	m := &pb.AccountUpdate{Account: u.Account, UpdateTime: u.UpdateTime}
	for _, v := range u.Values {
		m.Values = append(m.Values, &pb.AccountValue{Key: v.Key, Value: v.Value, Currency: v.Currency})
	}
	for _, p := range u.Portfolio {
		m.Portfolio = append(m.Portfolio, &pb.PortfolioItem{Account: p.Account, Contract: contractToPB(p.Contract),
			Position: p.Position.String(), MarketPrice: p.MarketPrice.String(), MarketValue: p.MarketValue.String(),
			AvgCost: p.AvgCost.String(), UnrealizedPnl: p.UnrealizedPnL.String(), RealizedPnl: p.RealizedPnL.String()})
	}
	return m
}

// accountUpdateFromPB decodes an account update; a malformed decimal is a protocol violation.
func accountUpdateFromPB(m *pb.AccountUpdate) (broker.AccountUpdate, error) {
	var d decimalReader
	u := broker.AccountUpdate{Account: m.GetAccount(), UpdateTime: m.GetUpdateTime(),
		Values: make([]broker.AccountValue, 0, len(m.GetValues())), Portfolio: make([]broker.PortfolioItem, 0, len(m.GetPortfolio()))}
	for _, v := range m.GetValues() {
		u.Values = append(u.Values, broker.AccountValue{Key: v.GetKey(), Value: v.GetValue(), Currency: v.GetCurrency()})
	}
	for _, p := range m.GetPortfolio() {
		u.Portfolio = append(u.Portfolio, broker.PortfolioItem{Account: p.GetAccount(), Contract: d.contract(p.GetContract()),
			Position: d.dec("position", p.GetPosition()), MarketPrice: d.dec("market_price", p.GetMarketPrice()),
			MarketValue: d.dec("market_value", p.GetMarketValue()), AvgCost: d.dec("avg_cost", p.GetAvgCost()),
			UnrealizedPnL: d.dec("unrealized_pnl", p.GetUnrealizedPnl()), RealizedPnL: d.dec("realized_pnl", p.GetRealizedPnl())})
	}
	if d.err != nil {
		return broker.AccountUpdate{}, d.err
	}
	return u, nil
}

func filterToPB(f broker.ExecutionFilter) *pb.ExecutionFilter {
	return &pb.ExecutionFilter{ClientId: f.ClientID, Account: f.Account, Since: f.Since, Symbol: f.Symbol,
		SecType: f.SecType, Exchange: f.Exchange, Side: f.Side}
}

func filterFromPB(m *pb.ExecutionFilter) broker.ExecutionFilter {
	return broker.ExecutionFilter{ClientID: m.GetClientId(), Account: m.GetAccount(), Since: m.GetSince(),
		Symbol: m.GetSymbol(), SecType: m.GetSecType(), Exchange: m.GetExchange(), Side: m.GetSide()}
}

func executionsToPB(xs []broker.Execution) *pb.ExecutionsResponse {
	out := make([]*pb.Execution, len(xs))
	for i, x := range xs {
		out[i] = &pb.Execution{ExecId: x.ExecID, OrderId: x.OrderID, PermId: x.PermID, ClientId: x.ClientID,
			Account: x.Account, Contract: contractToPB(x.Contract), Time: x.Time, Exchange: x.Exchange, Side: x.Side,
			Shares: x.Shares.String(), Price: x.Price.String(), CumQty: x.CumQty.String(), AvgPrice: x.AvgPrice.String(),
			OrderRef: x.OrderRef, Commission: x.Commission.String(), CommissionCurrency: x.CommissionCurrency,
			RealizedPnl: x.RealizedPnL.String()}
	}
	return &pb.ExecutionsResponse{Executions: out}
}

// executionsFromPB decodes executions; a malformed decimal is a protocol violation.
func executionsFromPB(r *pb.ExecutionsResponse) ([]broker.Execution, error) {
	var d decimalReader
	out := make([]broker.Execution, len(r.GetExecutions()))
	for i, x := range r.GetExecutions() {
		out[i] = broker.Execution{ExecID: x.GetExecId(), OrderID: x.GetOrderId(), PermID: x.GetPermId(),
			ClientID: x.GetClientId(), Account: x.GetAccount(), Contract: d.contract(x.GetContract()), Time: x.GetTime(),
			Exchange: x.GetExchange(), Side: x.GetSide(), Shares: d.dec("shares", x.GetShares()),
			Price: d.dec("price", x.GetPrice()), CumQty: d.dec("cum_qty", x.GetCumQty()),
			AvgPrice: d.dec("avg_price", x.GetAvgPrice()), OrderRef: x.GetOrderRef(),
			Commission: d.dec("commission", x.GetCommission()), CommissionCurrency: x.GetCommissionCurrency(),
			RealizedPnL: d.dec("realized_pnl", x.GetRealizedPnl())}
	}
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}

func ordersToPB(os []broker.Order) *pb.OrdersResponse {
	out := make([]*pb.Order, len(os))
	for i, o := range os {
		out[i] = &pb.Order{OrderId: o.OrderID, PermId: o.PermID, ClientId: o.ClientID, Account: o.Account,
			Contract: contractToPB(o.Contract), Action: o.Action, OrderType: o.OrderType,
			TotalQuantity: o.TotalQuantity.String(), LimitPrice: o.LimitPrice.String(), AuxPrice: o.AuxPrice.String(),
			Tif: o.TIF, OrderRef: o.OrderRef, Status: o.Status, Filled: o.Filled.String()}
	}
	return &pb.OrdersResponse{Orders: out}
}

// ordersFromPB decodes orders; a malformed decimal is a protocol violation.
func ordersFromPB(r *pb.OrdersResponse) ([]broker.Order, error) {
	var d decimalReader
	out := make([]broker.Order, len(r.GetOrders()))
	for i, o := range r.GetOrders() {
		out[i] = broker.Order{OrderID: o.GetOrderId(), PermID: o.GetPermId(), ClientID: o.GetClientId(),
			Account: o.GetAccount(), Contract: d.contract(o.GetContract()), Action: o.GetAction(),
			OrderType: o.GetOrderType(), TotalQuantity: d.dec("total_quantity", o.GetTotalQuantity()),
			LimitPrice: d.dec("limit_price", o.GetLimitPrice()), AuxPrice: d.dec("aux_price", o.GetAuxPrice()),
			TIF: o.GetTif(), OrderRef: o.GetOrderRef(), Status: o.GetStatus(), Filled: d.dec("filled", o.GetFilled())}
	}
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}

func contractFromPB(c *pb.Contract) (broker.Contract, error) {
	strike, err := wireDecimal("strike", c.GetStrike())
	return broker.Contract{ConID: c.GetConId(), Symbol: c.GetSymbol(), SecType: c.GetSecType(), Expiry: c.GetExpiry(),
		Strike: strike, Right: c.GetRight(), Multiplier: c.GetMultiplier(), Exchange: c.GetExchange(),
		Currency: c.GetCurrency(), LocalSymbol: c.GetLocalSymbol(), TradingClass: c.GetTradingClass()}, err
}

// requestContract is a request's contract on the child's side: a malformed
// strike is the caller's invalid argument, not a protocol violation.
func requestContract(c *pb.Contract) (broker.Contract, error) {
	ct, err := contractFromPB(c)
	if err != nil {
		return broker.Contract{}, fmt.Errorf("%w: %v", broker.ErrInvalidArgument, err)
	}
	return ct, nil
}

func contractDetailsToPB(ds []broker.ContractDetails) *pb.ContractDetailsResponse {
	out := make([]*pb.ContractDetails, len(ds))
	for i, d := range ds {
		out[i] = &pb.ContractDetails{Contract: contractToPB(d.Contract), PrimaryExchange: d.PrimaryExchange,
			LongName: d.LongName, MinTick: d.MinTick.String(), TimeZone: d.TimeZone, TradingHours: d.TradingHours,
			LiquidHours: d.LiquidHours, ValidExchanges: d.ValidExchanges}
	}
	return &pb.ContractDetailsResponse{Contracts: out}
}

func contractDetailsFromPB(r *pb.ContractDetailsResponse) ([]broker.ContractDetails, error) {
	in := r.GetContracts()
	out := make([]broker.ContractDetails, len(in))
	for i, d := range in {
		c, err := contractFromPB(d.GetContract())
		if err != nil {
			return nil, err
		}
		tick, err := wireDecimal("min_tick", d.GetMinTick())
		if err != nil {
			return nil, err
		}
		out[i] = broker.ContractDetails{Contract: c, PrimaryExchange: d.GetPrimaryExchange(), LongName: d.GetLongName(),
			MinTick: tick, TimeZone: d.GetTimeZone(), TradingHours: d.GetTradingHours(), LiquidHours: d.GetLiquidHours(),
			ValidExchanges: d.GetValidExchanges()}
	}
	return out, nil
}

func quoteToPB(q broker.Quote) *pb.Quote {
	m := &pb.Quote{Contract: contractToPB(q.Contract), Bid: q.Bid.String(), Ask: q.Ask.String(), Last: q.Last.String(),
		BidSize: q.BidSize.String(), AskSize: q.AskSize.String(), LastSize: q.LastSize.String(), Open: q.Open.String(),
		High: q.High.String(), Low: q.Low.String(), Close: q.Close.String(), Volume: q.Volume.String(), Halted: q.Halted,
		MarketDataType: int32(q.DataType), Time: timestamppb.New(q.Time)}
	if !q.LastTime.IsZero() {
		m.LastTime = timestamppb.New(q.LastTime)
	}
	return m
}

func quoteFromPB(m *pb.Quote) (broker.Quote, error) { return quoteFromPBAs(m, false) }

// quoteFromPBAs reads m; market data type 0 is accepted only if zeroType (a
// gap marker's zero quote).
func quoteFromPBAs(m *pb.Quote, zeroType bool) (broker.Quote, error) {
	c, err := contractFromPB(m.GetContract())
	if err != nil {
		return broker.Quote{}, err
	}
	q := broker.Quote{Contract: c, Halted: m.GetHalted(), DataType: broker.MarketDataType(m.GetMarketDataType()),
		Time: m.GetTime().AsTime()}
	if !q.DataType.Valid() && (q.DataType != 0 || !zeroType) {
		return broker.Quote{}, fmt.Errorf("%w: market data type %d", broker.ErrProtocol, m.GetMarketDataType())
	}
	if m.GetLastTime() != nil {
		q.LastTime = m.GetLastTime().AsTime()
	}
	for _, f := range []struct {
		name, text string
		dst        *broker.Decimal
	}{{"bid", m.GetBid(), &q.Bid}, {"ask", m.GetAsk(), &q.Ask}, {"last", m.GetLast(), &q.Last},
		{"bid_size", m.GetBidSize(), &q.BidSize}, {"ask_size", m.GetAskSize(), &q.AskSize},
		{"last_size", m.GetLastSize(), &q.LastSize}, {"open", m.GetOpen(), &q.Open}, {"high", m.GetHigh(), &q.High},
		{"low", m.GetLow(), &q.Low}, {"close", m.GetClose(), &q.Close}, {"volume", m.GetVolume(), &q.Volume}} {
		if *f.dst, err = wireDecimal(f.name, f.text); err != nil {
			return broker.Quote{}, err
		}
	}
	return q, nil
}

func barsRequestToPB(c broker.Contract, r broker.BarsRequest) *pb.HistoricalBarsRequest {
	m := &pb.HistoricalBarsRequest{Contract: contractToPB(c), Duration: r.Duration, BarSize: r.BarSize,
		WhatToShow: r.WhatToShow, UseRth: r.UseRTH}
	if !r.End.IsZero() {
		m.End = timestamppb.New(r.End)
	}
	return m
}

func barsRequestFromPB(m *pb.HistoricalBarsRequest) broker.BarsRequest {
	r := broker.BarsRequest{Duration: m.GetDuration(), BarSize: m.GetBarSize(), WhatToShow: m.GetWhatToShow(),
		UseRTH: m.GetUseRth()}
	if m.GetEnd() != nil {
		r.End = m.GetEnd().AsTime()
	}
	return r
}

func barsToPB(bars []broker.Bar) *pb.HistoricalBarsResponse {
	out := make([]*pb.Bar, len(bars))
	for i, b := range bars {
		out[i] = &pb.Bar{Time: timestamppb.New(b.Time), Open: b.Open.String(), High: b.High.String(), Low: b.Low.String(),
			Close: b.Close.String(), Volume: b.Volume.String(), Wap: b.WAP.String(), Count: b.Count}
	}
	return &pb.HistoricalBarsResponse{Bars: out}
}

func barsFromPB(r *pb.HistoricalBarsResponse) ([]broker.Bar, error) {
	in := r.GetBars()
	out := make([]broker.Bar, len(in))
	for i, b := range in {
		out[i] = broker.Bar{Time: b.GetTime().AsTime(), Count: b.GetCount()}
		for _, f := range []struct {
			name, text string
			dst        *broker.Decimal
		}{{"open", b.GetOpen(), &out[i].Open}, {"high", b.GetHigh(), &out[i].High}, {"low", b.GetLow(), &out[i].Low},
			{"close", b.GetClose(), &out[i].Close}, {"volume", b.GetVolume(), &out[i].Volume}, {"wap", b.GetWap(), &out[i].WAP}} {
			var err error
			if *f.dst, err = wireDecimal(f.name, f.text); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
