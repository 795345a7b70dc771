package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/brokerkit/brokerkit/broker"
)

// The JSON documents the commands print. Positions and account summaries have
// the shape of the stdiojson worker's answers (PROTOCOL.md), field for field, so
// that one parser reads both; decimals are JSON strings holding the exact text.

// jsonContract is a contract as the stdiojson worker sends it.
type jsonContract struct {
	ConID        int64  `json:"con_id"`
	Symbol       string `json:"symbol"`
	SecType      string `json:"sec_type"`
	Expiry       string `json:"expiry"`
	Strike       string `json:"strike"` // decimal text, "0" when none
	Right        string `json:"right"`
	Multiplier   string `json:"multiplier"`
	Exchange     string `json:"exchange"`
	Currency     string `json:"currency"`
	LocalSymbol  string `json:"local_symbol"`
	TradingClass string `json:"trading_class"`
}

// jsonPosition is a position as the stdiojson worker sends it.
type jsonPosition struct {
	Account  string       `json:"account"`
	Contract jsonContract `json:"contract"`
	Quantity string       `json:"quantity"` // decimal text
	AvgCost  string       `json:"avg_cost"` // decimal text
}

// jsonSummary is one account's summary as the stdiojson worker sends it.
type jsonSummary struct {
	Account string                      `json:"account"`
	Values  map[string]jsonSummaryValue `json:"values"`
}

type jsonSummaryValue struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

// jsonGateway says what a command connected to.
type jsonGateway struct {
	Host          string `json:"host"`
	Port          int    `json:"port"`
	ClientID      int64  `json:"client_id"`
	ServerVersion int    `json:"server_version"`
	Transport     string `json:"transport"`
	Embedded      bool   `json:"embedded"`
}

// jsonReport is the document of demo (every field) and of the query commands
// (the one field they query; ping its rtt_ms and gateway).
type jsonReport struct {
	Gateway   *jsonGateway    `json:"gateway,omitempty"`
	RTTMS     *float64        `json:"rtt_ms,omitempty"`
	Accounts  *[]string       `json:"accounts,omitempty"` // pointers: an empty list the command asked for is printed
	Positions *[]jsonPosition `json:"positions,omitempty"`
	Summaries *[]jsonSummary  `json:"summaries,omitempty"`
	Quotes    *[]jsonQuote    `json:"quotes,omitempty"`
	// The read side's documents are the port's JSON forms, as the worker sends them.
	Updates    *[]broker.AccountUpdate `json:"updates,omitempty"`
	Executions *[]broker.Execution     `json:"executions,omitempty"`
	Orders     *[]broker.Order         `json:"orders,omitempty"`
	Order      *orderDoc               `json:"order,omitempty"` // demo's order
}

func toJSONPosition(p broker.Position) jsonPosition {
	c := p.Contract
	return jsonPosition{
		Account: p.Account,
		Contract: jsonContract{ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Expiry: c.Expiry,
			Strike: c.Strike.String(), Right: c.Right, Multiplier: c.Multiplier, Exchange: c.Exchange,
			Currency: c.Currency, LocalSymbol: c.LocalSymbol, TradingClass: c.TradingClass},
		Quantity: p.Quantity.String(),
		AvgCost:  p.AvgCost.String(),
	}
}

func toJSONSummary(s broker.AccountSummary) jsonSummary {
	js := jsonSummary{Account: s.Account, Values: make(map[string]jsonSummaryValue, len(s.Values))}
	for tag, v := range s.Values {
		js.Values[tag] = jsonSummaryValue(v)
	}
	return js
}

// report is what demo and the query commands print. A nil slice is a part the
// command did not ask for; an empty one is printed as empty.
type report struct {
	Gateway   *jsonGateway
	RTTMS     *float64
	Accounts  []string
	Positions []broker.Position
	Summary   []broker.AccountSummary
	Quotes    []broker.Quote

	Updates     []broker.AccountUpdate
	Executions  []broker.Execution
	Orders      []broker.Order
	OrdersTitle string
	Order       *orderDoc // demo's order (orders.go)
}

func (r report) write(w io.Writer, asJSON bool) error {
	if asJSON {
		return r.writeJSON(w)
	}
	var sections []string
	if g := r.Gateway; g != nil && g.Embedded {
		sections = append(sections, fmt.Sprintf("Connected to the embedded fake IB Gateway at %s:%d (server version %d) over %s",
			g.Host, g.Port, g.ServerVersion, g.Transport))
	}
	if r.RTTMS != nil {
		sections = append(sections, fmt.Sprintf("pong from %s:%d in %.3f ms", r.Gateway.Host, r.Gateway.Port, *r.RTTMS))
	}
	if r.Accounts != nil {
		sections = append(sections, "Accounts: "+strings.Join(r.Accounts, ", "))
	}
	if r.Positions != nil {
		t := table{header: []string{"ACCOUNT", "SYMBOL", "TYPE", "EXPIRY", "STRIKE", "RIGHT", "MULT", "CCY", "QUANTITY", "AVG COST"},
			right: []bool{4: true, 6: true, 8: true, 9: true}}
		for _, p := range r.Positions {
			c := p.Contract
			strike := ""
			if !c.Strike.IsZero() {
				strike = c.Strike.String()
			}
			t.rows = append(t.rows, []string{p.Account, c.Symbol, c.SecType, c.Expiry, strike, c.Right, c.Multiplier, c.Currency,
				p.Quantity.String(), p.AvgCost.String()})
		}
		sections = append(sections, fmt.Sprintf("Positions (%d)\n%s", len(r.Positions), t))
	}
	if r.Summary != nil {
		t := table{header: []string{"ACCOUNT", "TAG", "VALUE", "CCY"}, right: []bool{2: true}}
		for _, s := range r.Summary {
			for _, tag := range sortedTags(s.Values) {
				v := s.Values[tag]
				t.rows = append(t.rows, []string{s.Account, tag, v.Value, v.Currency})
			}
		}
		sections = append(sections, "Account summary\n"+t.String())
	}
	if r.Quotes != nil {
		sections = append(sections, "Quote\n"+quotesText(r.Quotes))
	}
	sections = append(sections, r.readSections()...)
	if r.Order != nil {
		var sb strings.Builder
		if err := writeOrder(&sb, *r.Order, false); err != nil {
			return err
		}
		sections = append(sections, "Order\n"+strings.TrimSuffix(sb.String(), "\n"))
	}
	_, err := io.WriteString(w, strings.Join(sections, "\n\n")+"\n")
	return err
}

