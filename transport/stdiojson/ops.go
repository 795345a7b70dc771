package stdiojson

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// This file is the codec table of the protocol: for every operation of the port,
// the host's Client method (request fields out, answer's data in) next to the
// worker's entry in serveOps (request fields in, answer's data out) and the data
// shape they share. Adding an operation to the port adds one of each here, one
// command section to PROTOCOL.md and nothing else in this package; the framing,
// the demultiplexer, cancellation and errors are shared by every command.
// TestServeOpsCoverThePort fails when an operation of broker.Ops has no entry.

// serveOp runs one operation in the worker: it reads its parameters from req,
// calls b with ctx and returns the answer's data (rendered with encoding/json,
// or with appendJSON when the data is a jsonAppender).
type serveOp func(ctx context.Context, b broker.Broker, req *wireRequest) (any, error)

// serveOps is the worker's dispatch table, keyed by command name. hello and
// cancel are the protocol's own commands and are not in it.
var serveOps = map[broker.Op]serveOp{
	broker.OpConnect:         serveConnect,
	broker.OpDisconnect:      serveDisconnect,
	broker.OpAccounts:        serveAccounts,
	broker.OpPositions:       servePositions,
	broker.OpAccountSummary:  serveAccountSummary,
	broker.OpPing:            servePing,
	broker.OpAccountUpdates:  serveAccountUpdates,
	broker.OpExecutions:      serveExecutions,
	broker.OpOpenOrders:      serveOpenOrders,
	broker.OpCompletedOrders: serveCompletedOrders,

	broker.OpContractDetails:   serveContractDetails,
	broker.OpSnapshot:          serveSnapshot,
	broker.OpHistoricalBars:    serveHistoricalBars,
	broker.OpSetMarketDataType: serveSetMarketDataType,
}

// Data shapes, one per command.
type (
	connectData struct {
		Connected     bool     `json:"connected"`
		Accounts      []string `json:"accounts"`
		ServerVersion int      `json:"server_version"`
	}
	disconnectData struct {
		Disconnected bool `json:"disconnected"`
	}
	accountsData struct {
		Accounts []string `json:"accounts"`
	}
	positionsData struct {
		Positions []wirePosition `json:"positions"`
	}
	summaryData struct {
		Summaries []wireSummary `json:"summaries"`
	}
	pingData struct {
		Pong bool `json:"pong"`
	}
	// The read side's shapes are the port's own JSON forms (broker/types_read.go).
	accountUpdatesData struct {
		Update broker.AccountUpdate `json:"update"`
	}
	executionsData struct {
		Executions []broker.Execution `json:"executions"`
	}
	ordersData struct {
		Orders []broker.Order `json:"orders"`
	}
)

// ---- connect ----

// Connect implements broker.Broker.
func (c *Client) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	req := &wireRequest{Host: p.Host, Port: p.Port, ClientID: p.ClientID, ReadOnly: p.ReadOnly, Timeout: p.Timeout.Seconds()}
	var d connectData
	if err := c.call(ctx, string(broker.OpConnect), req, &d); err != nil {
		return broker.ConnectInfo{}, err
	}
	return broker.ConnectInfo{Accounts: d.Accounts, ServerVersion: d.ServerVersion}, nil
}

func serveConnect(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	p := broker.ConnectParams{
		Host: req.Host, Port: req.Port, ClientID: req.ClientID, ReadOnly: req.ReadOnly,
		Timeout: secondsToDuration(req.Timeout),
	}
	info, err := b.Connect(ctx, p)
	if err != nil {
		return nil, err
	}
	return connectData{Connected: true, Accounts: nonNil(info.Accounts), ServerVersion: info.ServerVersion}, nil
}

// ---- disconnect ----

// Disconnect implements broker.Broker.
func (c *Client) Disconnect(ctx context.Context) error {
	return c.call(ctx, string(broker.OpDisconnect), nil, nil)
}

func serveDisconnect(ctx context.Context, b broker.Broker, _ *wireRequest) (any, error) {
	if err := b.Disconnect(ctx); err != nil {
		return nil, err
	}
	return disconnectData{Disconnected: true}, nil
}

