// Lifecycle and fault cases: gateway drops, IB notices, Close and worker crashes.

package conformance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

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
	s, _, b := connectedStandard(t, newBroker, f)
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
