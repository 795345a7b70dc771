package stdiojson

// This file holds the market data operations of the worker and the client
// (the per-operation table is in ops.go).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

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
	return fromWireQuote(d.Quote, false)
}

// fromWireQuote parses a quote's decimals exactly and its market data type;
// an empty type is accepted only if zeroType (a gap marker's zero quote).
func fromWireQuote(w wireQuote, zeroType bool) (broker.Quote, error) {
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
	if w.MarketDataType != "" || !zeroType {
		if q.DataType, err = broker.ParseMarketDataType(w.MarketDataType); err != nil {
			errs = append(errs, fmt.Errorf("%w: %v", broker.ErrProtocol, err))
		}
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
	return snapshotData{Quote: toWireQuote(q)}, nil
}

// toWireQuote is q as the wire carries it; a zero market data type (a gap
// marker's) is "".
func toWireQuote(q broker.Quote) wireQuote {
	w := wireQuote{Contract: *toWireContract(q.Contract), Bid: q.Bid.String(), Ask: q.Ask.String(), Last: q.Last.String(),
		BidSize: q.BidSize.String(), AskSize: q.AskSize.String(), LastSize: q.LastSize.String(), Open: q.Open.String(),
		High: q.High.String(), Low: q.Low.String(), Close: q.Close.String(), Volume: q.Volume.String(), Halted: q.Halted,
		Time: q.Time}
	if q.DataType != 0 {
		w.MarketDataType = q.DataType.String()
	}
	if !q.LastTime.IsZero() {
		w.LastTime = &q.LastTime
	}
	return w
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
