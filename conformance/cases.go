package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// ---- helpers ----

func connect(t TB, b broker.Broker, p broker.ConnectParams) broker.ConnectInfo {
	t.Helper()
	ctx, cancel := callCtx(t)
	defer cancel()
	info, err := b.Connect(ctx, p)
	if err != nil {
		t.Fatalf("Connect(%s, client %d): %v", p.Addr(), p.ClientID, err)
	}
	return info
}

func disconnect(t TB, b broker.Broker) {
	t.Helper()
	ctx, cancel := callCtx(t)
	defer cancel()
	if err := b.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
}

// waitGatewayIdle waits until the gateway has seen every session end: it
// notices a client's close asynchronously, and until then it would refuse the
// same client id with 326, as real TWS does.
func waitGatewayIdle(t TB, env Env, when string) {
	t.Helper()
	deadline := time.Now().Add(CallTimeout)
	for {
		ids := env.Gateway.LiveClientIDs()
		if len(ids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the gateway still has live sessions %v after %v", when, ids, CallTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantIs reports a failure unless errors.Is(err, target).
func wantIs(t TB, what string, err, target error) bool {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want one matching %v", what, err, target)
		return false
	}
	return true
}

// calls are the methods of a connected Broker, each made once with ctx.
func calls(b broker.Broker) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"Accounts":       func(ctx context.Context) error { _, err := b.Accounts(ctx); return err },
		"Positions":      func(ctx context.Context) error { _, err := b.Positions(ctx); return err },
		"AccountSummary": func(ctx context.Context) error { _, err := b.AccountSummary(ctx); return err },
		"Ping":           func(ctx context.Context) error { return b.Ping(ctx) },
		"AccountUpdates": func(ctx context.Context) error { _, err := b.AccountUpdates(ctx, ""); return err },
		"Executions": func(ctx context.Context) error {
			_, err := b.Executions(ctx, broker.ExecutionFilter{})
			return err
		},
		"OpenOrders":      func(ctx context.Context) error { _, err := b.OpenOrders(ctx); return err },
		"CompletedOrders": func(ctx context.Context) error { _, err := b.CompletedOrders(ctx); return err },
	}
}

func sortedNames(m map[string]func(context.Context) error) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// checkData compares every data call of a connected b with script s.
func checkData(t TB, b broker.Broker, s fakes.Script) {
	t.Helper()
	ctx, cancel := callCtx(t)
	defer cancel()
	accts, err := b.Accounts(ctx)
	if err != nil {
		t.Errorf("Accounts: %v", err)
	} else if diff := cmp.Diff(s.Accounts, accts); diff != "" {
		t.Errorf("Accounts (-script +got):\n%s", diff)
	}
	pos, err := b.Positions(ctx)
	if err != nil {
		t.Errorf("Positions: %v", err)
	} else if diff := cmp.Diff(s.Positions, pos); diff != "" {
		t.Errorf("Positions (-script +got):\n%s", diff)
	}
	sum, err := b.AccountSummary(ctx)
	if err != nil {
		t.Errorf("AccountSummary: %v", err)
	} else if diff := cmp.Diff(ExpectedSummary(s), sum); diff != "" {
		t.Errorf("AccountSummary (-script +got):\n%s", diff)
	}
	if err := b.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// waitEvent waits up to CallTimeout for an event matching ok, skipping others.
func waitEvent(t TB, ch <-chan broker.Event, what string, ok func(broker.Event) bool) broker.Event {
	t.Helper()
	timer := time.NewTimer(CallTimeout)
	defer timer.Stop()
	var seen []broker.Event
	for {
		select {
		case e, open := <-ch:
			if !open {
				t.Fatalf("waiting for %s: event channel closed; saw %v", what, seen)
			}
			if ok(e) {
				return e
			}
			seen = append(seen, e)
		case <-timer.C:
			t.Fatalf("no %s within %v; saw %v", what, CallTimeout, seen)
		}
	}
}

func subscribe(t TB, b broker.Broker) <-chan broker.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	ch, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return ch
}

// ---- cases ----

