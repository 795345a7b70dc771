package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/robust"
)

// tick is one line of `brokerkit run` output. Positions and net_liquidation are
// null when ok is false.
type tick struct {
	TS             time.Time                   `json:"ts"`
	OK             bool                        `json:"ok"`
	LatencyMS      float64                     `json:"latency_ms"`
	State          string                      `json:"state"`
	Breaker        string                      `json:"breaker"`
	Restarts       int64                       `json:"restarts"`
	Reconnects     int64                       `json:"reconnects"`
	WorkerPID      int                         `json:"worker_pid"`
	Error          string                      `json:"error"`
	ErrorCode      string                      `json:"error_code,omitempty"`
	Positions      []jsonPosition              `json:"positions"`
	NetLiquidation map[string]jsonSummaryValue `json:"net_liquidation"`  // by account
	Quotes         map[string]jsonTickQuote    `json:"quotes,omitempty"` // by symbol, with --symbols
}

func runRunner(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	c := connectFlags(fs)
	fs.Lookup("host").DefValue = ""
	fs.Lookup("host").Usage = "gateway host (default: start the embedded fake gateway)"
	_ = fs.Set("host", "")
	symbols := fs.String("symbols", "", "comma-separated symbols (US stocks) whose positions and live bid/ask/last each line reports (default: all positions, no quotes)")
	transport := fs.String("transport", "stdiojson", "inprocess, stdiojson or goplugin")
	interval := fs.Duration("interval", time.Second, "time between the starts of two ticks")
	duration := fs.Duration("duration", 0, "stop after this long, exit status 1 if no tick succeeded (0: until SIGINT/SIGTERM)")
	maxFailures := fs.Int("max-failures", 0, "stop with exit status 1 after this many consecutive failed ticks (0: never)")
	scriptPath := fs.String("script", "", "JSON script for the embedded gateway (only without --host)")
	verbose := fs.Bool("v", false, "log to stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *interval <= 0:
		return fmt.Errorf("%w: --interval must be positive", errUsage)
	case *duration < 0 || *maxFailures < 0:
		return fmt.Errorf("%w: --duration and --max-failures must not be negative", errUsage)
	}
	if err := checkTransport(*transport); err != nil {
		return err
	}
	log := newLogger(stderr, *verbose)
	if c.params.Host == "" {
		script, err := loadScript(*scriptPath)
		if err != nil {
			return err
		}
		gw, err := fakes.NewGateway(script, fakes.WithLogger(log.Named("gateway")))
		if err != nil {
			return err
		}
		defer gw.Close()
		c.params.Host, c.params.Port = gw.Host(), gw.Port()
		log.Info("using the embedded fake gateway", "addr", gw.Addr())
	}
	if err := c.check(); err != nil {
		return err
	}
	signalled := ctx
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	// One attempt per call: the next tick is the retry. Retries inside a tick
	// would outlast its deadlines and hide the first attempt's reason (a stalled
	// handshake) behind a bare "context deadline exceeded"; robust still restores
	// the session between ticks.
	rb := robust.New(func(ctx context.Context) (broker.Broker, error) {
		return openBroker(ctx, *transport, log)
	}, robust.WithLogger(log.Named("robust")), robust.WithHealthCheck(*interval, 2*time.Second, 2), robust.WithMaxAttempts(1))
	defer rb.Close()

	want := map[string]bool{}
	for _, s := range strings.Split(*symbols, ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	var board *quoteBoard
	if len(want) > 0 {
		qctx, stopQuotes := context.WithCancel(ctx)
		board = newQuoteBoard(qctx, slices.Collect(maps.Keys(want)))
		defer board.wait()
		defer stopQuotes()
	}
	enc := json.NewEncoder(stdout)
	var (
		connected, everOK, lastOK bool
		failures                  int
		lastErr                   string
	)
	next := time.NewTimer(0)
	defer next.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			continue
		case <-next.C:
		}
		next.Reset(*interval)
		t := runTick(ctx, rb, c, &connected, want, board)
		interrupted := ctx.Err() != nil
		if interrupted && !t.OK {
			// Stopped mid-tick: still say how far it got, without counting it.
			t.Error = fmt.Sprintf("stopped before the tick completed: %s", t.Error)
		}
		if err := enc.Encode(t); err != nil {
			shutdown(rb)
			return err
		}
		if interrupted && !t.OK {
			if !everOK && failures == 0 {
				lastErr = t.Error // the only tick: it tells why none succeeded
			}
			break
		}
		lastOK, lastErr = t.OK, t.Error
		if t.OK {
			everOK, failures = true, 0
			continue
		}
		failures++
		if *maxFailures > 0 && failures >= *maxFailures {
			shutdown(rb)
			return fmt.Errorf("%d consecutive ticks failed (--max-failures); the last: %s", failures, lastErr)
		}
	}
	shutdown(rb)
	switch {
	case signalled.Err() != nil && !lastOK:
		return fmt.Errorf("the last tick before the signal failed: %s", lastErr)
	case signalled.Err() == nil && !everOK:
		return fmt.Errorf("no tick succeeded in %v: %s", *duration, lastErr)
	}
	return nil
}

// runTick connects if needed (and subscribes the quotes of --symbols), then
// fetches positions and the account summary once, each step under its own deadline: the connect under --timeout (plus the
// margin connect adds, so the handshake timeout and its explanation come first),
// each call under --call-timeout.
func runTick(ctx context.Context, rb *robust.Broker, c *connFlags, connected *bool, want map[string]bool, board *quoteBoard) tick {
	start := time.Now()
	t := tick{TS: start.UTC()}
	err := func() error {
		if !*connected {
			if _, err := c.connect(ctx, rb); err != nil {
				return err
			}
			*connected = true
		}
		if board != nil {
			board.ensure(ctx, rb, c)
		}
		var positions []broker.Position
		err := c.call(ctx, "positions", func(ctx context.Context) (err error) {
			positions, err = rb.Positions(ctx)
			return err
		})
		if err != nil {
			return err
		}
		var summary []broker.AccountSummary
		err = c.call(ctx, "summary", func(ctx context.Context) (err error) {
			summary, err = rb.AccountSummary(ctx, "NetLiquidation")
			return err
		})
		if err != nil {
			return err
		}
		t.Positions = []jsonPosition{}
		for _, pos := range positions {
			if len(want) == 0 || want[pos.Contract.Symbol] {
				t.Positions = append(t.Positions, toJSONPosition(pos))
			}
		}
		if board != nil {
			t.Quotes = board.report()
		}
		t.NetLiquidation = map[string]jsonSummaryValue{}
		for _, s := range summary {
			if v, ok := s.Values["NetLiquidation"]; ok {
				t.NetLiquidation[s.Account] = jsonSummaryValue(v)
			}
		}
		return nil
	}()
	t.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	t.OK = err == nil
	if err != nil {
		t.Error, t.ErrorCode = describe(err), broker.ErrorCode(err)
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
func shutdown(rb *robust.Broker) {
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	_ = rb.Disconnect(ctx)
	_ = rb.Close()
}
