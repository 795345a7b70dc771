package robust

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newTest builds a robust Broker over f on a fake clock with no attempt timeout and
// no periodic health check, so that the only timers are the ones a test is about.
func newTest(t *testing.T, f *farm, opts ...Option) (*Broker, *fakeClock, *hookLog) {
	t.Helper()
	clk := newFakeClock()
	h := &hookLog{}
	base := []Option{
		WithClock(clk), WithRand(half), WithAttemptTimeout(0),
		WithHealthCheck(0, 0, 1), WithStateHook(h.hook),
	}
	b := New(f.dial, append(base, opts...)...)
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b, clk, h
}

func connect(t *testing.T, b *Broker) {
	t.Helper()
	info, err := b.Connect(context.Background(), testParams)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if diff := cmp.Diff(broker.ConnectInfo{Accounts: []string{"DU111", "DU222"}, ServerVersion: stubServerVersion}, info); diff != "" {
		t.Fatalf("ConnectInfo (-want +got):\n%s", diff)
	}
}

type result[T any] struct {
	v   T
	err error
}

func async[T any](f func() (T, error)) <-chan result[T] {
	ch := make(chan result[T], 1)
	go func() {
		v, err := f()
		ch <- result[T]{v, err}
	}()
	return ch
}

func await[T any](t *testing.T, ch <-chan result[T]) result[T] {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("call did not return within 10s")
		panic("unreachable")
	}
}

func TestNotConnectedBeforeConnectDialsNothing(t *testing.T) {
	f := &farm{}
	b, _, _ := newTest(t, f)
	_, err := b.Positions(context.Background())
	if !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("Positions before Connect: got %v, want ErrNotConnected", err)
	}
	if f.n() != 0 {
		t.Errorf("dialed %d inner brokers before Connect, want 0", f.n())
	}
	if s := b.Stats(); s.Retries != 0 || s.Failures != 0 {
		t.Errorf("ErrNotConnected counted as failure: %+v", s)
	}
}

func TestRetriesWithJitteredBackoffThenSucceeds(t *testing.T) {
	f := &farm{}
	bo := Backoff{Base: 100 * time.Millisecond, Max: 300 * time.Millisecond}
	b, clk, _ := newTest(t, f, WithBackoff(bo), WithMaxAttempts(5))
	connect(t, b)
	s := f.get(t, 0)
	s.fail(broker.OpPositions, broker.ErrTimeout, broker.ErrTimeout, broker.ErrTimeout)

	ch := async(func() ([]broker.Position, error) { return b.Positions(context.Background()) })
	var waits []time.Duration
	for n := 1; n <= 3; n++ {
		want := bo.Delay(n, half())
		waits = append(waits, clk.waitPending(t, want))
		clk.Advance(want)
	}
	r := await(t, ch)
	if r.err != nil {
		t.Fatalf("Positions: %v", r.err)
	}
	if len(r.v) != 1 || r.v[0].Contract.Symbol != "AAPL" {
		t.Errorf("Positions = %+v", r.v)
	}
	// full jitter at u=0.5: half of base, 2·base, then the cap
	wantWaits := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond}
	if diff := cmp.Diff(wantWaits, waits); diff != "" {
		t.Errorf("backoff waits (-want +got):\n%s", diff)
	}
	if got := s.count(broker.OpPositions); got != 4 {
		t.Errorf("inner Positions calls = %d, want 4", got)
	}
	st := b.Stats()
	if st.Retries != 3 || st.Failures != 3 || !errors.Is(st.LastError, broker.ErrTimeout) {
		t.Errorf("Stats = %+v, want 3 retries, 3 failures, last error ErrTimeout", st)
	}
}

func TestGivesUpAfterMaxAttemptsWrappingLastCause(t *testing.T) {
	f := &farm{}
	b, clk, _ := newTest(t, f, WithMaxAttempts(3), WithBreaker(0, 0))
	connect(t, b)
	s := f.get(t, 0)
	s.fail(broker.OpAccounts, broker.ErrTimeout, broker.ErrTimeout, &broker.APIError{ReqID: 3, Code: broker.IBCodeConnectFail, Message: "cannot connect"})
	ch := async(func() ([]string, error) { return b.Accounts(context.Background()) })
	for range 2 {
		clk.Advance(clk.waitPending(t, -1))
	}
	r := await(t, ch)
	if r.err == nil || !strings.HasPrefix(r.err.Error(), "giving up after 3 attempt(s): ") {
		t.Fatalf("err = %v, want giving up after 3 attempt(s)", r.err)
	}
	if !errors.Is(r.err, broker.ErrGatewayUnreachable) || broker.IBCode(r.err) != 502 {
		t.Errorf("final error %v does not wrap the last cause (IB 502)", r.err)
	}
}