// TestConnect: Connect returns the scripted accounts and the server version of
// the gateway (Features.ServerVersion, by default fakes.DefaultServerVersion),
// Accounts agrees, and Disconnect of a connected Broker succeeds.
func TestConnect(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	info := connect(t, b, env.Params)
	want := broker.ConnectInfo{Accounts: s.Accounts, ServerVersion: f.serverVersion()}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Connect info (-want +got):\n%s", diff)
	}
	ctx, cancel := callCtx(t)
	defer cancel()
	accts, err := b.Accounts(ctx)
	if err != nil {
		t.Fatalf("Accounts: %v", err)
	}
	if diff := cmp.Diff(s.Accounts, accts); diff != "" {
		t.Errorf("Accounts (-script +got):\n%s", diff)
	}
	disconnect(t, b)
}

// TestInvalidParams: Connect with impossible parameters fails with
// ErrInvalidArgument without touching the network.
func TestInvalidParams(t TB, newBroker Factory, f Features) {
	env := newEnv(t, f, StandardScript())
	b := newBroker(t, env)
	ctx, cancel := callCtx(t)
	defer cancel()
	for _, p := range []broker.ConnectParams{
		{Host: env.Host, Port: 70000, ClientID: 1},
		{Host: env.Host, Port: env.Port, ClientID: -1},
		{Host: env.Host, Port: env.Port, ClientID: 1, Timeout: -time.Second},
	} {
		_, err := b.Connect(ctx, p)
		wantIs(t, fmt.Sprintf("Connect(%+v)", p), err, broker.ErrInvalidArgument)
	}
	if n := len(env.Gateway.Connections()); n != 0 {
		t.Errorf("invalid Connects opened %d connections to the gateway", n)
	}
}

// TestPositions: Positions returns the scripted positions exactly, in the
// gateway's order, with exact decimals (fractional, negative, tiny and
// near-maximum quantities); a second call does not see leftovers of the first,
// and a third, after the gateway's positions changed, sees the new list, not a
// cached one.
func TestPositions(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	connect(t, b, env.Params)
	for i := range 3 {
		if i == 2 {
			s = s.Clone()
			s.Positions = slices.Clone(s.Positions[1:])
			slices.Reverse(s.Positions)
			s.Positions[0].Quantity = broker.MustDecimal("-42.5")
			env.Gateway.SetScript(s)
		}
		ctx, cancel := callCtx(t)
		pos, err := b.Positions(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Positions #%d: %v", i+1, err)
		}
		if diff := cmp.Diff(s.Positions, pos); diff != "" {
			t.Errorf("Positions #%d (-script +got):\n%s", i+1, diff)
		}
	}
}

// TestAccountSummary: AccountSummary returns the scripted values exactly, one
// entry per account in the order the gateway first named each account (which
// is neither sorted nor the managed accounts' order, and includes an account
// the gateway does not manage), for the default tags (not every tag the
// gateway holds) and for an explicit list including a tag beyond the defaults.
func TestAccountSummary(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	connect(t, b, env.Params)
	ctx, cancel := callCtx(t)
	defer cancel()
	sum, err := b.AccountSummary(ctx)
	if err != nil {
		t.Fatalf("AccountSummary(): %v", err)
	}
	if diff := cmp.Diff(ExpectedSummary(s), sum); diff != "" {
		t.Errorf("AccountSummary() (-script +got):\n%s", diff)
	}
	tags := []string{"NetLiquidation", "DayTradesRemaining", "AccountType"}
	want := ExpectedSummary(s, tags...)
	sum, err = b.AccountSummary(ctx, tags...)
	if err != nil {
		t.Fatalf("AccountSummary(%v): %v", tags, err)
	}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("AccountSummary(%v) (-want +got):\n%s", tags, diff)
	}
}

