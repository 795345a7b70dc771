package conformance_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newAdapter(t conformance.TB, _ conformance.Env) broker.Broker {
	a := ibkr.New()
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// TestRunAdapter runs the whole kit over the in-process adapter: it must pass.
func TestRunAdapter(t *testing.T) {
	conformance.Run(t, func(t *testing.T, env conformance.Env) broker.Broker { return newAdapter(t, env) }, conformance.Features{})
}

// recorder is a conformance.TB that records failures instead of failing the
// test, so that a case can be run against a broken Broker and be seen to fail.
type recorder struct {
	name   string
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	failures []string
	logs     []string
	cleanups []func()
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}
func (r *recorder) Context() context.Context { return r.ctx }
func (r *recorder) Name() string             { return r.name }

func (r *recorder) runCleanups() {
	r.cancel()
	r.mu.Lock()
	cs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for _, f := range slices.Backward(cs) {
		f()
	}
}

// record runs one case on its own goroutine (Fatalf ends it with Goexit, as
// testing does) and returns the failures it reported.
func record(t *testing.T, c func(conformance.TB, conformance.Factory, conformance.Features), newBroker conformance.Factory) []string {
	t.Helper()
	r := &recorder{name: t.Name() + "/recorded"}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.runCleanups()
		c(r, newBroker, conformance.Features{})
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failures
}

// decorate returns a factory of adapters wrapped by wrap.
func decorate(wrap func(broker.Broker) broker.Broker) conformance.Factory {
	return func(t conformance.TB, env conformance.Env) broker.Broker { return wrap(newAdapter(t, env)) }
}

// dropsPosition loses the last position.
type dropsPosition struct{ broker.Broker }

func (b dropsPosition) Positions(ctx context.Context) ([]broker.Position, error) {
	ps, err := b.Broker.Positions(ctx)
	if len(ps) > 0 {
		ps = ps[:len(ps)-1]
	}
	return ps, err
}

// roundsDecimals passes quantities and costs through float64 with 4 decimals,
// as a careless JSON or float-based transport would.
type roundsDecimals struct{ broker.Broker }

func (b roundsDecimals) Positions(ctx context.Context) ([]broker.Position, error) {
	ps, err := b.Broker.Positions(ctx)
	round := func(d broker.Decimal) broker.Decimal {
		return broker.MustDecimal(strconv.FormatFloat(d.Float64(), 'f', 4, 64))
	}
	for i := range ps {
		ps[i].Quantity = round(ps[i].Quantity)
		ps[i].AvgCost = round(ps[i].AvgCost)
	}
	return ps, err
}

// ignoresCancel waits for the inner call whatever happens to ctx, then reports
// ctx's error: the right error, too late.
type ignoresCancel struct{ broker.Broker }

func (b ignoresCancel) Positions(ctx context.Context) ([]broker.Position, error) {
	ps, err := b.Broker.Positions(context.WithoutCancel(ctx))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return ps, err
}

// hidesConnectionLoss filters EventConnectionLost out of subscriptions.
type hidesConnectionLoss struct{ broker.Broker }

func (b hidesConnectionLoss) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	in, err := b.Broker.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan broker.Event)
	go func() {
		defer close(out)
		for e := range in {
			if e.Kind != broker.EventConnectionLost {
				out <- e
			}
		}
	}()
	return out, nil
}

// leaksOnClose leaves a goroutine behind when closed.
type leaksOnClose struct {
	broker.Broker
	release chan struct{}
}

func (b leaksOnClose) Close() error {
	go func() { <-b.release }()
	return b.Broker.Close()
}

// forgetsClosed reports ErrNotConnected instead of ErrClosed after Close.
type forgetsClosed struct {
	broker.Broker
}

func (b forgetsClosed) Ping(ctx context.Context) error {
	err := b.Broker.Ping(ctx)
	if err != nil {
		return fmt.Errorf("forgot: %w", broker.ErrNotConnected)
	}
	return nil
}

// TestBrokenBrokersFail runs the relevant case against deliberately broken
// Brokers and checks that the case reports the breakage.
func TestBrokenBrokersFail(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // ends leaksOnClose's goroutine before goleak looks
	for _, tc := range []struct {
		name    string
		test    func(conformance.TB, conformance.Factory, conformance.Features)
		wrap    func(broker.Broker) broker.Broker
		wantMsg string // in one of the failures
	}{
		{"drops a position", conformance.TestPositions,
			func(b broker.Broker) broker.Broker { return dropsPosition{b} }, "Positions #1 (-script +got)"},
		{"rounds decimals", conformance.TestPositions,
			func(b broker.Broker) broker.Broker { return roundsDecimals{b} }, "Quantity"},
		{"ignores cancellation", conformance.TestCancellation,
			func(b broker.Broker) broker.Broker { return ignoresCancel{b} }, "after its context was cancelled"},
		{"hides connection loss", conformance.TestGatewayDrop,
			func(b broker.Broker) broker.Broker { return hidesConnectionLoss{b} }, "no EventConnectionLost"},
		{"leaks a goroutine on Close", conformance.TestClose,
			func(b broker.Broker) broker.Broker { return leaksOnClose{b, release} }, "goroutines left after Close"},
		{"forgets it was closed", conformance.TestClose,
			func(b broker.Broker) broker.Broker { return forgetsClosed{b} }, "Ping after Close"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failures := record(t, tc.test, decorate(tc.wrap))
			if len(failures) == 0 {
				t.Fatalf("the case passed a Broker that %s", tc.name)
			}
			if !slices.ContainsFunc(failures, func(f string) bool { return strings.Contains(f, tc.wantMsg) }) {
				t.Errorf("failures do not mention %q:\n%s", tc.wantMsg, strings.Join(failures, "\n"))
			}
			t.Logf("caught, as it should:\n%.600s", strings.Join(failures, "\n"))
		})
	}
}

// TestRecorderPassesAdapter checks the recorder itself: the unbroken adapter
// passes every case run through it, so the failures above come from the breakage.
func TestRecorderPassesAdapter(t *testing.T) {
	for _, c := range []func(conformance.TB, conformance.Factory, conformance.Features){
		conformance.TestPositions, conformance.TestGatewayDrop, conformance.TestClose,
	} {
		if failures := record(t, c, newAdapter); len(failures) != 0 {
			t.Errorf("unbroken adapter failed:\n%s", strings.Join(failures, "\n"))
		}
	}
}
