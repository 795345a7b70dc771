package fakes

import (
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/brokerkit/brokerkit/broker"
)

// This file is the order simulator's market (docs/adr/0013): the scripted
// quotes, SetPrice, when an order trades and what a fill changes (the order,
// the script's executions and positions), and the quotes' script form.

// Quote is the scripted market of one symbol for the order simulator: market
// orders fill at Price, limit and stop orders when Price crosses theirs
// (Gateway.SetPrice moves it). A symbol without a Quote trades at its
// Instrument's last price, if the script has one; an order for any other
// symbol is rejected with error 201.
type Quote struct {
	Symbol string
	ConID  int64          // the contract id fills and positions carry; 0 keeps the order's
	Price  broker.Decimal // last price
	// MinTick is the price increment limit and stop prices must be a multiple
	// of (error 110 otherwise); zero means 0.01.
	MinTick broker.Decimal
	// FillSize > 0 splits fills: a market order fills in executions of at most
	// FillSize; a limit or stop order fills at most FillSize each time the
	// price crosses (placement, modification, SetPrice), so partial fills stay
	// visible. Zero fills everything at once.
	FillSize broker.Decimal
	// Commission per execution, in USD; zero means 1.
	Commission broker.Decimal
}

// SetPrice sets the last price of symbol (overriding its Quote) and fills the
// working orders it crosses, reporting to their clients that are connected.
// It returns how many executions it made.
func (g *Gateway) SetPrice(symbol string, price broker.Decimal) int {
	b := g.orders
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prices[symbol] = price
	sc := g.currentScript()
	n := 0
	for _, o := range b.orders {
		if o.working() && o.Contract.Symbol == symbol {
			evs := g.tryFillLocked(sc, o, false)
			n += countExecs(evs)
			g.pushLocked(nil, o, evs)
		}
	}
	return n
}

func countExecs(evs []orderEvent) int {
	n := 0
	for _, e := range evs {
		if e.exec != nil {
			n++
		}
	}
	return n
}

// quote returns the market of c: its Quote, else that of the script's
// Instrument of the same symbol (and security type, if c names one), priced
// at its last (else its close, else its bid/ask midpoint).
func (sc Script) quote(c broker.Contract) (Quote, bool) {
	for _, q := range sc.Quotes {
		if q.Symbol == c.Symbol {
			return q, true
		}
	}
	for _, in := range sc.Instruments {
		ic := in.Contract
		if ic.Symbol != c.Symbol || (c.SecType != "" && !strings.EqualFold(c.SecType, ic.SecType)) ||
			(c.ConID != 0 && c.ConID != ic.ConID) {
			continue
		}
		q := Quote{Symbol: ic.Symbol, ConID: ic.ConID, Price: in.Quote.Last, MinTick: in.MinTick}
		if q.Price.IsZero() {
			q.Price = in.Quote.Close
		}
		if q.Price.IsZero() && !in.Quote.Bid.IsZero() && !in.Quote.Ask.IsZero() {
			mid := new(big.Rat).Add(in.Quote.Bid.Rat(), in.Quote.Ask.Rat())
			q.Price = ratDecimal(mid.Quo(mid, big.NewRat(2, 1)))
		}
		return q, true
	}
	return Quote{}, false
}

// marketable reports whether o trades at price p, and at what price.
func marketable(o *Order, p broker.Decimal) (broker.Decimal, bool) {
	buy := o.Action == "BUY"
	crossed := func(limit broker.Decimal) bool {
		c := p.Cmp(limit)
		return (buy && c <= 0) || (!buy && c >= 0)
	}
	triggered := func() bool {
		c := p.Cmp(o.AuxPrice)
		return (buy && c >= 0) || (!buy && c <= 0)
	}
	switch o.OrderType {
	case "MKT":
		return p, true
	case "LMT":
		return p, crossed(o.LmtPrice)
	case "STP":
		return p, triggered()
	case "STP LMT":
		return p, triggered() && crossed(o.LmtPrice)
	}
	return p, false
}