func TestOnlyIdempotentOperationsAreRetried(t *testing.T) {
	f := &farm{}
	b, _, _ := newTest(t, f, WithMaxAttempts(5), WithRand(func() float64 { return 0 })) // no waits
	placeOrder := broker.Op("place_order")                                              // not in broker's table: never retried
	if placeOrder.Idempotent() {
		t.Fatal("test premise: place_order must not be idempotent")
	}
	attempts := 0
	_, err := do(b, context.Background(), placeOrder, 0, func(context.Context) (int, error) {
		attempts++
		return 0, broker.ErrTimeout
	})
	if attempts != 1 {
		t.Errorf("non-idempotent op attempted %d times, want 1", attempts)
	}
	if !errors.Is(err, broker.ErrTimeout) || !strings.Contains(err.Error(), "giving up after 1 attempt(s)") {
		t.Errorf("err = %v", err)
	}
	for _, op := range broker.Ops() {
		if !op.Idempotent() {
			continue
		}
		n := 0
		_, err := do(b, context.Background(), op, 0, func(context.Context) (int, error) {
			n++
			if n < 2 {
				return 0, broker.ErrUnavailable
			}
			return 1, nil
		})
		if err != nil || n != 2 {
			t.Errorf("%s: attempts=%d err=%v, want retried once then success", op, n, err)
		}
	}
}

func TestPermanentErrorsAreNotRetriedNorCounted(t *testing.T) {
	for _, cause := range []error{
		broker.ErrInvalidArgument,
		broker.ErrUnsupported,
		&broker.APIError{ReqID: 4, Code: broker.IBCodeNoSecurityDefinition, Message: "No security definition has been found"},
	} {
		t.Run(cause.Error(), func(t *testing.T) {
			f := &farm{}
			b, _, _ := newTest(t, f, WithBreaker(1, time.Minute))
			connect(t, b)
			s := f.get(t, 0)
			s.fail(broker.OpAccountSummary, cause)
			_, err := b.AccountSummary(context.Background())
			if !errors.Is(err, cause) {
				t.Fatalf("err = %v, want %v", err, cause)
			}
			if got := s.count(broker.OpAccountSummary); got != 1 {
				t.Errorf("attempts = %d, want 1", got)
			}
			if st := b.Stats(); st.Failures != 0 || st.Breaker != BreakerClosed {
				t.Errorf("permanent error counted: %+v", st)
			}
		})
	}
}

func TestCancellationIsNotAFailure(t *testing.T) {
	f := &farm{}
	b, clk, _ := newTest(t, f, WithBreaker(1, time.Minute))
	connect(t, b)
	s := f.get(t, 0)

	// cancelled while the inner call blocks
	s.fail(broker.OpPositions, errBlock)
	ctx, cancel := context.WithCancel(context.Background())
	ch := async(func() ([]broker.Position, error) { return b.Positions(ctx) })
	eventually(t, "blocked inner call", func() bool { return s.count(broker.OpPositions) == 1 })
	cancel()
	if r := await(t, ch); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", r.err)
	}

	// cancelled while waiting out a backoff
	s.fail(broker.OpPing, broker.ErrTimeout)
	ctx2, cancel2 := context.WithCancel(context.Background())
	ch2 := async(func() (struct{}, error) { return struct{}{}, b.Ping(ctx2) })
	clk.waitPending(t, -1)
	cancel2()
	r := await(t, ch2)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", r.err)
	}
	if !strings.Contains(r.err.Error(), "after 1 attempt(s)") {
		t.Errorf("err = %v, want it to say how many attempts were made", r.err)
	}
	// one real failure (the ping) with threshold 1 opened the breaker; the cancellation did not
	if st := b.Stats(); st.Failures != 1 {
		t.Errorf("Failures = %d, want 1 (cancellations are not failures)", st.Failures)
	}
}

