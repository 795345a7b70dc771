package robust_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/internal/leakcheck"
	"github.com/brokerkit/brokerkit/robust"
	"github.com/brokerkit/brokerkit/robust/internal/chaostest"
)

type chaosEnv = chaostest.Env

func newChaos(t *testing.T, dial robust.Dialer, opts ...robust.Option) *chaosEnv {
	return chaostest.New(t, dial, opts...)
}

var waitState = chaostest.WaitState

func TestChaosGatewayDrop(t *testing.T) {
	e := newChaos(t, dialInProcess)
	for i := range 3 {
		before := e.B.Stats().Reconnects
		if n := e.GW.DropConnections(); n != 1 {
			t.Fatalf("dropped %d connections, want 1", n)
		}
		e.MustServe(t, "after drop")
		chaostest.Eventually(t, "a reconnect", func() bool { return e.B.Stats().Reconnects != before })
		if got := e.B.Stats().Reconnects; got != before+1 {
			t.Fatalf("drop %d: reconnects %d, want %d", i, got, before+1)
		}
		leakcheck.AssertSockets(t, e.Port, 1) // the new session's socket only; no CLOSE_WAIT left
	}
	e.CloseAndCheck(t)
}

func TestChaosIBConnectivity1100Then1102(t *testing.T) {
	e := newChaos(t, dialInProcess)
	events, err := e.B.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	e.GW.Notify(broker.IBCodeConnectivityLost, "")
	waitState(t, e.B, robust.StateReconnecting)
	e.MustServe(t, "during 1100")
	e.GW.Notify(broker.IBCodeRestoredDataMaintained, "")
	waitState(t, e.B, robust.StateConnected)
	var codes []int64
	for len(codes) < 2 {
		select {
		case ev := <-events:
			if ev.Code == broker.IBCodeConnectivityLost || ev.Code == broker.IBCodeRestoredDataMaintained {
				codes = append(codes, ev.Code)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far %v", codes)
		}
	}
	if diff := cmp.Diff([]int64{broker.IBCodeConnectivityLost, broker.IBCodeRestoredDataMaintained}, codes); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
	e.MustServe(t, "after 1102")
	if st := e.B.Stats(); st.Reconnects != 0 || st.Restarts != 0 {
		t.Errorf("1100/1102 touched the socket: %+v", st)
	}
	leakcheck.AssertSockets(t, e.Port, 1)
	e.CloseAndCheck(t)
}

func TestChaosHalfOpenSocket(t *testing.T) {
	e := newChaos(t, dialInProcess)
	s := e.Script
	s.Faults.HalfOpenAfterRequests = 3
	e.GW.SetScript(s)
	e.GW.DropConnections() // the next session goes half-open after 3 requests
	e.MustServe(t, "after drop")
	before := e.B.Stats().Restarts
	// pings stop being answered: the health monitor must replace the session
	e.GW.SetScript(e.Script)
	chaostest.Eventually(t, "the half-open session replaced", func() bool { return e.B.Stats().Restarts != before })
	e.MustServe(t, "after half-open")
	leakcheck.AssertSockets(t, e.Port, 1)
	e.CloseAndCheck(t)
}

func TestChaosStalledHandshake(t *testing.T) {
	chaostest.StalledHandshake(t, "in-process", dialInProcess)
}

func TestChaosClientIDInUseStorm(t *testing.T) {
	e := newChaos(t, dialInProcess)
	refusing := e.Script
	refusing.Faults.RefuseClientIDs = []int64{7}
	e.GW.SetScript(refusing)
	e.GW.DropConnections()
	const storm = 700 * time.Millisecond
	time.Sleep(storm)
	attempts := len(e.GW.Connections())
	e.GW.SetScript(e.Script)
	e.MustServe(t, "after the storm")
	if st := e.B.Stats(); st.ClientID != 7 {
		t.Errorf("client id %d, want 7 (SameClientID)", st.ClientID)
	}
	// each refusal is followed by a backoff: no tight loop. The bound is loose (the
	// backoff is capped at 100ms, jittered from 0) and only catches a spin.
	if attempts > 60 {
		t.Errorf("%d connection attempts in %v of 326 refusals: a tight loop", attempts, storm)
	}
	leakcheck.AssertSockets(t, e.Port, 1)
	e.CloseAndCheck(t)
}

func TestChaosClientIDInUseMovesID(t *testing.T) {
	e := newChaos(t, dialInProcess, robust.WithClientIDPolicy(robust.NextClientID(3)))
	refusing := e.Script
	refusing.Faults.RefuseClientIDs = []int64{7}
	e.GW.SetScript(refusing)
	e.GW.DropConnections()
	e.MustServe(t, "while 7 is refused")
	if st := e.B.Stats(); st.ClientID != 8 {
		t.Errorf("client id %d, want 8", st.ClientID)
	}
	if diff := cmp.Diff([]int64{8}, e.GW.LiveClientIDs()); diff != "" {
		t.Errorf("live client ids (-want +got):\n%s", diff)
	}
	e.CloseAndCheck(t)
}

func TestChaosGatewayRestartSamePort(t *testing.T) {
	e := newChaos(t, dialInProcess)
	addr := e.GW.Addr()
	var served, failed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a caller that keeps calling through the outage
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := e.B.Accounts(ctx)
			cancel()
			if err != nil {
				failed.Add(1)
			} else {
				served.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if err := e.GW.Close(); err != nil {
		t.Fatal(err)
	}
	// The gateway is away; reconnects are refused: the Broker notices and says so.
	waitState(t, e.B, robust.StateReconnecting)
	gw, err := fakes.NewGateway(e.Script, fakes.WithAddr(addr))
	if err != nil {
		t.Fatalf("restart gateway on %s: %v", addr, err)
	}
	e.GW = gw
	waitState(t, e.B, robust.StateConnected)
	e.MustServe(t, "after the gateway restart")
	close(stop)
	<-done
	if served.Load() == 0 {
		t.Error("the caller was never served")
	}
	t.Logf("during the restart: %d calls served, %d failed (each after its retries)", served.Load(), failed.Load())
	leakcheck.AssertSockets(t, e.Port, 1)
	e.CloseAndCheck(t)
}

func TestChaosDisconnectLeavesNoSocket(t *testing.T) {
	e := newChaos(t, dialInProcess)
	if err := e.B.Disconnect(context.Background()); err != nil {
		t.Fatal(err)
	}
	leakcheck.AssertSockets(t, e.Port, 0)
	e.GW.DropConnections()
	time.Sleep(50 * time.Millisecond)
	if _, err := e.B.Accounts(context.Background()); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("after Disconnect: %v", err)
	}
	leakcheck.AssertSockets(t, e.Port, 0)
	e.CloseAndCheck(t)
}