// tryFillLocked fills what o can fill at the current price and returns the
// events that report it (pushLocked renders them per recipient); b.mu is
// held. placed is true at placement and modification, when an IOC order's
// unfilled rest is cancelled.
func (g *Gateway) tryFillLocked(sc Script, o *Order, placed bool) []orderEvent {
	return g.orders.tryFill(sc, o, placed, g.recordFill)
}

// tryFill is the simulator's matching, shared by the Gateway and the Memory:
// it fills what o can fill at the current price (SetPrice's, else the
// Quote's), hands each execution to record and returns the events that
// report them. The caller holds whatever lock guards b.
func (b *orderBook) tryFill(sc Script, o *Order, placed bool, record func(Execution)) []orderEvent {
	if o.Status != StatusSubmitted {
		return nil
	}
	q, _ := sc.quote(o.Contract)
	price := q.Price
	if p, ok := b.prices[o.Contract.Symbol]; ok {
		price = p
	}
	var evs []orderEvent
	if px, ok := marketable(o, price); ok && !price.IsZero() {
		for first := true; o.Remaining().Rat().Sign() > 0; first = false {
			if !first && o.OrderType != "MKT" {
				break
			}
			size := o.Remaining()
			if !q.FillSize.IsZero() && q.FillSize.Cmp(size) < 0 {
				size = q.FillSize
			}
			evs = append(evs, b.fill(o, q, size, px, record)...)
		}
	}
	if placed && o.TIF == "IOC" && o.working() {
		o.Status, o.CompletedTime = StatusCancelled, execTimeNow()
		evs = append(evs, snapshot(o, true))
	}
	return evs
}

// fill executes size of o at px: one execution (handed to record, which
// updates the script's executions and positions) and the order's new state.
func (b *orderBook) fill(o *Order, q Quote, size, px broker.Decimal, record func(Execution)) []orderEvent {
	filled := new(big.Rat).Add(o.Filled.Rat(), size.Rat())
	avg := new(big.Rat).Add(new(big.Rat).Mul(o.AvgFillPrice.Rat(), o.Filled.Rat()), new(big.Rat).Mul(px.Rat(), size.Rat()))
	avg.Quo(avg, filled)
	o.Filled, o.AvgFillPrice, o.LastFillPrice = ratDecimal(filled), ratDecimal(avg), px
	if o.Remaining().Rat().Sign() <= 0 {
		o.Status, o.CompletedTime = StatusFilled, execTimeNow()
	}
	b.execs++
	side := "BOT"
	if o.Action == "SELL" {
		side = "SLD"
	}
	commission := q.Commission
	if commission.IsZero() {
		commission = broker.DecimalFromInt(1)
	}
	e := Execution{ExecID: fmt.Sprintf("0000f4k3.%08x.01.01", b.execs), OrderID: o.ID, PermID: o.PermID,
		ClientID: o.ClientID, Account: o.Account, Contract: o.Contract, Time: execTimeNow(), Exchange: "SMART",
		Side: side, Shares: size, Price: px, CumQty: o.Filled, AvgPrice: o.AvgFillPrice, OrderRef: o.OrderRef,
		Commission: commission, CommissionCurrency: "USD"}
	o.ExecIDs = append(o.ExecIDs, e.ExecID)
	record(e)
	return []orderEvent{{exec: &e}, snapshot(o, false)}
}

// recordFill adds e to the script's executions and moves the position.
func (g *Gateway) recordFill(e Execution) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.script = g.script.withFill(e)
}

