package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// The market data commands: contract, quote and bars. Their JSON documents
// have the shapes of the stdiojson worker's answers (PROTOCOL.md).

// marketFlags are the flags that name an instrument beside its symbol.
type marketFlags struct {
	secType, exchange, currency string
}

func (m marketFlags) contract(symbol string) broker.Contract {
	c := broker.Contract{Symbol: symbol, SecType: m.secType, Exchange: m.exchange, Currency: m.currency}
	if id, err := strconv.ParseInt(symbol, 10, 64); err == nil && id > 0 && m.secType == "" {
		c = broker.Contract{ConID: id} // a con id
	}
	return c
}

// runMarket returns the command that runs one market data query.
func runMarket(what string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(what, stderr)
		c := connectFlags(fs)
		asJSON := fs.Bool("json", false, "print JSON instead of a table")
		transport := fs.String("transport", "inprocess", "inprocess, stdiojson or goplugin")
		verbose := fs.Bool("v", false, "log to stderr")
		var mf marketFlags
		fs.StringVar(&mf.secType, "sec-type", "STK", "security type (STK, OPT, FUT, CASH, ...; empty for any)")
		fs.StringVar(&mf.exchange, "exchange", "SMART", "exchange (empty for any)")
		fs.StringVar(&mf.currency, "currency", "USD", "currency (empty for any)")
		mdType := fs.String("type", "live", "market data type: live, frozen, delayed or delayed-frozen (quote)")
		duration := fs.String("duration", "1D", "how far back: N followed by S, D, W, M or Y (bars)")
		barSize := fs.String("bar", "5m", "bar size: 1s, 5s, 1m, 5m, 1h, 1d, 1w or IB's text such as \"5 mins\" (bars)")
		what2 := fs.String("what", "TRADES", "TRADES, MIDPOINT, BID, ASK or BID_ASK (bars)")
		rth := fs.Bool("rth", false, "regular trading hours only (bars)")
		end := fs.String("end", "", "end of the window, RFC 3339; default now (bars)")
		asCSV := fs.Bool("csv", false, "print CSV (bars)")
		stream := fs.Bool("stream", false, "stream live quotes until Ctrl-C: a table on a terminal, JSON lines otherwise (quote)")
		count := fs.Int("count", 0, "with --stream, stop after this many updates (0: until SIGINT/SIGTERM) (quote)")
		symbols, err := parseInterleaved(fs, args)
		if err != nil {
			return err
		}
		if err := c.check(); err != nil {
			return err
		}
		if len(symbols) == 0 || (what != "quote" && len(symbols) > 1) {
			return fmt.Errorf("%w: %s needs %s", errUsage, what, map[bool]string{true: "one or more symbols", false: "one symbol"}[what == "quote"])
		}
		t, err := broker.ParseMarketDataType(*mdType)
		if err != nil {
			return fmt.Errorf("%w: --type: %v", errUsage, err)
		}
		req := broker.BarsRequest{WhatToShow: strings.ToUpper(*what2), UseRTH: *rth}
		if what == "bars" {
			if req.Duration, err = ibDuration(*duration); err != nil {
				return err
			}
			if req.BarSize, err = ibBarSize(*barSize); err != nil {
				return err
			}
			if *end != "" {
				if req.End, err = time.Parse(time.RFC3339, *end); err != nil {
					return fmt.Errorf("%w: --end: %v", errUsage, err)
				}
			}
		}
		if (*stream || *count != 0) && what != "quote" {
			return fmt.Errorf("%w: --stream and --count are flags of quote", errUsage)
		}
		if *count < 0 || (*count > 0 && !*stream) {
			return fmt.Errorf("%w: --count needs --stream and must not be negative", errUsage)
		}
		if *stream {
			if err := checkTransport(*transport); err != nil {
				return err
			}
			contracts := make([]broker.Contract, len(symbols))
			for i, sym := range symbols {
				contracts[i] = mf.contract(sym)
			}
			return streamQuotes(ctx, c, newLogger(stderr, *verbose), contracts,
				streamOptions{transport: *transport, dataType: t, asJSON: *asJSON, count: *count}, stdout)
		}
		b, err := openBroker(ctx, *transport, newLogger(stderr, *verbose))
		if err != nil {
			return err
		}
		defer b.Close()
		if _, err := c.connect(ctx, b); err != nil {
			return err
		}
		defer disconnect(ctx, b)
		var doc any
		var text string
		switch what {
		case "contract":
			var ds []broker.ContractDetails
			err = c.call(ctx, what, func(ctx context.Context) (err error) {
				ds, err = b.ContractDetails(ctx, mf.contract(symbols[0]))
				return err
			})
			doc, text = contractsDoc(ds), contractsText(ds)
		case "quote":
			var qs []broker.Quote
			if t != broker.MarketDataLive {
				err = c.call(ctx, what, func(ctx context.Context) error { return b.SetMarketDataType(ctx, t) })
			}
			for _, sym := range symbols {
				if err != nil {
					break
				}
				err = c.call(ctx, what, func(ctx context.Context) error {
					q, err := b.Snapshot(ctx, mf.contract(sym))
					qs = append(qs, q)
					return err
				})
			}
			doc, text = quotesDoc(qs), quotesText(qs)
		case "bars":
			var bars []broker.Bar
			err = c.call(ctx, what, func(ctx context.Context) (err error) {
				bars, err = b.HistoricalBars(ctx, mf.contract(symbols[0]), req)
				return err
			})
			if err == nil && *asCSV {
				return writeBarsCSV(stdout, bars)
			}
			doc, text = barsDoc(bars), barsText(bars)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(doc)
		}
		_, err = io.WriteString(stdout, text+"\n")
		return err
	}
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, and returns those.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpRequest{fs}
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