func TestAttemptTimeoutIsAFailureAndRetried(t *testing.T) {
	f := &farm{}
	b, clk, _ := newTest(t, f, WithAttemptTimeout(3*time.Second), WithMaxAttempts(2))
	connect(t, b)
	s := f.get(t, 0)
	s.fail(broker.OpAccounts, errBlock)
	ch := async(func() ([]string, error) { return b.Accounts(context.Background()) })
	eventually(t, "blocked attempt", func() bool { return s.count(broker.OpAccounts) == 1 })
	clk.Advance(clk.waitPending(t, 3*time.Second)) // the first attempt times out
	clk.Advance(clk.waitPending(t, Backoff{}.Delay(1, half())))
	r := await(t, ch)
	if r.err != nil {
		t.Fatalf("Accounts: %v", r.err)
	}
	st := b.Stats()
	if st.Failures != 1 || !errors.Is(st.LastError, broker.ErrTimeout) || errors.Is(st.LastError, context.DeadlineExceeded) {
		t.Errorf("Stats = %+v; want one ErrTimeout failure that is not the caller's deadline", st)
	}
}

func TestBreakerOpensRejectsFastAndProbes(t *testing.T) {
	f := &farm{}
	b, clk, h := newTest(t, f, WithMaxAttempts(1), WithBreaker(2, 30*time.Second))
	connect(t, b)
	s := f.get(t, 0)
	s.fail(broker.OpPositions, broker.ErrTimeout, broker.ErrTimeout)
	for range 2 {
		if _, err := b.Positions(context.Background()); !errors.Is(err, broker.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	}
	_, err := b.Positions(context.Background())
	if !errors.Is(err, ErrCircuitOpen) || !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrCircuitOpen matching ErrUnavailable", err)
	}
	if got := s.count(broker.OpPositions); got != 2 {
		t.Errorf("inner called %d times, want 2 (the open breaker must not call it)", got)
	}
	if st := b.Stats(); st.Breaker != BreakerOpen {
		t.Errorf("breaker %v, want open", st.Breaker)
	}
	clk.Advance(30 * time.Second)
	if st := b.Stats(); st.Breaker != BreakerHalfOpen {
		t.Errorf("after cool-down breaker %v, want half-open", st.Breaker)
	}
	// the probe fails: open again
	s.fail(broker.OpPositions, broker.ErrTimeout)
	if _, err := b.Positions(context.Background()); !errors.Is(err, broker.ErrTimeout) {
		t.Fatalf("probe err = %v", err)
	}
	if _, err := b.Positions(context.Background()); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("after failed probe err = %v, want ErrCircuitOpen", err)
	}
	clk.Advance(30 * time.Second)
	if _, err := b.Positions(context.Background()); err != nil {
		t.Fatalf("second probe: %v", err)
	}
	want := []BreakerState{BreakerOpen, BreakerHalfOpen, BreakerOpen, BreakerHalfOpen, BreakerClosed}
	// Notifications are delivered in order but possibly by another goroutine
	// that is flushing at the time (unlockAndFlush): wait for the last one.
	eventually(t, "the breaker's transitions", func() bool { return len(h.breakers()) >= len(want) })
	if diff := cmp.Diff(want, h.breakers()); diff != "" {
		t.Errorf("breaker transitions (-want +got):\n%s", diff)
	}
}

func TestConnect326BacksOffAndMovesClientID(t *testing.T) {
	f := &farm{prep: func(s *stub) {
		s.fail(broker.OpConnect, &broker.APIError{ReqID: -1, Code: broker.IBCodeClientIDInUse, Message: "client id is already in use"}, broker.ErrClientIDInUse)
	}}
	b, clk, _ := newTest(t, f, WithClientIDPolicy(NextClientID(3)))
	ch := async(func() (broker.ConnectInfo, error) { return b.Connect(context.Background(), testParams) })
	for range 2 {
		clk.Advance(clk.waitPending(t, -1)) // a real wait between refusals: never a tight loop
	}
	if r := await(t, ch); r.err != nil {
		t.Fatalf("Connect: %v", r.err)
	}
	s := f.get(t, 0)
	if diff := cmp.Diff([]int64{9}, s.clientIDs()); diff != "" {
		t.Errorf("accepted client ids (-want +got):\n%s", diff)
	}
	if got := s.count(broker.OpConnect); got != 3 {
		t.Errorf("connect attempts = %d, want 3", got)
	}
	if f.n() != 1 {
		t.Errorf("dialed %d inner brokers; 326 must not replace the worker", f.n())
	}
	if st := b.Stats(); st.ClientID != 9 || st.State != StateConnected {
		t.Errorf("Stats = %+v", st)
	}
}

