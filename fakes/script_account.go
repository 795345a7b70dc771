package fakes

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/brokerkit/brokerkit/broker"
)

// Mark is the market side of one position (Account, ConID) for PORTFOLIO_VALUE,
// PNL and PNL_SINGLE. A position without a Mark is valued at its average cost:
// market price avgCost/multiplier, market value quantity×avgCost, PnL 0.
type Mark struct {
	Account       string
	ConID         int64
	MarketPrice   broker.Decimal
	MarketValue   broker.Decimal // zero means quantity × MarketPrice × multiplier
	UnrealizedPnL broker.Decimal
	RealizedPnL   broker.Decimal
	DailyPnL      broker.Decimal
}

// Execution is one fill the gateway reports to REQ_EXECUTIONS, as EXECUTION_DATA
// followed by its COMMISSION_REPORT.
type Execution struct {
	ExecID             string // unique, e.g. "0000e0d5.67890abc.01.01"
	OrderID            int64
	PermID             int64
	ClientID           int64
	Account            string
	Contract           broker.Contract
	Time               string // "20261201 15:04:05 US/Eastern", as TWS sends it
	Exchange           string
	Side               string // "BOT" or "SLD"
	Shares             broker.Decimal
	Price              broker.Decimal
	CumQty             broker.Decimal // zero means Shares
	AvgPrice           broker.Decimal // zero means Price
	OrderRef           string
	Commission         broker.Decimal
	CommissionCurrency string
	RealizedPnL        broker.Decimal
}

// mark returns the mark of p: the script's, or one at average cost.
func (s Script) mark(p broker.Position) Mark {
	for _, m := range s.Marks {
		if m.Account == p.Account && m.ConID == p.Contract.ConID {
			if m.MarketValue.IsZero() {
				v := new(big.Rat).Mul(p.Quantity.Rat(), m.MarketPrice.Rat())
				m.MarketValue = ratDecimal(v.Mul(v, multiplier(p.Contract).Rat()))
			}
			return m
		}
	}
	price := new(big.Rat).Quo(p.AvgCost.Rat(), multiplier(p.Contract).Rat())
	return Mark{Account: p.Account, ConID: p.Contract.ConID, MarketPrice: ratDecimal(price),
		MarketValue: ratDecimal(new(big.Rat).Mul(p.Quantity.Rat(), p.AvgCost.Rat()))}
}

// multiplier returns c's multiplier, 1 if it has none.
func multiplier(c broker.Contract) broker.Decimal {
	if m, err := broker.ParseDecimal(c.Multiplier); err == nil && !m.IsZero() {
		return m
	}
	return broker.DecimalFromInt(1)
}

// ratDecimal rounds r to 10 decimal places (sums and products of script
// decimals with fewer places are exact).
func ratDecimal(r *big.Rat) broker.Decimal {
	s := strings.TrimRight(strings.TrimRight(r.FloatString(10), "0"), ".")
	d, err := broker.ParseDecimal(s)
	if err != nil { // unreachable: FloatString is always a decimal
		panic(fmt.Sprintf("fakes: %q is not a decimal: %v", s, err))
	}
	return d
}

