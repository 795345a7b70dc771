package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/robust"
)

// tick is one line of `brokerkit run` output.
type tick struct {
	TS         time.Time         `json:"ts"`
	OK         bool              `json:"ok"`
	LatencyMS  float64           `json:"latency_ms"`
	State      string            `json:"state"`
	Breaker    string            `json:"breaker"`
	Restarts   int64             `json:"restarts"`
	Reconnects int64             `json:"reconnects"`
	WorkerPID  int               `json:"worker_pid"`
	Error      string            `json:"error"`
	ErrorCode  string            `json:"error_code,omitempty"`
	Positions  []tickPosition    `json:"positions"`
	NetLiq     map[string]string `json:"net_liquidation,omitempty"`
}

type tickPosition struct {
	Account  string         `json:"account"`
	Symbol   string         `json:"symbol"`
	SecType  string         `json:"sec_type"`
	Quantity broker.Decimal `json:"quantity"`
	AvgCost  broker.Decimal `json:"avg_cost"`
}

func runRunner(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	p := connectFlags(fs)
	fs.Lookup("host").DefValue = ""
	_ = fs.Set("host", "")
	symbols := fs.String("symbols", "", "comma-separated symbols whose positions each line reports (default: all)")
	transport := fs.String("transport", "stdiojson", "inprocess, stdiojson or goplugin")
	interval := fs.Duration("interval", time.Second, "time between ticks")
	duration := fs.Duration("duration", 0, "stop after this long (0: until SIGINT/SIGTERM)")
	scriptPath := fs.String("script", "", "JSON script for the embedded gateway (only without --host)")
	verbose := fs.Bool("v", false, "log to stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *interval <= 0 {
		return fmt.Errorf("%w: --interval must be positive", errUsage)
	}
	log := newLogger(stderr, *verbose)
	if p.Host == "" {
		script, err := loadScript(*scriptPath)
		if err != nil {
			return err
		}
		gw, err := fakes.NewGateway(script, fakes.WithLogger(log.Named("gateway")))
		if err != nil {
			return err
		}
		defer gw.Close()
		p.Host, p.Port = gw.Host(), gw.Port()
		log.Info("using the embedded fake gateway", "addr", gw.Addr())
	}
	if err := checkTransport(*transport); err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	rb := robust.New(func(ctx context.Context) (broker.Broker, error) {
		return openBroker(ctx, *transport, log)
	}, robust.WithLogger(log.Named("robust")), robust.WithHealthCheck(*interval, 2*time.Second, 2))
	defer rb.Close()

	want := map[string]bool{}
	for _, s := range strings.Split(*symbols, ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	enc := json.NewEncoder(stdout)
	connected := false
	next := time.NewTimer(0)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return shutdown(rb)
		case <-next.C:
		}
		next.Reset(*interval)
		t := runTick(ctx, rb, *p, &connected, want, *interval)
		if ctx.Err() != nil {
			return shutdown(rb)
		}
		if err := enc.Encode(t); err != nil {
			return err
		}
	}
}

// runTick connects if needed, then fetches positions and the account summary once.
func runTick(ctx context.Context, rb *robust.Broker, p broker.ConnectParams, connected *bool, want map[string]bool, interval time.Duration) tick {
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, max(interval, 5*time.Second))
	defer cancel()
	t := tick{TS: start.UTC()}
	err := func() error {
		if !*connected {
			if _, err := rb.Connect(tctx, p); err != nil {
				return err
			}
			*connected = true
		}
		positions, err := rb.Positions(tctx)
		if err != nil {
			return err
		}
		summary, err := rb.AccountSummary(tctx, "NetLiquidation")
		if err != nil {
			return err
		}
		t.Positions = []tickPosition{}
		for _, pos := range positions {
			if len(want) == 0 || want[pos.Contract.Symbol] {
				t.Positions = append(t.Positions, tickPosition{pos.Account, pos.Contract.Symbol, pos.Contract.SecType, pos.Quantity, pos.AvgCost})
			}
		}
		t.NetLiq = map[string]string{}
		for _, s := range summary {
			if v, ok := s.Values["NetLiquidation"]; ok {
				t.NetLiq[s.Account] = strings.TrimSpace(v.Value + " " + v.Currency)
			}
		}
		return nil
	}()
	t.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	t.OK = err == nil
	if err != nil {
		t.Error, t.ErrorCode = err.Error(), broker.ErrorCode(err)
	}
	st := rb.Stats()
	t.State, t.Breaker, t.Restarts, t.Reconnects, t.WorkerPID = tickState(st), st.Breaker.String(), st.Restarts, st.Reconnects, st.WorkerPID
	return t
}

// tickState is robust's connection state, except that a session whose calls
// fail at once because the breaker is open is "unavailable", not "connected".
func tickState(st robust.Stats) string {
	if st.State == robust.StateConnected && st.Breaker == robust.BreakerOpen {
		return "unavailable"
	}
	return st.State.String()
}

// shutdown disconnects and stops the child within a second.
func shutdown(rb *robust.Broker) error {
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	_ = rb.Disconnect(ctx)
	return rb.Close()
}