var (
	durationRE = regexp.MustCompile(`^(?i)(\d+)\s*([SDWMY])$`)
	barRE      = regexp.MustCompile(`^(?i)(\d+)\s*([smhdw])$`)
)

// ibDuration turns "1D" into IB's "1 D".
func ibDuration(s string) (string, error) {
	m := durationRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return "", fmt.Errorf("%w: --duration %q: want N followed by S, D, W, M or Y (\"1D\")", errUsage, s)
	}
	return m[1] + " " + strings.ToUpper(m[2]), nil
}

// ibBarSize turns "5m" into IB's "5 mins"; text with a space passes as is.
func ibBarSize(s string) (string, error) {
	if strings.Contains(strings.TrimSpace(s), " ") {
		return strings.TrimSpace(s), nil
	}
	m := barRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return "", fmt.Errorf("%w: --bar %q: want N followed by s, m, h, d or w (\"5m\")", errUsage, s)
	}
	n := m[1]
	unit := map[string][2]string{"s": {"secs", "secs"}, "m": {"min", "mins"}, "h": {"hour", "hours"},
		"d": {"day", "days"}, "w": {"week", "weeks"}}[strings.ToLower(m[2])]
	if n == "1" {
		return n + " " + unit[0], nil
	}
	return n + " " + unit[1], nil
}

func toJSONContract(c broker.Contract) jsonContract {
	return jsonContract{ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Expiry: c.Expiry, Strike: c.Strike.String(),
		Right: c.Right, Multiplier: c.Multiplier, Exchange: c.Exchange, Currency: c.Currency, LocalSymbol: c.LocalSymbol,
		TradingClass: c.TradingClass}
}

type jsonContractDetails struct {
	Contract        jsonContract `json:"contract"`
	PrimaryExchange string       `json:"primary_exchange"`
	LongName        string       `json:"long_name"`
	MinTick         string       `json:"min_tick"`
	TimeZone        string       `json:"time_zone"`
	TradingHours    string       `json:"trading_hours"`
	LiquidHours     string       `json:"liquid_hours"`
	ValidExchanges  string       `json:"valid_exchanges"`
}

func contractsDoc(ds []broker.ContractDetails) any {
	out := make([]jsonContractDetails, 0, len(ds))
	for _, d := range ds {
		out = append(out, jsonContractDetails{Contract: toJSONContract(d.Contract), PrimaryExchange: d.PrimaryExchange,
			LongName: d.LongName, MinTick: d.MinTick.String(), TimeZone: d.TimeZone, TradingHours: d.TradingHours,
			LiquidHours: d.LiquidHours, ValidExchanges: d.ValidExchanges})
	}
	return map[string]any{"contracts": out}
}

