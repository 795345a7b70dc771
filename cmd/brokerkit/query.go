package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// connectFlags registers the flags that say where the gateway is.
func connectFlags(fs *flag.FlagSet) *broker.ConnectParams {
	p := &broker.ConnectParams{}
	fs.StringVar(&p.Host, "host", broker.DefaultHost, "gateway host")
	fs.IntVar(&p.Port, "port", broker.DefaultPort, "gateway API port (4001/4002 IB Gateway live/paper, 7496/7497 TWS)")
	fs.Int64Var(&p.ClientID, "client-id", 1, "API client id")
	fs.BoolVar(&p.ReadOnly, "readonly", true, "ask for a read-only API session")
	fs.DurationVar(&p.Timeout, "timeout", 10*time.Second, "connect and handshake timeout")
	return p
}

// runQuery returns the command that runs one query against any gateway.
func runQuery(what string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(what, stderr)
		p := connectFlags(fs)
		asJSON := fs.Bool("json", false, "print JSON instead of a table")
		transport := fs.String("transport", "inprocess", "inprocess, stdiojson or goplugin")
		verbose := fs.Bool("v", false, "log to stderr")
		if err := parse(fs, args); err != nil {
			return err
		}
		b, err := openBroker(ctx, *transport, newLogger(stderr, *verbose))
		if err != nil {
			return err
		}
		defer b.Close()
		info, err := b.Connect(ctx, *p)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", p.Addr(), err)
		}
		defer b.Disconnect(context.WithoutCancel(ctx))
		r := report{}
		switch what {
		case "accounts":
			r.Accounts = info.Accounts
		case "positions":
			r.Positions, err = b.Positions(ctx)
		case "summary":
			r.Summary, err = b.AccountSummary(ctx)
		case "ping":
			start := time.Now()
			if err = b.Ping(ctx); err == nil {
				r.Ping = fmt.Sprintf("pong from %s in %v", p.Addr(), time.Since(start).Round(time.Microsecond))
			}
		}
		if err != nil {
			return err
		}
		return r.write(stdout, *asJSON)
	}
}

// report is what demo and the query commands print.
type report struct {
	Accounts  []string
	Positions []broker.Position
	Summary   []broker.AccountSummary
	Ping      string
}

type jsonPosition struct {
	Account  string          `json:"account"`
	ConID    int64           `json:"con_id"`
	Symbol   string          `json:"symbol"`
	SecType  string          `json:"sec_type"`
	Expiry   string          `json:"expiry,omitempty"`
	Strike   *broker.Decimal `json:"strike,omitempty"`
	Right    string          `json:"right,omitempty"`
	Exchange string          `json:"exchange,omitempty"`
	Currency string          `json:"currency"`
	Quantity broker.Decimal  `json:"quantity"`
	AvgCost  broker.Decimal  `json:"avg_cost"`
}

type jsonSummary struct {
	Account string                      `json:"account"`
	Values  map[string]jsonSummaryValue `json:"values"`
}

type jsonSummaryValue struct {
	Value    string `json:"value"`
	Currency string `json:"currency,omitempty"`
}

func (r report) write(w io.Writer, asJSON bool) error {
	if asJSON {
		return r.writeJSON(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if r.Ping != "" {
		fmt.Fprintln(tw, r.Ping)
	}
	if r.Accounts != nil {
		fmt.Fprintf(tw, "Accounts: %s\n", strings.Join(r.Accounts, ", "))
	}
	if r.Positions != nil {
		fmt.Fprintf(tw, "\nPositions (%d)\nACCOUNT\tSYMBOL\tTYPE\tEXPIRY\tSTRIKE\tRIGHT\tCCY\tQUANTITY\tAVG COST\n", len(r.Positions))
		for _, p := range r.Positions {
			c := p.Contract
			strike := ""
			if !c.Strike.IsZero() {
				strike = c.Strike.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Account, c.Symbol, c.SecType, c.Expiry, strike, c.Right, c.Currency, p.Quantity, p.AvgCost)
		}
	}
	if r.Summary != nil {
		fmt.Fprintf(tw, "\nAccount summary\nACCOUNT\tTAG\tVALUE\tCCY\n")
		for _, s := range r.Summary {
			for _, tag := range sortedTags(s.Values) {
				v := s.Values[tag]
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Account, tag, v.Value, v.Currency)
			}
		}
	}
	return tw.Flush()
}

func (r report) writeJSON(w io.Writer) error {
	out := map[string]any{}
	if r.Accounts != nil {
		out["accounts"] = r.Accounts
	}
	if r.Positions != nil {
		ps := make([]jsonPosition, 0, len(r.Positions))
		for _, p := range r.Positions {
			c := p.Contract
			jp := jsonPosition{Account: p.Account, ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Expiry: c.Expiry,
				Right: c.Right, Exchange: c.Exchange, Currency: c.Currency, Quantity: p.Quantity, AvgCost: p.AvgCost}
			if !c.Strike.IsZero() {
				jp.Strike = &c.Strike
			}
			ps = append(ps, jp)
		}
		out["positions"] = ps
	}
	if r.Summary != nil {
		ss := make([]jsonSummary, 0, len(r.Summary))
		for _, s := range r.Summary {
			js := jsonSummary{Account: s.Account, Values: map[string]jsonSummaryValue{}}
			for tag, v := range s.Values {
				js.Values[tag] = jsonSummaryValue(v)
			}
			ss = append(ss, js)
		}
		out["summary"] = ss
	}
	if r.Ping != "" {
		out["ping"] = r.Ping
	}
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

// describe turns an error into one line with a hint for the common failures.
func describe(err error) string {
	hint := ""
	switch {
	case errors.Is(err, broker.ErrGatewayUnreachable):
		hint = " (is TWS or IB Gateway running, with the API enabled on that port?)"
	case errors.Is(err, broker.ErrClientIDInUse):
		hint = " (another session uses this client id: pick another with --client-id)"
	case errors.Is(err, broker.ErrTimeout):
		hint = " (the gateway accepted the connection but did not complete the API handshake; check its API settings and trusted IPs)"
	case errors.Is(err, broker.ErrUnavailable):
		hint = " (the worker process died; see its log above)"
	}
	return err.Error() + hint
}
