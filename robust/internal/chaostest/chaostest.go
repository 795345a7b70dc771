// Package chaostest holds what robust's chaos and conformance tests share across
// test binaries: a fake gateway with a connected robust Broker, option sets, and the
// kill -9 loops run over each child-process transport. It is a test helper only.
package chaostest

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/internal/leakcheck"
	"github.com/brokerkit/brokerkit/robust"
)

// StateMachineOptions: a few attempts per call with quick backoff, so that the
// model's predicted errors (not connected, refused client id, stalled handshake)
// arrive promptly, and no breaker. The periodic health check is off: recovery
// after a drop must come from the inner Broker's connection-lost event alone.
// The breaker is off because the model does not predict it: after ten failed
// attempts (two refused Connects and a stalled one suffice) it opens and rejects
// the next Connect with ErrCircuitOpen. (Calls without a session still say
// ErrNotConnected: robust's TestOpenBreakerStillSaysNotConnected.)
//
// PlaceOrder does not look a new key up before sending it
// (WithLookupBeforePlace(false)): the model's PlaceMid stalls the gateway and
// waits for the PLACE_ORDER, which a lookup would hold behind its own stalled
// requests. Keys are still remembered, and looked up after every unknown
// outcome; the lookup before the first send has its own tests.
func StateMachineOptions() []robust.Option {
	return []robust.Option{
		robust.WithMaxAttempts(2),
		robust.WithBackoff(robust.Backoff{Base: 5 * time.Millisecond, Max: 50 * time.Millisecond}),
		robust.WithHealthCheck(time.Hour, 3*time.Second, 2),
		robust.WithBreaker(0, 0),
		robust.WithLookupBeforePlace(false),
	}
}

// StateMachine runs the conformance state machine over robust around the inner
// Brokers dial builds; with crash, killing the worker is one of its actions, and
// gateway drops and killed workers must heal by themselves.
func StateMachine(t *testing.T, dial robust.Dialer, crash bool, checks, steps int) {
	f := conformance.Features{Reconnects: true}
	if crash {
		f.Crash = ConformanceFeatures.Crash
	}
	conformance.RunStateMachine(t, func(t conformance.TB, env conformance.Env) broker.Broker {
		b := robust.New(dial, StateMachineOptions()...)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}, conformance.StateMachineFeatures{Features: f, Checks: checks, Steps: steps})
}

// ConformanceOptions keep the kit's timing bounds meaningful for a retrying
// decorator: two attempts per call, quick backoff, a health check slower than the
// kit's slow gateway.
func ConformanceOptions() []robust.Option {
	return []robust.Option{
		robust.WithMaxAttempts(2),
		robust.WithBackoff(robust.Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}),
		robust.WithHealthCheck(500*time.Millisecond, 3*time.Second, 2),
	}
}

// ConformanceFeatures: robust reconnects by itself, and a Connect to a stalled
// gateway is attempted twice (each bounded by Timeout) before it gives up.
// Crash kills the current worker (Stats().WorkerPID), so TestChildCrash checks
// that robust replaces it and serves the script again.
var ConformanceFeatures = conformance.Features{
	Reconnects:   true,
	TimeoutSlack: conformance.DefaultConnectTimeout + conformance.DefaultTimeoutSlack,
	Crash: func(t conformance.TB, b broker.Broker) {
		conformance.KillPID(t, b.(*robust.Broker).Stats().WorkerPID)
	},
}

// Options are quick backoff, a health check that notices a silent gateway within
// about a second, enough attempts to ride out a restart, and no breaker.
func Options(extra ...robust.Option) []robust.Option {
	return append([]robust.Option{
		robust.WithMaxAttempts(50),
		robust.WithBackoff(robust.Backoff{Base: 5 * time.Millisecond, Max: 100 * time.Millisecond}),
		robust.WithAttemptTimeout(2 * time.Second),
		robust.WithHealthCheck(healthInterval, healthTimeout, healthMisses),
		robust.WithBreaker(0, 0),
	}, extra...)
}