// withFill returns a copy of s (sharing nothing with it) with e among its
// executions and the position e trades moved by it.
func (s Script) withFill(e Execution) Script {
	s = s.Clone()
	s.Executions = append(s.Executions, e)
	delta := e.Shares.Rat()
	if e.Side == "SLD" {
		delta.Neg(delta)
	}
	i := slices.IndexFunc(s.Positions, func(p broker.Position) bool {
		return p.Account == e.Account && p.Contract.ConID == e.Contract.ConID && p.Contract.Symbol == e.Contract.Symbol
	})
	if i < 0 {
		s.Positions = append(s.Positions, broker.Position{Account: e.Account, Contract: e.Contract})
		i = len(s.Positions) - 1
	}
	p := &s.Positions[i]
	old := p.Quantity.Rat()
	qty := new(big.Rat).Add(old, delta)
	switch {
	case qty.Sign() == 0:
		p.AvgCost = broker.Decimal{}
	case old.Sign() == 0 || old.Sign() != qty.Sign():
		p.AvgCost = ratDecimal(new(big.Rat).Mul(e.Price.Rat(), multiplier(e.Contract).Rat()))
	case old.Sign() == delta.Sign(): // adding: weighted average cost
		cost := new(big.Rat).Add(new(big.Rat).Mul(p.AvgCost.Rat(), new(big.Rat).Abs(old)),
			new(big.Rat).Mul(new(big.Rat).Mul(e.Price.Rat(), multiplier(e.Contract).Rat()), new(big.Rat).Abs(delta)))
		p.AvgCost = ratDecimal(cost.Quo(cost, new(big.Rat).Abs(qty)))
	}
	p.Quantity = ratDecimal(qty)
	return s
}

// validateQuotes reports a quote the simulator cannot use: an empty or
// duplicate symbol, NUL in it, or a negative price, tick, size or commission.
func (s Script) validateQuotes(bad func(string, ...any) error) error {
	seen := map[string]bool{}
	for i, q := range s.Quotes {
		if q.Symbol == "" || strings.IndexByte(q.Symbol, 0) >= 0 || seen[q.Symbol] {
			return bad("quote %d: symbol %q is empty, contains NUL or repeats", i, q.Symbol)
		}
		seen[q.Symbol] = true
		for _, d := range []broker.Decimal{q.Price, q.MinTick, q.FillSize, q.Commission} {
			if d.Rat().Sign() < 0 {
				return bad("quote %d (%s): negative price, tick, fill size or commission", i, q.Symbol)
			}
		}
	}
	return nil
}

// jsonOrderQuote is a Quote in the script's JSON form (decimals as strings).
type jsonOrderQuote struct {
	Symbol     string `json:"symbol"`
	ConID      int64  `json:"con_id,omitempty"`
	Price      string `json:"price"`
	MinTick    string `json:"min_tick,omitempty"`
	FillSize   string `json:"fill_size,omitempty"`
	Commission string `json:"commission,omitempty"`
}

func marshalQuotes(qs []Quote) []jsonOrderQuote {
	var out []jsonOrderQuote
	opt := func(d broker.Decimal) string {
		if d.IsZero() {
			return ""
		}
		return d.String()
	}
	for _, q := range qs {
		out = append(out, jsonOrderQuote{Symbol: q.Symbol, ConID: q.ConID, Price: q.Price.String(),
			MinTick: opt(q.MinTick), FillSize: opt(q.FillSize), Commission: opt(q.Commission)})
	}
	return out
}

func unmarshalQuotes(js []jsonOrderQuote, bad func(string, ...any) error) ([]Quote, error) {
	var out []Quote
	for i, j := range js {
		q := Quote{Symbol: j.Symbol, ConID: j.ConID}
		for _, f := range []struct {
			dst  *broker.Decimal
			text string
			name string
		}{{&q.Price, j.Price, "price"}, {&q.MinTick, j.MinTick, "min_tick"}, {&q.FillSize, j.FillSize, "fill_size"},
			{&q.Commission, j.Commission, "commission"}} {
			if f.text == "" && f.name != "price" {
				continue
			}
			d, err := broker.ParseDecimal(f.text)
			if err != nil {
				return nil, bad("quotes[%d].%s: %v", i, f.name, err)
			}
			*f.dst = d
		}
		out = append(out, q)
	}
	return out, nil
}