func contractsText(ds []broker.ContractDetails) string {
	t := table{header: []string{"CON ID", "SYMBOL", "TYPE", "EXPIRY", "STRIKE", "RIGHT", "EXCHANGE", "PRIMARY", "CCY", "LOCAL", "MIN TICK", "NAME"},
		right: []bool{0: true, 4: true, 10: true}}
	for _, d := range ds {
		c := d.Contract
		strike := ""
		if !c.Strike.IsZero() {
			strike = c.Strike.String()
		}
		t.rows = append(t.rows, []string{strconv.FormatInt(c.ConID, 10), c.Symbol, c.SecType, c.Expiry, strike, c.Right,
			c.Exchange, d.PrimaryExchange, c.Currency, c.LocalSymbol, d.MinTick.String(), d.LongName})
	}
	return t.String()
}

// jsonQuote is a snapshot as the stdiojson worker sends it.
type jsonQuote struct {
	Contract       jsonContract `json:"contract"`
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

func toJSONQuote(q broker.Quote) jsonQuote {
	j := jsonQuote{Contract: toJSONContract(q.Contract), Bid: q.Bid.String(), Ask: q.Ask.String(), Last: q.Last.String(),
		BidSize: q.BidSize.String(), AskSize: q.AskSize.String(), LastSize: q.LastSize.String(), Open: q.Open.String(),
		High: q.High.String(), Low: q.Low.String(), Close: q.Close.String(), Volume: q.Volume.String(), Halted: q.Halted,
		MarketDataType: q.DataType.String(), Time: q.Time}
	if !q.LastTime.IsZero() {
		j.LastTime = &q.LastTime
	}
	return j
}

func quotesDoc(qs []broker.Quote) any {
	out := make([]jsonQuote, 0, len(qs))
	for _, q := range qs {
		out = append(out, toJSONQuote(q))
	}
	return map[string]any{"quotes": out}
}

func quotesText(qs []broker.Quote) string {
	t := table{header: []string{"SYMBOL", "BID", "ASK", "LAST", "BID SIZE", "ASK SIZE", "CLOSE", "VOLUME", "DATA", ""},
		right: []bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true}}
	for _, q := range qs {
		sym := q.Contract.Symbol
		if sym == "" {
			sym = strconv.FormatInt(q.Contract.ConID, 10)
		}
		halted := ""
		if q.Halted {
			halted = "HALTED"
		}
		t.rows = append(t.rows, []string{sym, q.Bid.String(), q.Ask.String(), q.Last.String(), q.BidSize.String(),
			q.AskSize.String(), q.Close.String(), q.Volume.String(), q.DataType.String(), halted})
	}
	return t.String()
}

type jsonBar struct {
	Time   time.Time `json:"time"`
	Open   string    `json:"open"`
	High   string    `json:"high"`
	Low    string    `json:"low"`
	Close  string    `json:"close"`
	Volume string    `json:"volume"`
	WAP    string    `json:"wap"`
	Count  int64     `json:"count"`
}

func barRow(b broker.Bar) []string {
	return []string{b.Time.UTC().Format(time.RFC3339), b.Open.String(), b.High.String(), b.Low.String(), b.Close.String(),
		b.Volume.String(), b.WAP.String(), strconv.FormatInt(b.Count, 10)}
}

func barsDoc(bars []broker.Bar) any {
	out := make([]jsonBar, 0, len(bars))
	for _, b := range bars {
		out = append(out, jsonBar{Time: b.Time, Open: b.Open.String(), High: b.High.String(), Low: b.Low.String(),
			Close: b.Close.String(), Volume: b.Volume.String(), WAP: b.WAP.String(), Count: b.Count})
	}
	return map[string]any{"bars": out}
}

func barsText(bars []broker.Bar) string {
	t := table{header: []string{"TIME (UTC)", "OPEN", "HIGH", "LOW", "CLOSE", "VOLUME", "WAP", "COUNT"},
		right: []bool{false, true, true, true, true, true, true, true}}
	for _, b := range bars {
		t.rows = append(t.rows, barRow(b))
	}
	return fmt.Sprintf("%d bars\n%s", len(bars), t)
}

func writeBarsCSV(w io.Writer, bars []broker.Bar) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "open", "high", "low", "close", "volume", "wap", "count"})
	for _, b := range bars {
		_ = cw.Write(barRow(b))
	}
	cw.Flush()
	return cw.Error()
}