// ---- get_accounts ----

// Accounts implements broker.Broker.
func (c *Client) Accounts(ctx context.Context) ([]string, error) {
	var d accountsData
	if err := c.call(ctx, string(broker.OpAccounts), nil, &d); err != nil {
		return nil, err
	}
	return d.Accounts, nil
}

func serveAccounts(ctx context.Context, b broker.Broker, _ *wireRequest) (any, error) {
	accts, err := b.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	return accountsData{Accounts: nonNil(accts)}, nil
}

// ---- get_positions (hand-written codec: fastcodec.go) ----

// Positions implements broker.Broker.
func (c *Client) Positions(ctx context.Context) ([]broker.Position, error) {
	var r positionsResult
	if err := c.call(ctx, string(broker.OpPositions), nil, &r); err != nil {
		return nil, err
	}
	return r.positions, nil
}

func servePositions(ctx context.Context, b broker.Broker, _ *wireRequest) (any, error) {
	ps, err := b.Positions(ctx)
	if err != nil {
		return nil, err
	}
	return positionsPayload(ps), nil
}

// ---- get_account_summary ----

// AccountSummary implements broker.Broker.
func (c *Client) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	var d summaryData
	if err := c.call(ctx, string(broker.OpAccountSummary), &wireRequest{Tags: tags}, &d); err != nil {
		return nil, err
	}
	return fromWireSummaries(d.Summaries), nil
}

func serveAccountSummary(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	sums, err := b.AccountSummary(ctx, req.Tags...)
	if err != nil {
		return nil, err
	}
	return summaryData{Summaries: toWireSummaries(sums)}, nil
}

// ---- ping ----

// Ping implements broker.Broker.
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, string(broker.OpPing), nil, nil)
}

func servePing(ctx context.Context, b broker.Broker, _ *wireRequest) (any, error) {
	if err := b.Ping(ctx); err != nil {
		return nil, err
	}
	return pongPayload{}, nil
}

// ---- market data: get_contract_details, get_snapshot, get_historical_bars, set_market_data_type ----

type (
	wireBarsRequest struct {
		End        string `json:"end,omitempty"` // RFC 3339; absent means now
		Duration   string `json:"duration"`
		BarSize    string `json:"bar_size"`
		WhatToShow string `json:"what_to_show,omitempty"`
		UseRTH     bool   `json:"use_rth,omitempty"`
	}
	wireContractDetails struct {
		Contract        wireContract `json:"contract"`
		PrimaryExchange string       `json:"primary_exchange"`
		LongName        string       `json:"long_name"`
		MinTick         string       `json:"min_tick"` // decimal text
		TimeZone        string       `json:"time_zone"`
		TradingHours    string       `json:"trading_hours"`
		LiquidHours     string       `json:"liquid_hours"`
		ValidExchanges  string       `json:"valid_exchanges"`
	}
	contractDetailsData struct {
		Contracts []wireContractDetails `json:"contracts"`
	}
	// wireQuote: every price and size is decimal text, "0" when the gateway sent none.
	wireQuote struct {
		Contract       wireContract `json:"contract"`
		Bid            string       `json:"bid"`
		Ask            string       `json:"ask"`
		Last           string       `json:"last"`
		BidSize        string       `json:"bid_size"`
		AskSize        string       `json:"ask_size"`
		LastSize       string       `json:"last_size"`
		Open           string       `json:"open"`
		High           string       `json:"high"`
		Low            string       `json:"low"`
		Close          string       `json:"close"`
		Volume         string       `json:"volume"`
		Halted         bool         `json:"halted"`
		MarketDataType string       `json:"market_data_type"`
		LastTime       *time.Time   `json:"last_time,omitempty"`
		Time           time.Time    `json:"time"`
	}
	snapshotData struct {
		Quote wireQuote `json:"quote"`
	}
	wireBar struct {
		Time   time.Time `json:"time"`
		Open   string    `json:"open"`
		High   string    `json:"high"`
		Low    string    `json:"low"`
		Close  string    `json:"close"`
		Volume string    `json:"volume"`
		WAP    string    `json:"wap"`
		Count  int64     `json:"count"`
	}
	barsData struct {
		Bars []wireBar `json:"bars"`
	}
	marketDataTypeData struct {
		MarketDataType string `json:"market_data_type"`
	}
)

