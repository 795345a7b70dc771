package ibkr_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/scmhub/ibapi"
	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/internal/leakcheck"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newGateway(t *testing.T, s fakes.Script) *fakes.Gateway {
	t.Helper()
	g, err := fakes.NewGateway(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func newAdapter(t *testing.T) *ibkr.Adapter {
	a := ibkr.New(ibkr.WithLogger(testLogger(t)))
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func params(g *fakes.Gateway) broker.ConnectParams {
	return broker.ConnectParams{Host: g.Host(), Port: g.Port(), ClientID: 11, Timeout: 2 * time.Second}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitIdle(t *testing.T, g *fakes.Gateway) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); len(g.LiveClientIDs()) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gateway still has sessions %v", g.LiveClientIDs())
		}
	}
}

// TestGatewayDropLeavesNoSocket: after the gateway drops the session and the
// adapter has noticed, this process holds no socket to the gateway, in
// CLOSE_WAIT or any other state.
func TestGatewayDropLeavesNoSocket(t *testing.T) {
	if !leakcheck.Available() {
		t.Skip("needs /proc (Linux)")
	}
	g := newGateway(t, fakes.DefaultScript())
	a := newAdapter(t)
	ctx := ctxFor(t)
	events, err := a.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Connect(ctx, params(g)); err != nil {
		t.Fatal(err)
	}
	if got := leakcheck.OwnSocketStates(g.Port()); len(got) != 1 || got[0] != "01" {
		t.Fatalf("while connected: sockets to the gateway %v, want one ESTABLISHED (01)", got)
	}
	g.DropConnections()
	for e := range events {
		if e.Kind == broker.EventConnectionLost {
			break
		}
	}
	if err := a.Ping(ctx); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Ping after the drop: %v, want ErrNotConnected", err)
	}
	if err := a.Disconnect(ctx); err != nil { // waits for scmhub's teardown
		t.Fatal(err)
	}
	if got := leakcheck.OwnSocketStates(g.Port()); len(got) != 0 {
		t.Errorf("after the drop: sockets to the gateway %v, want none (08 is CLOSE_WAIT)", got)
	}
}

// TestFailedHandshakesLeaveNothing: a stalled handshake (timeout), a gateway
// closing during the handshake and a short or empty handshake reply fail
// Connect with a sentinel and leave no socket and no goroutine.
func TestFailedHandshakesLeaveNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults fakes.Faults
		want   error
	}{
		{"stall", fakes.Faults{StallHandshake: true}, broker.ErrTimeout},
		{"close", fakes.Faults{CloseBeforeHandshake: true}, broker.ErrHandshakeFailed},
		// scmhub indexes the reply's fields unchecked: these panicked in the
		// goroutine running its Connect and killed the process.
		{"short reply", fakes.Faults{ShortHandshake: true}, broker.ErrHandshakeFailed},
		{"empty reply", fakes.Faults{EmptyHandshake: true}, broker.ErrHandshakeFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			s := fakes.DefaultScript()
			s.Faults = tc.faults
			g := newGateway(t, s)
			a := ibkr.New(ibkr.WithLogger(testLogger(t)))
			p := params(g)
			p.Timeout = 200 * time.Millisecond
			_, err := a.Connect(ctxFor(t), p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Connect: %v, want %v", err, tc.want)
			}
			if leakcheck.Available() {
				if got := leakcheck.OwnSocketStates(g.Port()); len(got) != 0 {
					t.Errorf("after the failed Connect: sockets to the gateway %v, want none", got)
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			if err := goleak.Find(before); err != nil {
				t.Errorf("goroutines left: %v", err)
			}
		})
	}
}