// Env is a fake gateway serving conformance.StandardScript and a robust Broker
// connected to it; both are closed by t.Cleanup.
type Env struct {
	GW     *fakes.Gateway
	Port   int
	B      *robust.Broker
	Params broker.ConnectParams
	Script fakes.Script
}

// New starts a gateway and connects a robust Broker over dial with Options(opts...).
func New(t *testing.T, dial robust.Dialer, opts ...robust.Option) *Env {
	t.Helper()
	s := conformance.StandardScript()
	gw, err := fakes.NewGateway(s)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{GW: gw, Port: gw.Port(), Script: s}
	t.Cleanup(func() { _ = e.GW.Close() })
	e.Params = gw.ConnectParams(7)
	e.Params.Timeout = 500 * time.Millisecond
	e.B = robust.New(dial, Options(opts...)...)
	t.Cleanup(func() { _ = e.B.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.B.Connect(ctx, e.Params); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return e
}

// MustServe makes one Positions call and checks it against the script.
func (e *Env) MustServe(t *testing.T, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pos, err := e.B.Positions(ctx)
	if err != nil {
		t.Fatalf("%s: Positions: %v (stats %+v)", what, err, e.B.Stats())
	}
	if diff := cmp.Diff(e.Script.Positions, pos); diff != "" {
		t.Fatalf("%s: Positions (-script +got):\n%s", what, diff)
	}
}

// CloseAndCheck closes the Broker and asserts that no socket to the gateway is left,
// in this process or in pids.
func (e *Env) CloseAndCheck(t *testing.T, pids ...int) {
	t.Helper()
	if err := e.B.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	leakcheck.AssertSockets(t, e.Port, 0, pids...)
}

// WaitState waits (generously) until b is in state want.
func WaitState(t *testing.T, b *robust.Broker, want robust.State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("state %v, want %v (stats %+v)", b.State(), want, b.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// Eventually waits until cond holds, polling a state the code under test
// changes (generous bound, against hangs only), and fails the test naming what
// it waited for otherwise.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// KillLoop kills the worker with SIGKILL twenty times between calls and logs the
// time from each kill to the next successful call (median, min, max). Each round
// checks that the old worker is gone (reaped, no zombie) and that exactly one socket
// to the gateway is live; Close must leave none and end the last worker.
func KillLoop(t *testing.T, name string, dial robust.Dialer) {
	e := New(t, dial)
	e.MustServe(t, "first call")
	var took []time.Duration
	for range 20 {
		pid := e.B.Stats().WorkerPID
		if pid == 0 {
			t.Fatal("the transport's client reports no pid")
		}
		killed := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d: %v", pid, err)
		}
		e.MustServe(t, "after kill -9")
		took = append(took, time.Since(killed))
		if np := e.B.Stats().WorkerPID; np == pid || np == 0 {
			t.Fatalf("worker pid %d after killing %d", np, pid)
		}
		leakcheck.AssertProcessGone(t, pid)
		leakcheck.AssertSockets(t, e.Port, 1, e.B.Stats().WorkerPID)
	}
	if st := e.B.Stats(); st.Restarts < 20 {
		t.Errorf("Restarts = %d, want at least 20", st.Restarts)
	}
	slices.Sort(took)
	t.Logf("kill -9 -> next successful call over %s: median %v, min %v, max %v (n=%d)",
		name, took[len(took)/2], took[0], took[len(took)-1], len(took))
	last := e.B.Stats().WorkerPID
	e.CloseAndCheck(t, last)
	leakcheck.AssertProcessGone(t, last)
}

// Health-check settings of Options, which bound how soon a frozen worker is noticed.
const (
	healthInterval = 200 * time.Millisecond
	healthTimeout  = 300 * time.Millisecond
	healthMisses   = 2
)

// FreezeLoop stops the worker with SIGSTOP three times between calls: robust's
// health check must notice, the transport's Close must kill the frozen worker
// (SIGKILL after grace, the grace period dial gives its Clients) and the
// replacement must serve within health interval × misses (each miss waiting up
// to the health timeout) + grace, plus slack for a loaded machine. The frozen
// workers are gone, one socket to the gateway is live, and Close leaves none.
func FreezeLoop(t *testing.T, name string, dial robust.Dialer, grace time.Duration) {
	e := New(t, dial)
	e.MustServe(t, "first call")
	bound := healthMisses*(healthInterval+healthTimeout) + grace
	const slack = 3 * time.Second // load on a shared machine, the replacement's start
	for range 3 {
		pid := e.B.Stats().WorkerPID
		if pid == 0 {
			t.Fatal("the transport's client reports no pid")
		}
		stopped := time.Now()
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("kill -STOP %d: %v", pid, err)
		}
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // no stopped worker outlives a failed test
		waitStopped(t, pid)
		e.MustServe(t, "after kill -STOP")
		took := time.Since(stopped)
		if took > bound+slack {
			t.Errorf("frozen worker replaced after %v, want within %v (+%v slack)", took, bound, slack)
		}
		t.Logf("kill -STOP -> next successful call over %s: %v (bound %v)", name, took, bound)
		if np := e.B.Stats().WorkerPID; np == pid || np == 0 {
			t.Fatalf("worker pid %d after stopping %d", np, pid)
		}
		leakcheck.AssertProcessGone(t, pid)
		leakcheck.AssertSockets(t, e.Port, 1, e.B.Stats().WorkerPID)
	}
	last := e.B.Stats().WorkerPID
	e.CloseAndCheck(t, last)
	leakcheck.AssertProcessGone(t, last)
}

// waitStopped waits until pid is in the stopped state: kill returns before the
// signal has reached every thread of the target.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		state, stat, ok := leakcheck.ProcState(pid)
		if !ok {
			t.Fatalf("process %d is gone", pid)
		}
		if state == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped 10s after SIGSTOP: %s", pid, stat)
		}
		time.Sleep(time.Millisecond)
	}
}