func TestStalledHandshakeReplacesInner(t *testing.T) {
	f := &farm{prep: func(s *stub) {
		if s.id == 0 {
			s.fail(broker.OpConnect, errBlock)
		}
	}}
	b, clk, _ := newTest(t, f, WithAttemptTimeout(2*time.Second))
	ch := async(func() (broker.ConnectInfo, error) { return b.Connect(context.Background(), testParams) })
	clk.Advance(clk.waitPending(t, 2*time.Second)) // the attempt times out
	clk.Advance(clk.waitPending(t, Backoff{}.Delay(1, half())))
	if r := await(t, ch); r.err != nil {
		t.Fatalf("Connect: %v", r.err)
	}
	if f.n() != 2 || !f.get(t, 1).isConnected() {
		t.Fatalf("want a second inner broker connected (dialed %d)", f.n())
	}
	eventually(t, "the stalled inner broker closed", f.get(t, 0).isClosed)
	if st := b.Stats(); st.Restarts != 1 || st.WorkerPID != 1001 {
		t.Errorf("Stats = %+v, want 1 restart and worker pid 1001", st)
	}
}

func TestConnectErrors(t *testing.T) {
	f := &farm{}
	b, _, _ := newTest(t, f)
	if _, err := b.Connect(context.Background(), broker.ConnectParams{Port: 70000}); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("bad port: %v", err)
	}
	connect(t, b)
	if _, err := b.Connect(context.Background(), testParams); !errors.Is(err, broker.ErrAlreadyConnected) {
		t.Errorf("second Connect: %v", err)
	}
	if st := b.Stats(); st.Failures != 0 {
		t.Errorf("Failures = %d", st.Failures)
	}
	if f.n() != 1 {
		t.Errorf("dialed %d", f.n())
	}

	// a dialer that keeps failing: the final error says so and wraps ErrUnavailable
	g := &farm{dialErrs: []error{errors.New("exec: no such file"), errors.New("exec: no such file")}}
	b2, clk, _ := newTest(t, g, WithMaxAttempts(2))
	ch := async(func() (broker.ConnectInfo, error) { return b2.Connect(context.Background(), testParams) })
	clk.Advance(clk.waitPending(t, -1))
	r := await(t, ch)
	if !errors.Is(r.err, broker.ErrUnavailable) || !strings.Contains(r.err.Error(), "no such file") {
		t.Errorf("dial failure: %v", r.err)
	}
	if st := b2.Stats(); st.State != StateDisconnected {
		t.Errorf("state after failed Connect = %v", st.State)
	}
}