// TestPing: Ping succeeds on a live session, repeatedly, and each Ping makes
// a round trip: the gateway reads a REQ_CURRENT_TIME for each.
func TestPing(t TB, newBroker Factory, f Features) {
	env := newEnv(t, f, StandardScript())
	b := newBroker(t, env)
	connect(t, b, env.Params)
	ctx, cancel := callCtx(t)
	defer cancel()
	for i := range 3 {
		before := env.Gateway.RequestCount(reqCurrentTime)
		if err := b.Ping(ctx); err != nil {
			t.Fatalf("Ping #%d: %v", i+1, err)
		}
		if after := env.Gateway.RequestCount(reqCurrentTime); after <= before {
			t.Errorf("Ping #%d succeeded without a REQ_CURRENT_TIME reaching the gateway", i+1)
		}
	}
}

// TestNotConnected: before Connect and after Disconnect every call fails with
// ErrNotConnected, Disconnect closes every socket to the gateway, and
// Disconnect of a disconnected Broker returns nil.
func TestNotConnected(t TB, newBroker Factory, f Features) {
	env := newEnv(t, f, StandardScript())
	b := newBroker(t, env)
	ctx, cancel := callCtx(t)
	defer cancel()
	check := func(when string) {
		t.Helper()
		cs := calls(b)
		for _, name := range sortedNames(cs) {
			wantIs(t, name+" "+when, cs[name](ctx), broker.ErrNotConnected)
		}
		if err := b.Disconnect(ctx); err != nil {
			t.Errorf("Disconnect %s: %v, want nil", when, err)
		}
	}
	check("before Connect")
	connect(t, b, env.Params)
	disconnect(t, b)
	waitSockets(t, env, 0, "after Disconnect")
	check("after Disconnect")
}

// TestReconnect: a Broker connects again after Disconnect and serves the data.
func TestReconnect(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	for range 3 {
		connect(t, b, env.Params)
		checkData(t, b, s)
		disconnect(t, b)
		waitGatewayIdle(t, env, "after Disconnect")
	}
}

// TestAlreadyConnected: Connect on a connected Broker fails with
// ErrAlreadyConnected and leaves the session working.
func TestAlreadyConnected(t TB, newBroker Factory, f Features) {
	env := newEnv(t, f, StandardScript())
	b := newBroker(t, env)
	connect(t, b, env.Params)
	ctx, cancel := callCtx(t)
	defer cancel()
	_, err := b.Connect(ctx, env.Params)
	wantIs(t, "second Connect", err, broker.ErrAlreadyConnected)
	if err := b.Ping(ctx); err != nil {
		t.Errorf("Ping after the refused second Connect: %v", err)
	}
}

// TestClientIDInUse: a second Broker connecting with the client id of a live
// session fails with ErrClientIDInUse carrying IB code 326; the first session
// is unaffected.
func TestClientIDInUse(t TB, newBroker Factory, f Features) {
	env := newEnv(t, f, StandardScript())
	b1 := newBroker(t, env)
	connect(t, b1, env.Params)
	b2 := newBroker(t, env)
	ctx, cancel := callCtx(t)
	defer cancel()
	_, err := b2.Connect(ctx, env.Params)
	if wantIs(t, "Connect with a client id in use", err, broker.ErrClientIDInUse) {
		if code := broker.IBCode(err); code != broker.IBCodeClientIDInUse {
			t.Errorf("Connect with a client id in use: IB code %d, want %d (error %v)", code, broker.IBCodeClientIDInUse, err)
		}
	}
	wantIs(t, "Ping on the refused Broker", b2.Ping(ctx), broker.ErrNotConnected)
	waitSockets(t, env, 1, "after the refused Connect (the first session's only)")
	if err := b1.Ping(ctx); err != nil {
		t.Errorf("Ping on the first Broker: %v", err)
	}
}