// readSections renders the read side's parts as tables.
func (r report) readSections() []string {
	var sections []string
	for _, u := range r.Updates {
		t := table{header: []string{"KEY", "VALUE", "CCY"}, right: []bool{1: true}}
		for _, v := range u.Values {
			t.rows = append(t.rows, []string{v.Key, v.Value, v.Currency})
		}
		p := table{header: []string{"SYMBOL", "TYPE", "CCY", "POSITION", "PRICE", "VALUE", "AVG COST", "UNREALIZED", "REALIZED"},
			right: []bool{3: true, 4: true, 5: true, 6: true, 7: true, 8: true}}
		for _, x := range u.Portfolio {
			c := x.Contract
			p.rows = append(p.rows, []string{c.Symbol, c.SecType, c.Currency, x.Position.String(), x.MarketPrice.String(),
				x.MarketValue.String(), x.AvgCost.String(), x.UnrealizedPnL.String(), x.RealizedPnL.String()})
		}
		sections = append(sections, fmt.Sprintf("Account %s (updated %s)\n%s\n\nPortfolio of %s (%d)\n%s",
			u.Account, u.UpdateTime, t, u.Account, len(u.Portfolio), p))
	}
	if r.Executions != nil {
		t := table{header: []string{"TIME", "ACCOUNT", "SYMBOL", "SIDE", "SHARES", "PRICE", "COMMISSION", "CCY", "REALIZED", "EXEC ID"},
			right: []bool{4: true, 5: true, 6: true, 8: true}}
		for _, x := range r.Executions {
			t.rows = append(t.rows, []string{x.Time, x.Account, x.Contract.Symbol, x.Side, x.Shares.String(), x.Price.String(),
				x.Commission.String(), x.CommissionCurrency, x.RealizedPnL.String(), x.ExecID})
		}
		sections = append(sections, fmt.Sprintf("Executions (%d)\n%s", len(r.Executions), t))
	}
	if r.Orders != nil {
		t := table{header: []string{"ORDER", "ACCOUNT", "SYMBOL", "ACTION", "TYPE", "QUANTITY", "LIMIT", "AUX", "TIF", "STATUS", "FILLED"},
			right: []bool{0: true, 5: true, 6: true, 7: true, 10: true}}
		for _, o := range r.Orders {
			t.rows = append(t.rows, []string{strconv.FormatInt(o.OrderID, 10), o.Account, o.Contract.Symbol, o.Action, o.OrderType,
				o.TotalQuantity.String(), o.LimitPrice.String(), o.AuxPrice.String(), o.TIF, o.Status, o.Filled.String()})
		}
		sections = append(sections, fmt.Sprintf("%s (%d)\n%s", r.OrdersTitle, len(r.Orders), t))
	}
	return sections
}

func (r report) writeJSON(w io.Writer) error {
	out := jsonReport{Gateway: r.Gateway, RTTMS: r.RTTMS}
	if r.Accounts != nil {
		out.Accounts = &r.Accounts
	}
	if r.Positions != nil {
		ps := make([]jsonPosition, 0, len(r.Positions))
		for _, p := range r.Positions {
			ps = append(ps, toJSONPosition(p))
		}
		out.Positions = &ps
	}
	if r.Summary != nil {
		ss := make([]jsonSummary, 0, len(r.Summary))
		for _, s := range r.Summary {
			ss = append(ss, toJSONSummary(s))
		}
		out.Summaries = &ss
	}
	if r.Quotes != nil {
		qs := make([]jsonQuote, 0, len(r.Quotes))
		for _, q := range r.Quotes {
			qs = append(qs, toJSONQuote(q))
		}
		out.Quotes = &qs
	}
	if r.Updates != nil {
		out.Updates = &r.Updates
	}
	if r.Executions != nil {
		out.Executions = &r.Executions
	}
	if r.Orders != nil {
		out.Orders = &r.Orders
	}
	out.Order = r.Order
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func sortedTags(m map[string]broker.SummaryValue) []string {
	tags := make([]string, 0, len(m))
	for t := range m {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	return tags
}

// table formats rows in columns two spaces apart, right-aligning the columns
// marked in right (numbers), with no trailing spaces and no colour.
type table struct {
	header []string
	right  []bool
	rows   [][]string
}

func (t table) String() string {
	rows := t.rows
	if t.header != nil {
		rows = append([][]string{t.header}, rows...)
	}
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	lines := make([]string, 0, len(rows))
	for _, row := range rows {
		var line strings.Builder
		for i, cell := range row {
			if i > 0 {
				line.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i < len(t.right) && t.right[i] {
				line.WriteString(pad + cell)
			} else {
				line.WriteString(cell + pad)
			}
		}
		lines = append(lines, strings.TrimRight(line.String(), " "))
	}
	return strings.Join(lines, "\n")
}