// ContractDetails implements broker.Broker.
func (c *Client) ContractDetails(ctx context.Context, ct broker.Contract) ([]broker.ContractDetails, error) {
	var d contractDetailsData
	if err := c.call(ctx, string(broker.OpContractDetails), &wireRequest{Contract: toWireContract(ct)}, &d); err != nil {
		return nil, err
	}
	out := make([]broker.ContractDetails, len(d.Contracts))
	for i, w := range d.Contracts {
		var errs [2]error
		out[i] = broker.ContractDetails{PrimaryExchange: w.PrimaryExchange, LongName: w.LongName,
			TimeZone: w.TimeZone, TradingHours: w.TradingHours, LiquidHours: w.LiquidHours, ValidExchanges: w.ValidExchanges}
		out[i].Contract, errs[0] = fromWireContract(w.Contract)
		out[i].MinTick, errs[1] = wireDecimal("min_tick", w.MinTick)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func serveContractDetails(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	c, err := requestContract(req)
	if err != nil {
		return nil, err
	}
	ds, err := b.ContractDetails(ctx, c)
	if err != nil {
		return nil, err
	}
	out := contractDetailsData{Contracts: make([]wireContractDetails, len(ds))}
	for i, d := range ds {
		out.Contracts[i] = wireContractDetails{Contract: *toWireContract(d.Contract), PrimaryExchange: d.PrimaryExchange,
			LongName: d.LongName, MinTick: d.MinTick.String(), TimeZone: d.TimeZone, TradingHours: d.TradingHours,
			LiquidHours: d.LiquidHours, ValidExchanges: d.ValidExchanges}
	}
	return out, nil
}

// Snapshot implements broker.Broker.
func (c *Client) Snapshot(ctx context.Context, ct broker.Contract) (broker.Quote, error) {
	var d snapshotData
	if err := c.call(ctx, string(broker.OpSnapshot), &wireRequest{Contract: toWireContract(ct)}, &d); err != nil {
		return broker.Quote{}, err
	}
	w := d.Quote
	q := broker.Quote{Halted: w.Halted, Time: w.Time}
	var errs []error
	var err error
	if q.Contract, err = fromWireContract(w.Contract); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct {
		name, text string
		dst        *broker.Decimal
	}{{"bid", w.Bid, &q.Bid}, {"ask", w.Ask, &q.Ask}, {"last", w.Last, &q.Last}, {"bid_size", w.BidSize, &q.BidSize},
		{"ask_size", w.AskSize, &q.AskSize}, {"last_size", w.LastSize, &q.LastSize}, {"open", w.Open, &q.Open},
		{"high", w.High, &q.High}, {"low", w.Low, &q.Low}, {"close", w.Close, &q.Close}, {"volume", w.Volume, &q.Volume}} {
		if *f.dst, err = wireDecimal(f.name, f.text); err != nil {
			errs = append(errs, err)
		}
	}
	if q.DataType, err = broker.ParseMarketDataType(w.MarketDataType); err != nil {
		errs = append(errs, fmt.Errorf("%w: %v", broker.ErrProtocol, err))
	}
	if w.LastTime != nil {
		q.LastTime = *w.LastTime
	}
	if err := errors.Join(errs...); err != nil {
		return broker.Quote{}, err
	}
	return q, nil
}

func serveSnapshot(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	c, err := requestContract(req)
	if err != nil {
		return nil, err
	}
	q, err := b.Snapshot(ctx, c)
	if err != nil {
		return nil, err
	}
	w := wireQuote{Contract: *toWireContract(q.Contract), Bid: q.Bid.String(), Ask: q.Ask.String(), Last: q.Last.String(),
		BidSize: q.BidSize.String(), AskSize: q.AskSize.String(), LastSize: q.LastSize.String(), Open: q.Open.String(),
		High: q.High.String(), Low: q.Low.String(), Close: q.Close.String(), Volume: q.Volume.String(), Halted: q.Halted,
		MarketDataType: q.DataType.String(), Time: q.Time}
	if !q.LastTime.IsZero() {
		w.LastTime = &q.LastTime
	}
	return snapshotData{Quote: w}, nil
}

// HistoricalBars implements broker.Broker.
func (c *Client) HistoricalBars(ctx context.Context, ct broker.Contract, r broker.BarsRequest) ([]broker.Bar, error) {
	wb := &wireBarsRequest{Duration: r.Duration, BarSize: r.BarSize, WhatToShow: r.WhatToShow, UseRTH: r.UseRTH}
	if !r.End.IsZero() {
		wb.End = r.End.UTC().Format(time.RFC3339Nano)
	}
	var d barsData
	if err := c.call(ctx, string(broker.OpHistoricalBars), &wireRequest{Contract: toWireContract(ct), Bars: wb}, &d); err != nil {
		return nil, err
	}
	out := make([]broker.Bar, len(d.Bars))
	for i, w := range d.Bars {
		out[i] = broker.Bar{Time: w.Time, Count: w.Count}
		var errs []error
		for _, f := range []struct {
			name, text string
			dst        *broker.Decimal
		}{{"open", w.Open, &out[i].Open}, {"high", w.High, &out[i].High}, {"low", w.Low, &out[i].Low},
			{"close", w.Close, &out[i].Close}, {"volume", w.Volume, &out[i].Volume}, {"wap", w.WAP, &out[i].WAP}} {
			var err error
			if *f.dst, err = wireDecimal(f.name, f.text); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func serveHistoricalBars(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	c, err := requestContract(req)
	if err != nil {
		return nil, err
	}
	if req.Bars == nil {
		return nil, fmt.Errorf("%w: get_historical_bars needs \"bars\"", broker.ErrInvalidArgument)
	}
	r := broker.BarsRequest{Duration: req.Bars.Duration, BarSize: req.Bars.BarSize, WhatToShow: req.Bars.WhatToShow,
		UseRTH: req.Bars.UseRTH}
	if req.Bars.End != "" {
		if r.End, err = time.Parse(time.RFC3339Nano, req.Bars.End); err != nil {
			return nil, fmt.Errorf("%w: bars end %q: not RFC 3339", broker.ErrInvalidArgument, req.Bars.End)
		}
	}
	bars, err := b.HistoricalBars(ctx, c, r)
	if err != nil {
		return nil, err
	}
	out := barsData{Bars: make([]wireBar, len(bars))}
	for i, x := range bars {
		out.Bars[i] = wireBar{Time: x.Time, Open: x.Open.String(), High: x.High.String(), Low: x.Low.String(),
			Close: x.Close.String(), Volume: x.Volume.String(), WAP: x.WAP.String(), Count: x.Count}
	}
	return out, nil
}

// SetMarketDataType implements broker.Broker.
func (c *Client) SetMarketDataType(ctx context.Context, t broker.MarketDataType) error {
	if !t.Valid() {
		return fmt.Errorf("%w: market data type %d", broker.ErrInvalidArgument, int(t))
	}
	return c.call(ctx, string(broker.OpSetMarketDataType), &wireRequest{MarketDataType: t.String()}, nil)
}

func serveSetMarketDataType(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	t, err := broker.ParseMarketDataType(req.MarketDataType)
	if err != nil {
		return nil, err
	}
	if err := b.SetMarketDataType(ctx, t); err != nil {
		return nil, err
	}
	return marketDataTypeData{MarketDataType: t.String()}, nil
}

// requestContract is the request's contract, or ErrInvalidArgument.
func requestContract(req *wireRequest) (broker.Contract, error) {
	if req.Contract == nil {
		return broker.Contract{}, fmt.Errorf("%w: %s needs \"contract\"", broker.ErrInvalidArgument, req.Command)
	}
	c, err := fromWireContract(*req.Contract)
	if err != nil {
		return broker.Contract{}, fmt.Errorf("%w: %v", broker.ErrInvalidArgument, err)
	}
	return c, nil
}

func toWireContract(c broker.Contract) *wireContract {
	return &wireContract{ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Expiry: c.Expiry, Strike: c.Strike.String(),
		Right: c.Right, Multiplier: c.Multiplier, Exchange: c.Exchange, Currency: c.Currency, LocalSymbol: c.LocalSymbol,
		TradingClass: c.TradingClass}
}

// fromWireContract parses a contract's strike exactly ("" is 0); other text
// is an error wrapping broker.ErrProtocol.
func fromWireContract(w wireContract) (broker.Contract, error) {
	c := broker.Contract{ConID: w.ConID, Symbol: w.Symbol, SecType: w.SecType, Expiry: w.Expiry, Right: w.Right,
		Multiplier: w.Multiplier, Exchange: w.Exchange, Currency: w.Currency, LocalSymbol: w.LocalSymbol,
		TradingClass: w.TradingClass}
	var err error
	c.Strike, err = wireDecimal("strike", w.Strike)
	return c, err
}

// wireDecimal parses decimal text from the wire ("" is 0); other text is an
// error wrapping broker.ErrProtocol.
func wireDecimal(name, s string) (broker.Decimal, error) {
	if s == "" {
		return broker.Decimal{}, nil
	}
	d, err := broker.ParseDecimal(s)
	if err != nil {
		return broker.Decimal{}, fmt.Errorf("%w: %s %q is not a decimal", broker.ErrProtocol, name, s)
	}
	return d, nil
}

// ---- get_account_updates ----

// AccountUpdates implements broker.Broker.
func (c *Client) AccountUpdates(ctx context.Context, account string) (broker.AccountUpdate, error) {
	var d accountUpdatesData
	if err := c.call(ctx, string(broker.OpAccountUpdates), &wireRequest{Account: account}, &d); err != nil {
		return broker.AccountUpdate{}, err
	}
	d.Update.Values, d.Update.Portfolio = nonNil(d.Update.Values), nonNil(d.Update.Portfolio)
	return d.Update, nil
}

func serveAccountUpdates(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	u, err := b.AccountUpdates(ctx, req.Account)
	if err != nil {
		return nil, err
	}
	u.Values, u.Portfolio = nonNil(u.Values), nonNil(u.Portfolio)
	return accountUpdatesData{Update: u}, nil
}

// ---- get_executions ----

// Executions implements broker.Broker.
func (c *Client) Executions(ctx context.Context, f broker.ExecutionFilter) ([]broker.Execution, error) {
	req := &wireRequest{}
	if f != (broker.ExecutionFilter{}) {
		req.Filter = &f
	}
	var d executionsData
	if err := c.call(ctx, string(broker.OpExecutions), req, &d); err != nil {
		return nil, err
	}
	return nonNil(d.Executions), nil
}

func serveExecutions(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	var f broker.ExecutionFilter
	if req.Filter != nil {
		f = *req.Filter
	}
	xs, err := b.Executions(ctx, f)
	if err != nil {
		return nil, err
	}
	return executionsData{Executions: nonNil(xs)}, nil
}

// ---- get_open_orders, get_completed_orders ----

// OpenOrders implements broker.Broker.
func (c *Client) OpenOrders(ctx context.Context) ([]broker.Order, error) {
	return c.orders(ctx, broker.OpOpenOrders)
}

// CompletedOrders implements broker.Broker.
func (c *Client) CompletedOrders(ctx context.Context) ([]broker.Order, error) {
	return c.orders(ctx, broker.OpCompletedOrders)
}

func (c *Client) orders(ctx context.Context, op broker.Op) ([]broker.Order, error) {
	var d ordersData
	if err := c.call(ctx, string(op), nil, &d); err != nil {
		return nil, err
	}
	return nonNil(d.Orders), nil
}

func serveOpenOrders(ctx context.Context, b broker.Broker, _ *wireRequest) (any, error) {
	os, err := b.OpenOrders(ctx)
	if err != nil {
		return nil, err
	}
	return ordersData{Orders: nonNil(os)}, nil
}

func serveCompletedOrders(ctx context.Context, b broker.Broker, _ *wireRequest) (any, error) {
	os, err := b.CompletedOrders(ctx)
	if err != nil {
		return nil, err
	}
	return ordersData{Orders: nonNil(os)}, nil
}