// TestStalledHandshake: against a gateway that never answers the handshake,
// Connect fails with ErrTimeout within Timeout plus slack, a shorter ctx
// deadline wins with context.DeadlineExceeded, and the Broker connects once the
// gateway behaves.
func TestStalledHandshake(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	s.Faults.StallHandshake = true
	env := newEnv(t, f, s)
	b := newBroker(t, env)

	p := env.Params
	p.Timeout = 300 * time.Millisecond
	ctx, cancel := callCtx(t)
	defer cancel()
	start := time.Now()
	_, err := b.Connect(ctx, p)
	elapsed := time.Since(start)
	wantIs(t, "Connect to a stalled gateway", err, broker.ErrTimeout)
	if limit := p.Timeout + f.slack(); elapsed > limit {
		t.Errorf("Connect to a stalled gateway returned after %v, want within %v", elapsed, limit)
	}

	p.Timeout = CallTimeout
	short, cancelShort := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancelShort()
	_, err = b.Connect(short, p)
	wantIs(t, "Connect to a stalled gateway with a short ctx", err, context.DeadlineExceeded)
	waitSockets(t, env, 0, "after the failed Connects")

	s.Faults = fakes.Faults{}
	env.Gateway.SetScript(s)
	connect(t, b, env.Params)
	checkData(t, b, s)
}

// TestCloseBeforeHandshake: a gateway that closes instead of answering the
// handshake makes Connect fail with ErrHandshakeFailed, not hang.
func TestCloseBeforeHandshake(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	s.Faults.CloseBeforeHandshake = true
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	ctx, cancel := callCtx(t)
	defer cancel()
	_, err := b.Connect(ctx, env.Params)
	wantIs(t, "Connect to a gateway closing during the handshake", err, broker.ErrHandshakeFailed)
	wantIs(t, "Ping after a failed Connect", b.Ping(ctx), broker.ErrNotConnected)
	waitSockets(t, env, 0, "after the failed Connect")
}

// TestUnreachable: Connect to a port nobody listens on fails with
// ErrGatewayUnreachable.
func TestUnreachable(t TB, newBroker Factory, f Features) {
	env := newEnv(t, f, StandardScript())
	b := newBroker(t, env)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	p := env.Params
	p.Port = port
	ctx, cancel := callCtx(t)
	defer cancel()
	_, err = b.Connect(ctx, p)
	wantIs(t, "Connect to a closed port", err, broker.ErrGatewayUnreachable)
}

// TestCancellation: a Positions call whose context is cancelled while the
// gateway holds its reply returns within PromptBound with an error matching
// context.Canceled; calls with a context already done fail with its error;
// and the Broker keeps working: the next calls get complete, correct answers.
func TestCancellation(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	connect(t, b, env.Params)

	env.Gateway.Stall()
	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	mark := env.Gateway.RequestCount(reqPositions)
	go func() {
		_, err := b.Positions(ctx)
		done <- result{err, time.Now()}
	}()
	if err := awaitRequest(env, reqPositions, mark+1, done); err != nil {
		cancel()
		env.Gateway.Resume()
		t.Fatalf("REQ_POSITIONS did not reach the gateway: %v", err)
	}
	cancelled := time.Now()
	cancel()
	select {
	case r := <-done:
		wantIs(t, "Positions cancelled mid-call", r.err, context.Canceled)
		if waited := r.at.Sub(cancelled); waited > PromptBound {
			t.Errorf("Positions returned %v after its context was cancelled, want within %v", waited, PromptBound)
		}
		env.Gateway.Resume()
	case <-time.After(2 * PromptBound):
		env.Gateway.Resume()
		t.Errorf("Positions did not return within %v of its context being cancelled: it waits for the gateway", 2*PromptBound)
		select {
		case <-done:
		case <-time.After(CallTimeout):
			t.Fatalf("Positions did not return within %v of the gateway answering", CallTimeout)
		}
	}

	dead, cancelDead := context.WithCancel(t.Context())
	cancelDead()
	cs := calls(b)
	for _, name := range sortedNames(cs) {
		if name == "Accounts" {
			continue // may be answered from memory; no promise either way
		}
		wantIs(t, name+" with a cancelled context", cs[name](dead), context.Canceled)
	}

	ctx2, cancel2 := callCtx(t)
	defer cancel2()
	pos, err := b.Positions(ctx2)
	if err != nil {
		t.Fatalf("Positions after a cancelled call: %v", err)
	}
	if diff := cmp.Diff(s.Positions, pos); diff != "" {
		t.Errorf("Positions after a cancelled call (-script +got):\n%s", diff)
	}
	if err := b.Ping(ctx2); err != nil {
		t.Errorf("Ping after a cancelled call: %v", err)
	}
}