func TestDeadWorkerIsReplacedAndCallerServedByTheNewOne(t *testing.T) {
	f := &farm{}
	b, _, h := newTest(t, f)
	connect(t, b)
	events, err := b.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.get(t, 0).kill()
	pos, err := b.Positions(context.Background())
	if err != nil {
		t.Fatalf("Positions across a restart: %v", err)
	}
	if got := pos[0].Quantity.String(); got != "101" {
		t.Errorf("served by the stub with quantity %s, want the new one (101)", got)
	}
	eventually(t, "the dead inner broker closed", f.get(t, 0).isClosed)
	if diff := cmp.Diff([]int64{7}, f.get(t, 1).clientIDs()); diff != "" {
		t.Errorf("reconnect params (-want +got):\n%s", diff)
	}
	st := b.Stats()
	if st.Restarts != 1 || st.Reconnects != 1 || st.State != StateConnected || st.WorkerPID != 1001 {
		t.Errorf("Stats = %+v", st)
	}
	wantStates := []State{StateConnecting, StateConnected, StateReconnecting, StateConnected}
	if diff := cmp.Diff(wantStates, h.states()); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	var kinds []broker.EventKind
	for len(kinds) < 2 {
		select {
		case e := <-events:
			kinds = append(kinds, e.Kind)
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far %v", kinds)
		}
	}
	if diff := cmp.Diff([]broker.EventKind{broker.EventConnectionLost, broker.EventConnectionRestored}, kinds); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestExitedWorkerIsReplacedWithoutACall(t *testing.T) {
	f := &farm{exiter: true}
	b, _, _ := newTest(t, f)
	connect(t, b)
	s := f.get(t, 0)
	s.kill()
	close(s.exited)
	eventually(t, "replacement worker connected", func() bool {
		return f.n() == 2 && f.get(t, 1).isConnected() && b.State() == StateConnected
	})
	if st := b.Stats(); st.Restarts != 1 {
		t.Errorf("Restarts = %d", st.Restarts)
	}
}

func TestDroppedSessionIsRestored(t *testing.T) {
	for _, inPlace := range []bool{false, true} {
		t.Run(fmt.Sprintf("inPlace=%v", inPlace), func(t *testing.T) {
			f := &farm{}
			opts := []Option{}
			if inPlace {
				opts = append(opts, WithReconnectInPlace())
			}
			b, clk, _ := newTest(t, f, opts...)
			connect(t, b)
			s := f.get(t, 0)
			// the gateway is gone for two attempts, then back
			gone := func(s *stub) { s.fail(broker.OpConnect, broker.ErrGatewayUnreachable, broker.ErrGatewayUnreachable) }
			f.mu.Lock()
			f.prep = gone
			f.mu.Unlock()
			gone(s)
			s.dropSession()
			eventually(t, "reconnecting", func() bool { return b.State() == StateReconnecting })
			for range 2 {
				clk.Advance(clk.waitPending(t, -1))
			}
			eventually(t, "reconnected", func() bool { return b.State() == StateConnected })
			if _, err := b.Accounts(context.Background()); err != nil {
				t.Fatalf("Accounts after reconnect: %v", err)
			}
			st := b.Stats()
			wantDials, wantRestarts, last := 1, int64(0), s
			if !inPlace {
				wantDials, wantRestarts = 2, 1
				last = f.get(t, 1)
			}
			if st.Restarts != wantRestarts || st.Reconnects != 1 || f.n() != wantDials {
				t.Errorf("Stats = %+v, dialed %d; want %d restart(s), 1 reconnect, %d dial(s)", st, f.n(), wantRestarts, wantDials)
			}
			if !last.isConnected() {
				t.Errorf("want the session on stub %d", last.id)
			}
			if !inPlace {
				eventually(t, "the old stub closed", s.isClosed)
			}
		})
	}
}

func TestGatewayLostIBThenRestored(t *testing.T) {
	f := &farm{}
	b, _, h := newTest(t, f)
	connect(t, b)
	events, err := b.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := f.get(t, 0)
	s.hub.Publish(broker.Event{Kind: broker.EventConnectionLost, Code: broker.IBCodeConnectivityLost, Message: "Connectivity between IB and Trader Workstation has been lost."})
	eventually(t, "reconnecting", func() bool { return b.State() == StateReconnecting })
	if _, err := b.Positions(context.Background()); err != nil { // the socket is fine: calls go through
		t.Errorf("Positions during 1100: %v", err)
	}
	s.hub.Publish(broker.Event{Kind: broker.EventConnectionRestored, Code: broker.IBCodeRestoredDataMaintained, Message: "Connectivity between IB and Trader Workstation has been restored - data maintained."})
	eventually(t, "connected", func() bool { return b.State() == StateConnected })
	var codes []int64
	for len(codes) < 2 {
		select {
		case e := <-events:
			codes = append(codes, e.Code)
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far %v", codes)
		}
	}
	if diff := cmp.Diff([]int64{broker.IBCodeConnectivityLost, broker.IBCodeRestoredDataMaintained}, codes); diff != "" {
		t.Errorf("forwarded events (-want +got):\n%s", diff)
	}
	if st := b.Stats(); st.Restarts != 0 || st.Reconnects != 0 {
		t.Errorf("1100/1102 must not touch the socket: %+v", st)
	}
	wantStates := []State{StateConnecting, StateConnected, StateReconnecting, StateConnected}
	if diff := cmp.Diff(wantStates, h.states()); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
}

func TestMissedPingsReplaceWorker(t *testing.T) {
	f := &farm{prep: func(s *stub) {
		if s.id == 0 {
			s.fail(broker.OpPing, nil, errBlock, errBlock) // healthy once, then a stalled (half-open) socket
		}
	}}
	b, clk, _ := newTest(t, f, WithHealthCheck(5*time.Second, time.Second, 2))
	connect(t, b)
	clk.Advance(clk.waitPending(t, 5*time.Second)) // ping 1 answers
	clk.Advance(clk.waitPending(t, 5*time.Second)) // ping 2 stalls
	clk.Advance(clk.waitPending(t, time.Second))   // miss 1; checked again at once
	clk.Advance(clk.waitPending(t, time.Second))   // miss 2: replace
	eventually(t, "replacement worker", func() bool {
		return f.n() == 2 && f.get(t, 1).isConnected() && b.State() == StateConnected
	})
	eventually(t, "the stalled worker closed", f.get(t, 0).isClosed)
	if err := b.Ping(context.Background()); err != nil {
		t.Errorf("Ping after replacement: %v", err)
	}
}

func TestDisconnectStopsReconnecting(t *testing.T) {
	f := &farm{}
	b, _, _ := newTest(t, f)
	connect(t, b)
	if err := b.Disconnect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Disconnect(context.Background()); err != nil {
		t.Fatalf("second Disconnect: %v", err)
	}
	s := f.get(t, 0)
	s.dropSession()
	s.kill()
	if _, err := b.Accounts(context.Background()); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Accounts after Disconnect: %v", err)
	}
	if f.n() != 1 || b.State() != StateDisconnected {
		t.Errorf("reconnected after Disconnect: dialed %d, state %v", f.n(), b.State())
	}
	// a later Connect replaces the dead worker
	connect(t, b)
	if f.n() != 2 {
		t.Errorf("dialed %d, want 2", f.n())
	}
}

