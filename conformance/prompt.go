package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// PromptBound is how soon a call must return once its context is done (already
// cancelled when the call starts, cancelled mid-call, or past its deadline),
// and how soon a subscription must close once its context is done. It is a
// bound on hangs, not on speed: a call that waits for a stalled gateway despite
// its context takes seconds.
const PromptBound = 250 * time.Millisecond

// connectBound is ConnectParams.Timeout in the promptness cases: far beyond
// PromptBound, so that a Connect that returns on its Timeout instead of its
// context is caught.
const connectBound = time.Second

// Message ids of requests on the TWS wire.
const (
	reqCurrentTime    = fakes.MsgReqCurrentTime    // REQ_CURRENT_TIME (Ping)
	reqPositions      = fakes.MsgReqPositions      // REQ_POSITIONS
	reqAccountSummary = fakes.MsgReqAccountSummary // REQ_ACCOUNT_SUMMARY
)

// openSockets counts the gateway's connections that are still open.
func openSockets(env Env) int {
	n := 0
	for _, c := range env.Gateway.Connections() {
		if !c.Closed {
			n++
		}
	}
	return n
}

// SocketBound is how soon after a Broker lets go of a connection (Disconnect,
// a failed Connect, Close) the gateway must see it closed.
const SocketBound = 2 * time.Second