// TestConcurrent: 16 goroutines calling every method at once, AccountSummary
// with different tags, all get complete, correct answers: their own.
func TestConcurrent(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	connect(t, b, env.Params)
	ctx, cancel := callCtx(t)
	defer cancel()
	const n = 16
	errs := make(chan error, n*4)
	var wg sync.WaitGroup
	start := make(chan struct{})
	allTags := append(slices.Clone(broker.DefaultSummaryTags), extraSummaryTags...)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tags := []string{allTags[i%len(allTags)]}
			want := ExpectedSummary(s, tags...)
			for j := range 4 {
				switch (i + j) % 4 {
				case 0:
					pos, err := b.Positions(ctx)
					if err == nil && !cmp.Equal(s.Positions, pos) {
						err = fmt.Errorf("wrong positions:\n%s", cmp.Diff(s.Positions, pos))
					}
					errs <- wrap("Positions", err)
				case 1:
					sum, err := b.AccountSummary(ctx, tags...)
					if err == nil && !cmp.Equal(want, sum) {
						err = fmt.Errorf("wrong summary for %q (-want +got):\n%s", tags, cmp.Diff(want, sum))
					}
					errs <- wrap("AccountSummary", err)
				case 2:
					errs <- wrap("Ping", b.Ping(ctx))
				case 3:
					accts, err := b.Accounts(ctx)
					if err == nil && !cmp.Equal(s.Accounts, accts) {
						err = fmt.Errorf("wrong accounts %v", accts)
					}
					errs <- wrap("Accounts", err)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent call: %v", err)
		}
	}
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// TestGatewayDrop: when the gateway drops the connection, a subscriber receives
// EventConnectionLost and later calls fail with ErrNotConnected instead of
// hanging (or, with Features.Reconnects, succeed again); Connect then works.
func TestGatewayDrop(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	events := subscribe(t, b)
	connect(t, b, env.Params)
	if n := env.Gateway.DropConnections(); n < 1 {
		t.Fatalf("gateway dropped %d connections, want at least the session's", n)
	}
	waitEvent(t, events, "EventConnectionLost", func(e broker.Event) bool { return e.Kind == broker.EventConnectionLost })

	if !afterFault(t, b, f, s, "a gateway drop", broker.ErrNotConnected) {
		return
	}
	ctx, cancel := callCtx(t)
	defer cancel()
	if err := b.Disconnect(ctx); err != nil {
		t.Errorf("Disconnect after a gateway drop: %v", err)
	}
	waitGatewayIdle(t, env, "after the drop")
	connect(t, b, env.Params)
	checkData(t, b, s)
}

// TestNotices: gateway notices reach subscribers: the farm notices after
// connecting as EventNotice, 1100 as EventConnectionLost and 1102 as
// EventConnectionRestored, each with its code; the session stays usable.
func TestNotices(t TB, newBroker Factory, f Features) {
	env := newEnv(t, f, StandardScript())
	b := newBroker(t, env)
	events := subscribe(t, b)
	connect(t, b, env.Params)
	e := waitEvent(t, events, "notice 2104", func(e broker.Event) bool { return e.Code == broker.IBCodeMarketDataFarmOK })
	if e.Kind != broker.EventNotice || e.Message == "" {
		t.Errorf("farm notice: got %+v, want an EventNotice with a message", e)
	}
	for _, c := range []struct {
		code int64
		kind broker.EventKind
	}{
		{broker.IBCodeConnectivityLost, broker.EventConnectionLost},
		{broker.IBCodeRestoredDataMaintained, broker.EventConnectionRestored},
		{broker.IBCodeRestoredDataLost, broker.EventConnectionRestored},
	} {
		if n := env.Gateway.Notify(c.code, ""); n != 1 {
			t.Fatalf("gateway sent notice %d to %d sessions, want 1", c.code, n)
		}
		e := waitEvent(t, events, fmt.Sprintf("event for IB %d", c.code), func(e broker.Event) bool { return e.Code == c.code })
		if e.Kind != c.kind || e.Message != fakes.NoticeText(c.code) || e.Time.IsZero() {
			t.Errorf("IB %d: got event %+v, want kind %v with the gateway's text and a time", c.code, e, c.kind)
		}
	}
	ctx, cancel := callCtx(t)
	defer cancel()
	if err := b.Ping(ctx); err != nil {
		t.Errorf("Ping after notices: %v", err)
	}
}

// TestClose: Close ends the session and the subscriptions; afterwards every
// method fails with ErrClosed, Close again returns nil, and no goroutine the
// Broker started is left.
func TestClose(t TB, newBroker Factory, f Features) {
	before := goleak.IgnoreCurrent()
	env := newEnv(t, f, StandardScript())
	b := newBroker(t, env)
	events := subscribe(t, b)
	connect(t, b, env.Params)
	ctx, cancel := callCtx(t)
	defer cancel()
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	cs := calls(b)
	cs["Connect"] = func(ctx context.Context) error { _, err := b.Connect(ctx, env.Params); return err }
	cs["Disconnect"] = func(ctx context.Context) error { return b.Disconnect(ctx) }
	cs["Subscribe"] = func(ctx context.Context) error { _, err := b.Subscribe(ctx); return err }
	for _, name := range sortedNames(cs) {
		wantIs(t, name+" after Close", cs[name](ctx), broker.ErrClosed)
	}
	drain := time.NewTimer(CallTimeout)
	defer drain.Stop()
	for open := true; open; {
		select {
		case _, open = <-events:
		case <-drain.C:
			t.Fatalf("subscription channel still open %v after Close", CallTimeout)
		}
	}
	waitGatewayIdle(t, env, "after Close")
	waitSockets(t, env, 0, "after Close")
	_ = env.Gateway.Close()
	if err := goleak.Find(before); err != nil {
		t.Errorf("goroutines left after Close: %v", err)
	}
}

// TestChildCrash: when the process behind the Broker dies (Features.Crash), a
// Broker without Reconnects fails every call at once with broker.ErrUnavailable,
// not after a timeout, and Close still succeeds; a Broker with Reconnects serves
// the scripted data again. It skips, saying why, when Features.Crash is nil.
func TestChildCrash(t TB, newBroker Factory, f Features) {
	if f.Crash == nil {
		t.Skipf("Features.Crash is nil: this Broker declares no child process to crash")
	}
	s := StandardScript()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	connect(t, b, env.Params)
	f.Crash(t, b)

	if !afterFault(t, b, f, s, "the child crashed", broker.ErrUnavailable) {
		return
	}
	if err := b.Close(); err != nil && !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Close after the child crashed: %v", err)
	}
}

