// The state machine's fault actions (stall, refuse, drop, notices, crash) and recovery waits.

package conformance

import (
	"errors"
	"fmt"
	"time"

	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// withFault serves the script plus fault f for the duration of fn.
func (m *machine) withFault(fault func(*fakes.Faults), fn func()) {
	s := m.script.Clone()
	fault(&s.Faults)
	m.env.Gateway.SetScript(s)
	defer m.env.Gateway.SetScript(m.script)
	fn()
}

func (m *machine) stall(t *rapid.T) {
	if m.connected || m.dead {
		t.Skip("needs no session and a live worker")
	}
	waitGatewayIdle(t, m.env, "before Connect")
	m.withFault(func(f *fakes.Faults) { f.StallHandshake = true }, func() {
		p := m.env.Params
		p.Timeout = StallTimeout
		ctx, cancel := m.ctx(t)
		defer cancel()
		_, err := m.b.Connect(ctx, p)
		expect(t, "Connect to a gateway stalling the handshake", err, broker.ErrTimeout)
	})
	ctx, cancel := m.ctx(t)
	defer cancel()
	expect(t, "Ping after a stalled Connect", m.b.Ping(ctx), broker.ErrNotConnected)
}

func (m *machine) refuse(t *rapid.T) {
	if m.connected || m.dead {
		t.Skip("needs no session and a live worker")
	}
	waitGatewayIdle(t, m.env, "before Connect")
	m.withFault(func(f *fakes.Faults) { f.RefuseClientIDs = []int64{m.env.ClientID} }, func() {
		ctx, cancel := m.ctx(t)
		defer cancel()
		_, err := m.b.Connect(ctx, m.env.Params)
		expect(t, "Connect with a refused client id", err, broker.ErrClientIDInUse)
		if code := broker.IBCode(err); code != broker.IBCodeClientIDInUse {
			t.Fatalf("Connect with a refused client id: IB code %d, want %d (error %v)", code, broker.IBCodeClientIDInUse, err)
		}
	})
	ctx, cancel := m.ctx(t)
	defer cancel()
	expect(t, "Ping after a refused Connect", m.b.Ping(ctx), broker.ErrNotConnected)
}

func (m *machine) drop(t *rapid.T) {
	mark := m.ev.mark()
	n := m.env.Gateway.DropConnections()
	if !m.connected {
		return
	}
	if n < 1 {
		t.Fatalf("the gateway dropped %d connections while the model holds a session", n)
	}
	m.ev.wait(t, mark, "EventConnectionLost after a gateway drop", func(e broker.Event) bool {
		return e.Kind == broker.EventConnectionLost
	})
	if m.f.Reconnects {
		m.awaitRecovery(t, "after a gateway drop")
		m.quotesLost(t, "after a gateway drop", true)
		return
	}
	ctx, cancel := m.ctx(t)
	defer cancel()
	expect(t, "Ping after a gateway drop", m.b.Ping(ctx), broker.ErrNotConnected)
	m.quotesLost(t, "after a gateway drop", false)
	m.connected = false
}

// awaitRecovery waits until a reconnecting Broker serves again, on a new
// session of the current script.
func (m *machine) awaitRecovery(t *rapid.T, when string) {
	deadline := time.Now().Add(2 * CallTimeout)
	for {
		ctx, cancel := m.ctx(t)
		err := m.b.Ping(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping %s: still failing after %v: %v", when, 2*CallTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.sessionStarted()
}

func (m *machine) notices(t *rapid.T) {
	restored := rapid.SampledFrom([]int64{broker.IBCodeRestoredDataMaintained, broker.IBCodeRestoredDataLost}).Draw(t, "restoredCode")
	for _, c := range []struct {
		code int64
		kind broker.EventKind
	}{{broker.IBCodeConnectivityLost, broker.EventConnectionLost}, {restored, broker.EventConnectionRestored}} {
		mark := m.ev.mark()
		n := m.env.Gateway.Notify(c.code, "")
		want := 0
		if m.connected {
			want = 1
		}
		if n != want {
			t.Fatalf("notice %d reached %d sessions, want %d", c.code, n, want)
		}
		if n == 0 {
			return
		}
		e := m.ev.wait(t, mark, fmt.Sprintf("event for IB %d", c.code), func(e broker.Event) bool { return e.Code == c.code })
		if e.Kind != c.kind || e.Message != fakes.NoticeText(c.code) {
			t.Fatalf("IB %d: got event %+v, want kind %v with the gateway's text", c.code, e, c.kind)
		}
	}
	ctx, cancel := m.ctx(t)
	defer cancel()
	expect(t, "Ping after notices", m.b.Ping(ctx), nil)
	if restored == broker.IBCodeRestoredDataLost { // the gateway forgot its market data lines
		m.quotesLost(t, "after IB 1101", true)
	}
}

func (m *machine) crash(t *rapid.T) {
	if !m.connected {
		t.Skip("needs a session, so that the worker surely runs")
	}
	m.f.Crash(t, m.b)
	if m.f.Reconnects {
		m.awaitRecovery(t, "after the worker crashed")
		m.quotesLost(t, "after the worker crashed", true)
		return
	}
	m.quotesLost(t, "after the worker crashed", false)
	m.dead, m.connected = true, false
	// The crash is noticed asynchronously (the pipe or connection closing);
	// from then on every call must fail at once with ErrUnavailable.
	deadline := time.Now().Add(CallTimeout)
	for {
		ctx, cancel := m.ctx(t)
		err := m.b.Ping(ctx)
		cancel()
		if errors.Is(err, broker.ErrUnavailable) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping %v after the worker crashed: %v, want one matching %v", CallTimeout, err, broker.ErrUnavailable)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