// executions returns the script's executions that match a REQ_EXECUTIONS
// filter: each non-empty filter field must equal the execution's (case-insensitively
// for text), client id 0 matches any, and time "yyyymmdd hh:mm:ss" (or
// "yyyymmdd-hh:mm:ss") keeps executions at or after it.
func (s Script) executions(clientID int64, account, since, symbol, secType, exchange, side string) []Execution {
	var out []Execution
	eq := func(want, got string) bool { return want == "" || strings.EqualFold(want, got) }
	// The filter names a side as an order does (BUY, SELL), an execution as a fill does (BOT, SLD).
	switch strings.ToUpper(side) {
	case "BUY":
		side = "BOT"
	case "SELL":
		side = "SLD"
	}
	for _, e := range s.Executions {
		if (clientID != 0 && e.ClientID != clientID) || !eq(account, e.Account) || !eq(symbol, e.Contract.Symbol) ||
			!eq(secType, e.Contract.SecType) || !eq(exchange, e.Exchange) || !eq(side, e.Side) {
			continue
		}
		if since != "" && len(e.Time) >= 17 && len(since) >= 17 && execTime(e.Time) < execTime(since) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// execTime returns the "yyyymmdd hh:mm:ss" prefix of t, which may also be
// written "yyyymmdd-hh:mm:ss" (the form IB documents for the filter).
func execTime(t string) string {
	b := []byte(t[:17])
	if b[8] == '-' {
		b[8] = ' '
	}
	return string(b)
}

// validateAccountData checks Marks and Executions for Validate.
func (s Script) validateAccountData(bad func(format string, a ...any) error) error {
	for i, m := range s.Marks {
		if strings.IndexByte(m.Account, 0) >= 0 {
			return bad("mark %d: account contains NUL", i)
		}
	}
	seen := map[string]bool{}
	for i, e := range s.Executions {
		c := e.Contract
		for _, f := range []string{e.ExecID, e.Account, e.Time, e.Exchange, e.Side, e.OrderRef, e.CommissionCurrency,
			c.Symbol, c.SecType, c.Expiry, c.Right, c.Multiplier, c.Exchange, c.Currency, c.LocalSymbol, c.TradingClass} {
			if strings.IndexByte(f, 0) >= 0 {
				return bad("execution %d: text contains NUL", i)
			}
		}
		if e.ExecID == "" || seen[e.ExecID] {
			return bad("execution %d: exec id %q is empty or repeated", i, e.ExecID)
		}
		seen[e.ExecID] = true
		if c.Multiplier != "" {
			if _, err := broker.ParseDecimal(c.Multiplier); err != nil {
				return bad("execution %d: multiplier %q is not a number", i, c.Multiplier)
			}
		}
	}
	return nil
}

// JSON shapes of Marks and Executions.
type (
	jsonMark struct {
		Account       string `json:"account"`
		ConID         int64  `json:"con_id"`
		MarketPrice   string `json:"market_price"`
		MarketValue   string `json:"market_value,omitempty"`
		UnrealizedPnL string `json:"unrealized_pnl,omitempty"`
		RealizedPnL   string `json:"realized_pnl,omitempty"`
		DailyPnL      string `json:"daily_pnl,omitempty"`
	}
	jsonExecution struct {
		ExecID             string       `json:"exec_id"`
		OrderID            int64        `json:"order_id,omitempty"`
		PermID             int64        `json:"perm_id,omitempty"`
		ClientID           int64        `json:"client_id,omitempty"`
		Account            string       `json:"account"`
		Contract           jsonContract `json:"contract"`
		Time               string       `json:"time"`
		Exchange           string       `json:"exchange,omitempty"`
		Side               string       `json:"side"`
		Shares             string       `json:"shares"`
		Price              string       `json:"price"`
		CumQty             string       `json:"cum_qty,omitempty"`
		AvgPrice           string       `json:"avg_price,omitempty"`
		OrderRef           string       `json:"order_ref,omitempty"`
		Commission         string       `json:"commission,omitempty"`
		CommissionCurrency string       `json:"commission_currency,omitempty"`
		RealizedPnL        string       `json:"realized_pnl,omitempty"`
	}
)

// optDec is the JSON text of an optional decimal: "" for zero.
func optDec(d broker.Decimal) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

func marshalMarks(ms []Mark) []jsonMark {
	var out []jsonMark
	for _, m := range ms {
		out = append(out, jsonMark{Account: m.Account, ConID: m.ConID, MarketPrice: m.MarketPrice.String(),
			MarketValue: optDec(m.MarketValue), UnrealizedPnL: optDec(m.UnrealizedPnL),
			RealizedPnL: optDec(m.RealizedPnL), DailyPnL: optDec(m.DailyPnL)})
	}
	return out
}

func marshalExecutions(es []Execution) []jsonExecution {
	var out []jsonExecution
	for _, e := range es {
		out = append(out, jsonExecution{ExecID: e.ExecID, OrderID: e.OrderID, PermID: e.PermID, ClientID: e.ClientID,
			Account: e.Account, Contract: marshalContract(e.Contract), Time: e.Time, Exchange: e.Exchange,
			Side: e.Side, Shares: e.Shares.String(), Price: e.Price.String(), CumQty: optDec(e.CumQty),
			AvgPrice: optDec(e.AvgPrice), OrderRef: e.OrderRef, Commission: optDec(e.Commission),
			CommissionCurrency: e.CommissionCurrency, RealizedPnL: optDec(e.RealizedPnL)})
	}
	return out
}

// decimalParser parses JSON decimals, remembering the first error.
type decimalParser struct {
	bad func(format string, a ...any) error
	err error
}

func (p *decimalParser) dec(what, v string, optional bool) broker.Decimal {
	if p.err != nil || (v == "" && optional) {
		return broker.Decimal{}
	}
	d, err := broker.ParseDecimal(v)
	if err != nil {
		p.err = p.bad("%s: %v", what, err)
	}
	return d
}

func unmarshalMarks(js []jsonMark, bad func(format string, a ...any) error) ([]Mark, error) {
	p := decimalParser{bad: bad}
	var out []Mark
	for i, j := range js {
		w := func(f string) string { return fmt.Sprintf("marks[%d].%s", i, f) }
		out = append(out, Mark{Account: j.Account, ConID: j.ConID,
			MarketPrice:   p.dec(w("market_price"), j.MarketPrice, false),
			MarketValue:   p.dec(w("market_value"), j.MarketValue, true),
			UnrealizedPnL: p.dec(w("unrealized_pnl"), j.UnrealizedPnL, true),
			RealizedPnL:   p.dec(w("realized_pnl"), j.RealizedPnL, true),
			DailyPnL:      p.dec(w("daily_pnl"), j.DailyPnL, true)})
	}
	return out, p.err
}

func unmarshalExecutions(js []jsonExecution, bad func(format string, a ...any) error) ([]Execution, error) {
	p := decimalParser{bad: bad}
	var out []Execution
	for i, j := range js {
		w := func(f string) string { return fmt.Sprintf("executions[%d].%s", i, f) }
		c := j.Contract
		out = append(out, Execution{ExecID: j.ExecID, OrderID: j.OrderID, PermID: j.PermID, ClientID: j.ClientID,
			Account: j.Account, Contract: broker.Contract{ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType,
				Expiry: c.Expiry, Strike: p.dec(w("contract.strike"), c.Strike, true), Right: c.Right,
				Multiplier: c.Multiplier, Exchange: c.Exchange, Currency: c.Currency, LocalSymbol: c.LocalSymbol,
				TradingClass: c.TradingClass},
			Time: j.Time, Exchange: j.Exchange, Side: j.Side,
			Shares: p.dec(w("shares"), j.Shares, false), Price: p.dec(w("price"), j.Price, false),
			CumQty: p.dec(w("cum_qty"), j.CumQty, true), AvgPrice: p.dec(w("avg_price"), j.AvgPrice, true),
			OrderRef: j.OrderRef, Commission: p.dec(w("commission"), j.Commission, true),
			CommissionCurrency: j.CommissionCurrency, RealizedPnL: p.dec(w("realized_pnl"), j.RealizedPnL, true)})
	}
	return out, p.err
}
