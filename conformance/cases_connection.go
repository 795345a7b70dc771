// Connection cases: Connect, parameters, reconnects, client-id clashes, stalled and refused handshakes.

package conformance

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

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
	_, env, b := connectedStandard(t, newBroker, f)
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
