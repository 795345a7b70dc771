package stdiojson

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// fuzzServeBroker is a broker.Broker with no I/O at all (a Connect to any
// address succeeds at once), so that fuzzed connect commands never touch the
// network, and no control tags, so that no input can block, print or exit.
type fuzzServeBroker struct {
	mu        sync.Mutex
	connected bool
	closed    bool
	hub       broker.Hub
}

func (b *fuzzServeBroker) state() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return broker.ErrClosed
	case !b.connected:
		return broker.ErrNotConnected
	}
	return nil
}

func (b *fuzzServeBroker) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if err := p.Validate(); err != nil {
		return broker.ConnectInfo{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.connected {
		return broker.ConnectInfo{}, broker.ErrAlreadyConnected
	}
	b.connected = true
	return broker.ConnectInfo{Accounts: []string{"DU1"}, ServerVersion: 193}, nil
}

func (b *fuzzServeBroker) Disconnect(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.connected = false
	return nil
}

func (b *fuzzServeBroker) Accounts(context.Context) ([]string, error) {
	if err := b.state(); err != nil {
		return nil, err
	}
	return []string{"DU1"}, nil
}

func (b *fuzzServeBroker) Positions(context.Context) ([]broker.Position, error) {
	if err := b.state(); err != nil {
		return nil, err
	}
	return []broker.Position{{Account: "DU1", Quantity: broker.MustDecimal("0.0000001"), AvgCost: broker.MustDecimal("1.5")}}, nil
}

func (b *fuzzServeBroker) AccountSummary(_ context.Context, tags ...string) ([]broker.AccountSummary, error) {
	if err := b.state(); err != nil {
		return nil, err
	}
	vals := map[string]broker.SummaryValue{}
	for _, t := range tags {
		vals[t] = broker.SummaryValue{Value: "1", Currency: "USD"}
	}
	return []broker.AccountSummary{{Account: "DU1", Values: vals}}, nil
}

func (b *fuzzServeBroker) AccountUpdates(_ context.Context, account string) (broker.AccountUpdate, error) {
	if err := b.state(); err != nil {
		return broker.AccountUpdate{}, err
	}
	return broker.AccountUpdate{Account: account, Values: []broker.AccountValue{{Key: "NetLiquidation", Value: "1"}}}, nil
}

func (b *fuzzServeBroker) Executions(_ context.Context, f broker.ExecutionFilter) ([]broker.Execution, error) {
	if err := b.state(); err != nil {
		return nil, err
	}
	return []broker.Execution{{ExecID: "e1", Account: f.Account, Shares: broker.MustDecimal("0.5")}}, nil
}

func (b *fuzzServeBroker) OpenOrders(context.Context) ([]broker.Order, error) {
	return []broker.Order{}, b.state()
}

func (b *fuzzServeBroker) CompletedOrders(context.Context) ([]broker.Order, error) {
	return []broker.Order{}, b.state()
}

func (b *fuzzServeBroker) Ping(context.Context) error { return b.state() }

func (b *fuzzServeBroker) ContractDetails(_ context.Context, c broker.Contract) ([]broker.ContractDetails, error) {
	if err := b.state(); err != nil {
		return nil, err
	}
	return []broker.ContractDetails{{Contract: c, LongName: "FUZZ", MinTick: broker.MustDecimal("0.01")}}, nil
}

func (b *fuzzServeBroker) Snapshot(_ context.Context, c broker.Contract) (broker.Quote, error) {
	if err := b.state(); err != nil {
		return broker.Quote{}, err
	}
	return broker.Quote{Contract: c, Bid: broker.MustDecimal("1.5"), DataType: broker.MarketDataLive}, nil
}

func (b *fuzzServeBroker) HistoricalBars(_ context.Context, _ broker.Contract, r broker.BarsRequest) ([]broker.Bar, error) {
	if err := b.state(); err != nil {
		return nil, err
	}
	return []broker.Bar{{Time: r.End, Close: broker.MustDecimal("1.5")}}, nil
}

func (b *fuzzServeBroker) SetMarketDataType(_ context.Context, t broker.MarketDataType) error {
	if !t.Valid() {
		return broker.ErrInvalidArgument
	}
	return b.state()
}

func (b *fuzzServeBroker) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	return b.hub.Subscribe(ctx)
}