// waitSockets waits up to SocketBound until the gateway holds exactly want
// open connections.
func waitSockets(t TB, env Env, want int, when string) {
	t.Helper()
	deadline := time.Now().Add(SocketBound)
	for {
		n := openSockets(env)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the gateway holds %d open connections after %v, want %d", when, n, SocketBound, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// awaitRequest waits until the gateway has read n requests with message id id
// since it started (fakes.Gateway.WaitRequests): the call that sent the n-th is
// in flight. It fails if done yields first (the call returned before its request
// reached the gateway) or after CallTimeout.
func awaitRequest[R any](env Env, id, n int, done <-chan R) error {
	return awaitFirstRequest(env, done, requestCount{id, n})
}

// requestCount is a number of requests with one message id.
type requestCount struct{ id, n int }

// awaitFirstRequest is awaitRequest for whichever of want the gateway reaches first.
func awaitFirstRequest[R any](env Env, done <-chan R, want ...requestCount) error {
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	arrived := make(chan error, len(want))
	for _, w := range want {
		go func() {
			_, err := env.Gateway.WaitRequests(ctx, w.id, w.n)
			arrived <- err
		}()
	}
	var err error
	for range want {
		select {
		case err = <-arrived:
			if err == nil {
				return nil
			}
		case r := <-done:
			return fmt.Errorf("the call returned %v before its request reached the stalled gateway", r)
		}
	}
	return fmt.Errorf("no request %v reached the gateway within %v: %w", want, CallTimeout, err)
}

// allRequests counts every request the gateway has read, START_API included,
// plus every connection that got as far as a handshake.
func allRequests(env Env) int {
	n := 0
	for _, c := range env.Gateway.Connections() {
		n += len(c.Requests) + c.DroppedRequests
		if c.ClientVersionMax > 0 {
			n++
		}
	}
	return n
}

// fdCount returns the number of open file descriptors of this process, or -1
// where /proc/self/fd does not exist.
func fdCount() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// leakCheck snapshots goroutines and file descriptors; the returned function
// closes b and env's gateway and fails t if b left a connection to the
// gateway open, or ends the case if goroutines or file descriptors grew
// (further checks would start from a polluted baseline).
func leakCheck(t TB) func(b broker.Broker, env Env, when string) {
	before := goleak.IgnoreCurrent()
	fds := fdCount()
	return func(b broker.Broker, env Env, when string) {
		t.Helper()
		if err := b.Close(); err != nil {
			t.Errorf("%s: Close: %v", when, err)
		}
		waitSockets(t, env, 0, when+", after Close")
		if err := env.Gateway.Close(); err != nil {
			t.Errorf("%s: close the gateway: %v", when, err)
		}
		if err := goleak.Find(before); err != nil {
			t.Fatalf("%s: goroutines left after Close: %v", when, err)
		}
		if fds < 0 {
			return
		}
		deadline := time.Now().Add(time.Second)
		for n := fdCount(); n > fds; n = fdCount() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d file descriptors open a second after Close, %d before", when, n, fds)
			}
			runtime.GC() // finalizers close what was dropped
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// op is one method of the Broker made with a context, for the promptness
// cases; ok checks a successful answer.
type op struct {
	name      string
	connected bool // the call is made on a connected Broker
	reqID     int  // the request the call sends, 0 if it may send none
	call      func(ctx context.Context, b broker.Broker, env Env) error
}

func promptOps(s fakes.Script) []op {
	return []op{
		{"Connect", false, -1, func(ctx context.Context, b broker.Broker, env Env) error {
			_, err := b.Connect(ctx, env.Params)
			return err
		}},
		{"Accounts", true, 0, func(ctx context.Context, b broker.Broker, env Env) error {
			_, err := b.Accounts(ctx)
			return err
		}},
		{"Positions", true, reqPositions, func(ctx context.Context, b broker.Broker, env Env) error {
			_, err := b.Positions(ctx)
			return err
		}},
		{"AccountSummary", true, reqAccountSummary, func(ctx context.Context, b broker.Broker, env Env) error {
			_, err := b.AccountSummary(ctx)
			return err
		}},
		{"Ping", true, reqCurrentTime, func(ctx context.Context, b broker.Broker, env Env) error { return b.Ping(ctx) }},
	}
}

// timed makes call and returns how long it took and its error.
func timed(call func() error) (time.Duration, error) {
	start := time.Now()
	err := call()
	return time.Since(start), err
}

// The promptness cases: every operation returns within PromptBound with an
// error matching ctx.Err() when its context is done, and leaves nothing
// behind. Each operation runs on a Broker and gateway of its own; after the
// call, Close must leave no goroutine, file descriptor or gateway connection
// behind, and a failed Connect must hold no socket even before Close.
// Accounts may be answered from the session's memory: it may succeed if its
// answer is complete before its context is done. Disconnect, which only lets
// go, may complete (return nil) despite a done context, but promptly.

// TestCancelledContext: every operation called with a context already
// cancelled fails with context.Canceled within PromptBound (Disconnect: nil
// or context.Canceled).
func TestCancelledContext(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	for _, o := range promptOps(s) {
		promptCase(t, newBroker, f, s, o, "cancelled")
	}
	check := leakCheck(t)
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	connect(t, b, env.Params)
	dead, cancel := context.WithCancel(t.Context())
	cancel()
	took, err := timed(func() error { return b.Disconnect(dead) })
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Disconnect with a cancelled context: %v, want nil or one matching %v", err, context.Canceled)
	}
	if took > PromptBound {
		t.Errorf("Disconnect with a cancelled context took %v, want within %v", took, PromptBound)
	}
	check(b, env, "Disconnect with a cancelled context")
}

// TestCancelMidCall: every operation whose context is cancelled once its
// request reached a gateway that stopped answering (Connect: one that stalls
// the handshake) fails with context.Canceled within PromptBound.
func TestCancelMidCall(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	for _, o := range promptOps(s) {
		promptCase(t, newBroker, f, s, o, "mid-call")
	}
}

// TestExpiredDeadline: every operation whose deadline expires while a gateway
// does not answer (Connect: stalls the handshake, with a ConnectParams.Timeout
// far longer) fails with context.DeadlineExceeded within PromptBound of the
// deadline.
func TestExpiredDeadline(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	for _, o := range promptOps(s) {
		promptCase(t, newBroker, f, s, o, "deadline")
	}
}

func promptCase(t TB, newBroker Factory, f Features, s fakes.Script, o op, mode string) {
	t.Helper()
	what := o.name + " (" + mode + ")"
	check := leakCheck(t)
	if mode != "cancelled" && o.name == "Connect" {
		s = s.Clone()
		s.Faults.StallHandshake = true
	}
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	defer check(b, env, what)
	if o.connected {
		connect(t, b, env.Params)
	}
	p := env.Params
	p.Timeout = connectBound // the context, not the Timeout, must end Connect
	env.Params = p

	var (
		err   error
		late  time.Duration // how long after its context was done the call returned
		early bool          // the call returned before its context was done
	)
	switch mode {
	case "cancelled":
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		late, err = timed(func() error { return o.call(ctx, b, env) })
	case "deadline":
		if o.connected {
			env.Gateway.Stall()
			defer env.Gateway.Resume()
		}
		const d = 100 * time.Millisecond
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), d)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- o.call(ctx, b, env) }()
		select {
		case err = <-done:
		case <-time.After(d + 2*PromptBound):
			env.Gateway.Resume() // it waits for the gateway: let it answer
			select {
			case err = <-done:
			case <-time.After(CallTimeout):
				t.Fatalf("%s did not return within %v of its deadline", what, CallTimeout)
			}
		}
		took := time.Since(start)
		early, late = took < d && ctx.Err() == nil, took-d
	case "mid-call":
		if o.connected {
			env.Gateway.Stall()
			defer env.Gateway.Resume()
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		type result struct {
			err error
			at  time.Time
		}
		done := make(chan result, 1)
		mark := allRequests(env)
		if o.reqID > 0 {
			mark = env.Gateway.RequestCount(o.reqID)
		}
		go func() {
			err := o.call(ctx, b, env)
			done <- result{err, time.Now()}
		}()
		// Cancel once the request reached the gateway (or, for Accounts, at
		// once: it may send none).
		if o.reqID > 0 {
			if err := awaitRequest(env, o.reqID, mark+1, done); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		// Any request at all (o.reqID < 0): no message id to wait for.
		deadline := time.Now().Add(CallTimeout)
		for o.reqID < 0 && allRequests(env) <= mark {
			select {
			case r := <-done:
				t.Fatalf("%s returned %v before its request reached the stalled gateway", what, r.err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no request reached the gateway within %v", what, CallTimeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
		cancelled := time.Now()
		cancel()
		var r result
		select {
		case r = <-done:
		case <-time.After(2 * PromptBound):
			// It waits for the gateway: let the gateway answer, so that
			// the case goes on rather than waiting for the call.
			env.Gateway.Resume()
			select {
			case r = <-done:
			case <-time.After(CallTimeout):
				t.Fatalf("%s did not return within %v of its context being cancelled", what, CallTimeout)
			}
		}
		err, late = r.err, r.at.Sub(cancelled)
		early = r.at.Before(cancelled)
	}
	want := context.Canceled
	if mode == "deadline" {
		want = context.DeadlineExceeded
	}
	switch {
	case o.name == "Accounts" && err == nil:
		// answered from memory, racing with the context's end
	case early:
		t.Errorf("%s returned %v before its context was done, from a stalled gateway", what, err)
	default:
		wantIs(t, what, err, want)
		if late > PromptBound {
			t.Errorf("%s returned %v after its context was done, want within %v", what, late, PromptBound)
		}
	}
	if o.name == "Connect" {
		waitSockets(t, env, 0, what+": a failed Connect must hold no socket")
	}
}

// TestSubscribeCancel: a subscription's channel is closed within PromptBound
// once its context is done, while the Broker goes on (the session and other
// subscriptions are unaffected); Subscribe with a context already done fails
// with its error or returns a channel that closes as promptly.
func TestSubscribeCancel(t TB, newBroker Factory, f Features) {
	env := newEnv(t, f, StandardScript())
	b := newBroker(t, env)
	other := subscribe(t, b)
	connect(t, b, env.Params)
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := b.Subscribe(ctx)
	if err != nil {
		cancel()
		t.Fatalf("Subscribe: %v", err)
	}
	cancel()
	waitClosed(t, ch, "subscription after its context was cancelled")

	dead, cancelDead := context.WithCancel(t.Context())
	cancelDead()
	if ch, err := b.Subscribe(dead); err == nil {
		waitClosed(t, ch, "subscription made with a cancelled context")
	} else {
		wantIs(t, "Subscribe with a cancelled context", err, context.Canceled)
	}

	if n := env.Gateway.Notify(broker.IBCodeConnectivityLost, ""); n != 1 {
		t.Fatalf("gateway sent notice 1100 to %d sessions, want 1", n)
	}
	waitEvent(t, other, "IB 1100 on the subscription that was not cancelled", func(e broker.Event) bool {
		return e.Code == broker.IBCodeConnectivityLost
	})
	c, cancelCall := callCtx(t)
	defer cancelCall()
	if err := b.Ping(c); err != nil {
		t.Errorf("Ping after a subscription ended: %v", err)
	}
}

// waitClosed waits up to PromptBound for ch to close, draining it.
func waitClosed(t TB, ch <-chan broker.Event, what string) {
	t.Helper()
	timer := time.NewTimer(PromptBound)
	defer timer.Stop()
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-timer.C:
			t.Errorf("%s: channel still open after %v", what, PromptBound)
			return
		}
	}
}

// TestCloseInFlight: Close while Positions, AccountSummary and Ping wait for
// a gateway that stopped answering makes each of them return within
// PromptBound with an error matching broker.ErrClosed, and Close itself
// returns within CallTimeout.
func TestCloseInFlight(t TB, newBroker Factory, f Features) {
	env := newEnv(t, f, StandardScript())
	b := newBroker(t, env)
	connect(t, b, env.Params)
	env.Gateway.Stall()
	defer env.Gateway.Resume()
	ctx, cancel := callCtx(t)
	defer cancel()
	ops := []op{promptOps(StandardScript())[2], promptOps(StandardScript())[3], promptOps(StandardScript())[4]}
	type result struct {
		name string
		err  error
		at   time.Time
	}
	done := make(chan result, len(ops))
	mark := allRequests(env)
	for _, o := range ops {
		go func() {
			err := o.call(ctx, b, env)
			done <- result{o.name, err, time.Now()}
		}()
	}
	// The gateway reads the next request only once it has answered the one
	// before; wait for the first to arrive (the others are on their way).
	deadline := time.Now().Add(CallTimeout)
	for allRequests(env) == mark {
		if time.Now().After(deadline) {
			t.Fatalf("no request reached the gateway within %v", CallTimeout)
		}
		select {
		case r := <-done:
			t.Fatalf("%s returned %v before Close, from a stalled gateway", r.name, r.err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	closed := time.Now()
	closeDone := make(chan error, 1)
	go func() { closeDone <- b.Close() }()
	for range ops {
		select {
		case r := <-done:
			wantIs(t, r.name+" in flight during Close", r.err, broker.ErrClosed)
			if late := r.at.Sub(closed); late > PromptBound {
				t.Errorf("%s in flight during Close returned %v after Close began, want within %v", r.name, late, PromptBound)
			}
		case <-time.After(CallTimeout):
			t.Fatalf("a call in flight did not return within %v of Close", CallTimeout)
		}
	}
	select {
	case err := <-closeDone:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(CallTimeout):
		t.Fatalf("Close with calls in flight did not return within %v", CallTimeout)
	}
}

// TestSlowSubscriber: a subscriber that never reads its channel loses events
// but does not slow the Broker: after the gateway sends 200 notices, Ping
// still answers within CallTimeout/5, and delivery goes on: a subscriber that
// reads receives a notice the gateway repeats until it arrives.
func TestSlowSubscriber(t TB, newBroker Factory, f Features) {
	env := newEnv(t, f, StandardScript())
	b := newBroker(t, env)
	_ = subscribe(t, b) // never read
	connect(t, b, env.Params)
	for range 200 {
		if n := env.Gateway.Notify(broker.IBCodeMarketDataFarmOK, ""); n != 1 {
			t.Fatalf("gateway sent a notice to %d sessions, want 1", n)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), CallTimeout/5)
	defer cancel()
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping after 200 notices to a subscriber that does not read: %v", err)
	}
	// Delivery is best effort, so an event may be lost while the backlog
	// drains; but delivery must not stop: repeat the notice until a
	// subscriber that reads sees it.
	reader := subscribe(t, b)
	deadline := time.Now().Add(CallTimeout)
	for {
		if n := env.Gateway.Notify(broker.IBCodeConnectivityLost, ""); n != 1 {
			t.Fatalf("gateway sent notice 1100 to %d sessions, want 1", n)
		}
		if sawWithin(reader, PromptBound, func(e broker.Event) bool { return e.Code == broker.IBCodeConnectivityLost }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a subscriber that reads saw no IB 1100 within %v of repeated notices", CallTimeout)
		}
	}
}

// sawWithin reads ch for up to d and reports whether an event matching ok came.
func sawWithin(ch <-chan broker.Event, d time.Duration, ok func(broker.Event) bool) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, open := <-ch:
			if !open {
				return false
			}
			if ok(e) {
				return true
			}
		case <-timer.C:
			return false
		}
	}
}