// afterFault checks b after a fault (what: "a gateway drop", ...). With
// f.Reconnects, Ping must succeed again within CallTimeout and the data must
// be the script's; afterFault then returns false (the case is done). Without,
// Ping and then every call must fail with sentinel, each at once rather than
// after a timeout; afterFault returns true if the case should go on.
func afterFault(t TB, b broker.Broker, f Features, s fakes.Script, what string, sentinel error) bool {
	t.Helper()
	deadline := time.Now().Add(CallTimeout)
	var err error
	for {
		ctx, cancel := callCtx(t)
		err = b.Ping(ctx)
		cancel()
		if f.Reconnects && err == nil || !f.Reconnects && errors.Is(err, sentinel) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f.Reconnects {
		if err != nil {
			t.Fatalf("Ping after %s, with Reconnects: %v", what, err)
		}
		checkData(t, b, s)
		return false
	}
	if !wantIs(t, "Ping after "+what, err, sentinel) {
		return false
	}
	ctx, cancel := callCtx(t)
	defer cancel()
	cs := calls(b)
	for _, name := range sortedNames(cs) {
		start := time.Now()
		wantIs(t, name+" after "+what, cs[name](ctx), sentinel)
		if d := time.Since(start); d > CallTimeout/2 {
			t.Errorf("%s after %s took %v: it must fail at once, not time out", name, what, d)
		}
	}
	return true
}
