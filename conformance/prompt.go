package conformance

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// awaitRequest waits until the gateway has read n requests with message id id
// since it started (fakes.Gateway.WaitRequests): the call that sent the n-th is
// in flight. It fails if done yields first (the call returned before its request
// reached the gateway) or after CallTimeout.
func awaitRequest[R any](env Env, id, n int, done <-chan R) error {
	return awaitFirstRequest(env, done, requestCount{id, n})
}

// requestCount is a number of requests with one message id.
type requestCount struct{ id, n int }

// returnedFirst is awaitFirstRequest's error when the call returned (with
// result) before any of its requests reached the stalled gateway.
type returnedFirst struct{ result any }

func (e *returnedFirst) Error() string {
	return fmt.Sprintf("the call returned %v before its request reached the stalled gateway", e.result)
}

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
			return &returnedFirst{r}
		}
	}
	return fmt.Errorf("no request %v reached the gateway within %v: %w", want, CallTimeout, err)
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