// KillDuringCalls kills the worker five times while four callers are busy: every
// call still succeeds, served by the replacement.
func KillDuringCalls(t *testing.T, dial robust.Dialer) {
	e := New(t, dial)
	errs := make(chan error, 4)
	stop := make(chan struct{})
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := e.B.AccountSummary(ctx, "NetLiquidation")
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 5 {
		time.Sleep(20 * time.Millisecond)
		_ = syscall.Kill(e.B.Stats().WorkerPID, syscall.SIGKILL)
		e.MustServe(t, "after kill")
	}
	close(stop)
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("caller: %v", err)
		}
	}
	last := e.B.Stats().WorkerPID
	e.CloseAndCheck(t, last)
	leakcheck.AssertProcessGone(t, last)
}

// StalledHandshake makes the gateway stall every handshake, drops the session and
// logs the time until the inner Broker was replaced; then the gateway recovers and
// calls succeed, with one live socket and the stalled workers gone.
func StalledHandshake(t *testing.T, name string, dial robust.Dialer) {
	e := New(t, dial)
	stalled := e.Script
	stalled.Faults.StallHandshake = true
	e.GW.SetScript(stalled)
	before := e.B.Stats()
	start := time.Now()
	e.GW.DropConnections()
	deadline := time.Now().Add(10 * time.Second)
	// the drop itself replaces the worker once; the stalled handshake must replace it again
	for e.B.Stats().Restarts < before.Restarts+2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if e.B.Stats().Restarts < before.Restarts+2 {
		t.Fatalf("stalled reconnect never replaced the inner broker: %+v", e.B.Stats())
	}
	t.Logf("stalled handshake over %s -> inner broker replaced after %v (handshake timeout %v)", name, time.Since(start), e.Params.Timeout)
	e.GW.SetScript(e.Script)
	e.MustServe(t, "after the gateway recovers")
	if before.WorkerPID != 0 { // a child-process transport: the stalled workers are gone
		leakcheck.AssertProcessGone(t, before.WorkerPID)
	}
	last := e.B.Stats().WorkerPID
	leakcheck.AssertSockets(t, e.Port, 1, last)
	e.CloseAndCheck(t, last)
	if last != 0 {
		leakcheck.AssertProcessGone(t, last)
	}
}