func (b *fuzzServeBroker) Close() error {
	b.mu.Lock()
	b.closed, b.connected = true, false
	b.mu.Unlock()
	b.hub.Close()
	return nil
}

// fuzzSentinel is appended to every fuzzed input: its answer proves that the
// worker kept serving after whatever came before.
const fuzzSentinel = `{"id":"fuzz-sentinel","command":"ping"}`

// countRequests counts the lines Serve must answer: every line of in (split
// at "\n", a final unterminated line included) that is not blank once its
// "\r\n" or "\n" and surrounding spaces and tabs are removed. Blank lines are
// the one documented ignore.
func countRequests(in []byte) int {
	n := 0
	for len(in) > 0 {
		line := in
		if i := bytes.IndexByte(in, '\n'); i >= 0 {
			line, in = in[:i+1], in[i+1:]
		} else {
			in = nil
		}
		if len(bytesTrimSpace(trimEOL(line))) > 0 {
			n++
		}
	}
	return n
}

// FuzzServe feeds arbitrary bytes to the worker's command handling (Serve over
// an in-memory broker), followed by one well-formed ping. Whatever the bytes:
// Serve never panics and returns nil once its input ends; every output line is
// one JSON object, a response with status "success" or "error"; every
// non-blank input line gets exactly one response (blank lines are ignored, as
// PROTOCOL.md says); and the final ping is answered under its own id, so the
// worker kept serving.
func FuzzServe(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"command":"connect","host":"127.0.0.1","port":4002,"client_id":1}` + "\n" + `{"id":2,"command":"get_positions"}`,
		`{"command":"hello","events":true}` + "\n" + `{"command":"ping"}`,
		`{"id":1,"command":"get_account_summary","tags":["NetLiquidation",""]}`,
		`{"id":"x","command":"cancel","target":"x"}`,
		`{"id":7,"command":"ping"}` + "\n" + `{"id":7,"command":"ping"}`,
		`{"id":[1],"command":"ping"}`, `{"id":1e400}`, `{"id":1,"command":"launch_missiles"}`,
		`{"id":1,"command":"connect","port":70000}`, `{"id":1,"command":"connect","timeout":-1}`,
		"not json\r\n\r\n \t\n{", "\x00\xff\xfe", "{}\n[]\nnull\n\"x\"\n",
		string(bytes.Repeat([]byte("x"), 5000)) + "\n" + `{"id":3,"command":"ping"}`,
		`{"id":4,"command":"disconnect"}` + "\r\n" + `{"id":5,"command":"get_accounts"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append(append(bytes.Clone(data), '\n'), fuzzSentinel+"\n"...)
		want := countRequests(in)
		b := &fuzzServeBroker{}
		defer b.Close()
		var out bytes.Buffer
		done := make(chan error, 1)
		go func() {
			done <- Serve(context.Background(), b, bytes.NewReader(in), &out,
				WithMaxRequestBytes(4096), WithDrainTimeout(10*time.Second))
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve returned %v after its input ended", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("Serve did not return after its input ended")
		}
		got, sentinel := 0, false
		for _, line := range bytes.SplitAfter(out.Bytes(), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			if line[len(line)-1] != '\n' {
				t.Fatalf("output ends with a partial line %q", line)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("output line %q is not a JSON object: %v", line, err)
			}
			if _, ok := m["event"]; ok {
				continue
			}
			var status string
			if err := json.Unmarshal(m["status"], &status); err != nil || status != "success" && status != "error" {
				t.Fatalf("output line %q has no status success or error", line)
			}
			got++
			if string(m["id"]) == `"fuzz-sentinel"` {
				sentinel = true
			}
		}
		if got != want {
			t.Fatalf("%d responses to %d non-blank request lines; input %q, output:\n%s", got, want, in, out.Bytes())
		}
		if !sentinel {
			t.Fatalf("the final ping was not answered; output:\n%s", out.Bytes())
		}
	})
}