// TestIPv6HostUnsupported: an IPv6 literal is refused as unsupported (scmhub
// dials tcp4 only), not reported as an unreachable gateway, even with a gateway
// listening on ::1.
func TestIPv6HostUnsupported(t *testing.T) {
	g, err := fakes.NewGateway(fakes.DefaultScript(), fakes.WithAddr("[::1]:0"))
	port := 4002
	if err == nil { // the host may have no IPv6 loopback; the error is the same then
		t.Cleanup(func() { _ = g.Close() })
		port = g.Port()
	}
	a := newAdapter(t)
	for _, host := range []string{"::1", "[::1]"} {
		_, err := a.Connect(ctxFor(t), broker.ConnectParams{Host: host, Port: port, ClientID: 1, Timeout: time.Second})
		if !errors.Is(err, broker.ErrUnsupported) || errors.Is(err, broker.ErrGatewayUnreachable) {
			t.Errorf("Connect to %s: %v, want ErrUnsupported and not ErrGatewayUnreachable", host, err)
		}
	}
}

// TestMalformedMessage: a message scmhub cannot decode ends the session (scmhub
// recovers its decoder's panic); the call waiting fails with ErrNotConnected and
// ErrProtocol, subscribers see the loss, nothing panics, and a new Connect works.
func TestMalformedMessage(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.MalformedAfterRequests = 2 // 1 is Connect's REQ_CURRENT_TIME; 2 is REQ_POSITIONS
	g := newGateway(t, s)
	a := newAdapter(t)
	ctx := ctxFor(t)
	events, err := a.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Connect(ctx, params(g)); err != nil {
		t.Fatal(err)
	}
	_, err = a.Positions(ctx)
	if !errors.Is(err, broker.ErrNotConnected) || !errors.Is(err, broker.ErrProtocol) {
		t.Fatalf("Positions answered with a malformed row: %v, want ErrNotConnected and ErrProtocol", err)
	}
	lost := false
	for e := range events {
		if lost = e.Kind == broker.EventConnectionLost; lost {
			break
		}
	}
	if err := a.Ping(ctx); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Ping after the malformed message: %v", err)
	}

	// An unsolicited malformed message on an idle session does the same.
	s.Faults = fakes.Faults{}
	g.SetScript(s)
	if err := a.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, g)
	if _, err := a.Connect(ctx, params(g)); err != nil {
		t.Fatalf("Connect after a malformed message: %v", err)
	}
	if n := g.SendRaw("9", "1", "1.5"); n != 1 { // NEXT_VALID_ID with a non-integer id
		t.Fatalf("SendRaw reached %d sessions", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for err = a.Ping(ctx); err == nil && time.Now().Before(deadline); err = a.Ping(ctx) {
		time.Sleep(5 * time.Millisecond)
	}
	if !errors.Is(err, broker.ErrNotConnected) || !errors.Is(err, broker.ErrProtocol) {
		t.Errorf("Ping after an unsolicited malformed message: %v, want ErrNotConnected and ErrProtocol", err)
	}
}

// TestMalformedDuringConnect: a malformed answer to Connect's first round trip
// fails Connect with ErrHandshakeFailed.
func TestMalformedDuringConnect(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.MalformedAfterRequests = 1
	g := newGateway(t, s)
	a := newAdapter(t)
	_, err := a.Connect(ctxFor(t), params(g))
	if !errors.Is(err, broker.ErrHandshakeFailed) {
		t.Fatalf("Connect: %v, want ErrHandshakeFailed", err)
	}
}

// TestSummaryErrorFromGateway: an ERR_MSG for the summary's request id fails
// that call with the gateway's *APIError.
func TestSummaryErrorFromGateway(t *testing.T) {
	const firstSummaryID = "1048577" // a fresh Adapter's first request id (1<<20 + 1)
	s := fakes.DefaultScript()
	s.Faults.MalformedAfterRequests = 2 // request 1 is Connect's round trip, 2 the summary
	// ERR_MSG in its text layout from server version 194 (sent as text, with a raw id, at the default 225).
	s.Faults.MalformedFields = []string{"4", firstSummaryID, "322", "Maximum number of account summary requests exceeded", "", "0"}
	g := newGateway(t, s)
	a := newAdapter(t)
	ctx := ctxFor(t)
	if _, err := a.Connect(ctx, params(g)); err != nil {
		t.Fatal(err)
	}
	_, err := a.AccountSummary(ctx, "NetLiquidation")
	var api *broker.APIError
	if !errors.As(err, &api) || api.Code != 322 || strconv.FormatInt(api.ReqID, 10) != firstSummaryID {
		t.Fatalf("AccountSummary: %v, want the gateway's APIError 322 for request %s", err, firstSummaryID)
	}
	if got := requestField(g, 62, 2); got != firstSummaryID {
		t.Errorf("REQ_ACCOUNT_SUMMARY went out with id %q, want %s", got, firstSummaryID)
	}
	if err := a.Ping(ctx); err != nil {
		t.Errorf("Ping after a failed summary: %v", err)
	}
}

// requestField returns field i of the first message with this id any client sent.
func requestField(g *fakes.Gateway, msgID, i int) string {
	for _, c := range g.Connections() {
		for _, r := range c.Requests {
			if r.ID == msgID && len(r.Fields) > i {
				return r.Fields[i]
			}
		}
	}
	return ""
}

func TestAs(t *testing.T) {
	g := newGateway(t, fakes.DefaultScript())
	a := newAdapter(t)
	var ec *ibapi.EClient
	if a.As(&ec) {
		t.Error("As before Connect = true")
	}
	if _, err := a.Connect(ctxFor(t), params(g)); err != nil {
		t.Fatal(err)
	}
	if !a.As(&ec) || ec == nil || !ec.IsConnected() {
		t.Fatalf("As(**ibapi.EClient) while connected: client %v", ec)
	}
	var wrong *int
	if a.As(&wrong) || a.As(nil) {
		t.Error("As with a foreign target = true")
	}
}

func TestConnectWhileClosing(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.StallHandshake = true
	g := newGateway(t, s)
	a := ibkr.New()
	p := params(g)
	p.Timeout = time.Hour
	done := make(chan error, 1)
	go func() { _, err := a.Connect(ctxFor(t), p); done <- err }()
	for deadline := time.Now().Add(10 * time.Second); len(g.Connections()) < 2; { // the probe, then scmhub's connection
		if time.Now().After(deadline) {
			t.Fatalf("the gateway accepted %d connections, want 2", len(g.Connections()))
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, broker.ErrClosed) {
			t.Errorf("Connect interrupted by Close: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not abort the stalled Connect")
	}
}

func BenchmarkPing(b *testing.B) {
	g, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	a := ibkr.New()
	defer a.Close()
	ctx := context.Background()
	if _, err := a.Connect(ctx, broker.ConnectParams{Host: g.Host(), Port: g.Port(), ClientID: 1, Timeout: 5 * time.Second}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := a.Ping(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPositions(b *testing.B) {
	s := fakes.DefaultScript()
	for i := range 100 {
		p := s.Positions[i%len(s.Positions)]
		p.Contract.ConID = int64(1000 + i)
		s.Positions = append(s.Positions, p)
	}
	g, err := fakes.NewGateway(s)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	a := ibkr.New()
	defer a.Close()
	ctx := context.Background()
	if _, err := a.Connect(ctx, broker.ConnectParams{Host: g.Host(), Port: g.Port(), ClientID: 1, Timeout: 5 * time.Second}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		ps, err := a.Positions(ctx)
		if err != nil || len(ps) != len(s.Positions) {
			b.Fatal(len(ps), err)
		}
	}
	b.ReportMetric(float64(len(s.Positions)), "rows/op")
}

func ExampleAdapter_As() {
	g, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		panic(err)
	}
	defer g.Close()
	a := ibkr.New()
	defer a.Close()
	ctx := context.Background()
	if _, err := a.Connect(ctx, broker.ConnectParams{Host: g.Host(), Port: g.Port(), ClientID: 1}); err != nil {
		panic(err)
	}
	var ec *ibapi.EClient
	if a.As(&ec) {
		fmt.Println("server version", ec.ServerVersion())
	}
	// Output: server version 225
}
