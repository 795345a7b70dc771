package robust_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/robust/internal/chaostest"
)

// TestAccountStreamSurvivesReconnect: the account updates channel stays open
// when the gateway drops the session; robust subscribes again on the new
// session, so a change the gateway reports afterwards arrives on the same
// channel. Disconnect then closes it.
func TestAccountStreamSurvivesReconnect(t *testing.T) {
	e := newChaos(t, dialInProcess)
	acct := e.Script.Accounts[0]
	ch, err := e.B.SubscribeAccountUpdates(t.Context(), acct)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := e.Script.AccountUpdate(acct)
	awaitState(t, ch, want, "the first download")

	// The gateway's data changes without a push: only a subscription on the
	// next session can deliver the new state.
	s := e.Script.Clone()
	s.Summary[0].Values["NetLiquidation"] = broker.SummaryValue{Value: "424242.42", Currency: "USD"}
	e.GW.SetScript(s)
	before := e.B.Stats().Reconnects
	if n := e.GW.DropConnections(); n != 1 {
		t.Fatalf("dropped %d connections, want 1", n)
	}
	chaostest.Eventually(t, "a reconnect", func() bool { return e.B.Stats().Reconnects != before })
	want, _ = s.AccountUpdate(acct)
	awaitState(t, ch, want, "the reconnect")

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := e.B.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-ctx.Done():
			t.Fatal("the stream is still open after Disconnect")
		}
	}
}

// awaitState reads ch until it delivers want (update time aside).
func awaitState(t *testing.T, ch <-chan broker.AccountUpdate, want broker.AccountUpdate, when string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	var last broker.AccountUpdate
	for {
		select {
		case u, open := <-ch:
			if !open {
				t.Fatalf("stream closed before %s", when)
			}
			want.UpdateTime = u.UpdateTime
			if cmp.Equal(want, u) {
				return
			}
			last = u
		case <-deadline:
			t.Fatalf("no state equal to the script after %s; last (-script +got):\n%s", when, cmp.Diff(want, last))
		}
	}
}
