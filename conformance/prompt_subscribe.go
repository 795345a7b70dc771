// Promptness of subscriptions and Close: cancelled subscriptions, Close in flight, slow subscribers.

package conformance

import (
	"context"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

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
	_, env, b := connectedStandard(t, newBroker, f)
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