func TestCloseStopsEverything(t *testing.T) {
	f := &farm{exiter: true}
	b, _, h := newTest(t, f, WithHealthCheck(time.Second, time.Second, 1))
	connect(t, b)
	events, err := b.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// a call blocked in the inner broker returns when Close closes it
	s := f.get(t, 0)
	s.fail(broker.OpPositions, errBlock)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !s.isClosed() {
		t.Error("inner not closed")
	}
	if _, ok := <-events; ok {
		t.Error("subscription not closed")
	}
	ctx := context.Background()
	for name, err := range map[string]error{
		"Connect":    func() error { _, err := b.Connect(ctx, testParams); return err }(),
		"Disconnect": b.Disconnect(ctx),
		"Accounts":   func() error { _, err := b.Accounts(ctx); return err }(),
		"Ping":       b.Ping(ctx),
		"Subscribe":  func() error { _, err := b.Subscribe(ctx); return err }(),
	} {
		if !errors.Is(err, broker.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if got := h.states(); got[len(got)-1] != StateClosed {
		t.Errorf("last state %v", got)
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

func TestConcurrentCallsAcrossRestarts(t *testing.T) {
	f := &farm{}
	b, _, _ := newTest(t, f, WithMaxAttempts(20), WithBreaker(0, 0))
	connect(t, b)
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				var err error
				switch (w + i) % 3 {
				case 0:
					_, err = b.Positions(context.Background())
				case 1:
					_, err = b.AccountSummary(context.Background(), "NetLiquidation")
				default:
					err = b.Ping(context.Background())
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d call %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	const kills = 5
	for k := range kills { // kill the current worker while the calls run
		eventually(t, "worker to kill", func() bool { return f.n() == k+1 && f.get(t, k).isConnected() })
		f.get(t, k).kill()
	}
	eventually(t, "last replacement", func() bool { return f.n() == kills+1 && b.State() == StateConnected })
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := b.Stats(); st.Restarts != kills || st.Reconnects != kills {
		t.Errorf("Stats = %+v, want %d restarts and reconnects", st, kills)
	}
}

// TestOpenBreakerStillSaysNotConnected: a Broker with no session wanted answers
// ErrNotConnected as the port requires, even while failed Connects hold the
// breaker open (found by the conformance state machine).
func TestOpenBreakerStillSaysNotConnected(t *testing.T) {
	f := &farm{prep: func(s *stub) { s.fail(broker.OpConnect, broker.ErrClientIDInUse, broker.ErrClientIDInUse) }}
	b, _, _ := newTest(t, f, WithMaxAttempts(1), WithBreaker(2, time.Hour))
	for range 2 {
		if _, err := b.Connect(context.Background(), testParams); !errors.Is(err, broker.ErrClientIDInUse) {
			t.Fatalf("Connect: %v, want ErrClientIDInUse", err)
		}
	}
	if st := b.Stats(); st.Breaker != BreakerOpen {
		t.Fatalf("breaker %v, want open", st.Breaker)
	}
	if _, err := b.Connect(context.Background(), testParams); !errors.Is(err, ErrCircuitOpen) {
		t.Errorf("Connect with the breaker open: %v, want ErrCircuitOpen", err)
	}
	for name, call := range map[string]func() error{
		"Ping":      func() error { return b.Ping(context.Background()) },
		"Accounts":  func() error { _, err := b.Accounts(context.Background()); return err },
		"Positions": func() error { _, err := b.Positions(context.Background()); return err },
	} {
		if err := call(); !errors.Is(err, broker.ErrNotConnected) || errors.Is(err, broker.ErrUnavailable) {
			t.Errorf("%s with no session and the breaker open: %v, want ErrNotConnected only", name, err)
		}
	}
}
