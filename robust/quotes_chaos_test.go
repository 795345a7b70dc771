package robust_test

import (
	"sync/atomic"
	"testing"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/robust/internal/chaostest"
)

// TestChaosQuoteStream: over the in-process adapter and the fake gateway, a
// quote stream goes on by itself after a gateway drop and after IB 1101, with
// a gap marker first and no value of the old subscription after it; 1100 then
// 1102 (data maintained) changes nothing, and robust does not subscribe again.
func TestChaosQuoteStream(t *testing.T) {
	for _, c := range []struct {
		name    string
		lose    func(e *chaostest.Env)
		wantGap bool
		subs    func(n int64) bool // the inner subscriptions robust made
	}{
		{"gateway drop", func(e *chaostest.Env) {
			if n := e.GW.DropConnections(); n != 1 {
				t.Errorf("dropped %d connections, want 1", n)
			}
		}, true, func(n int64) bool { return n == 2 }},
		{"IB 1101", func(e *chaostest.Env) { e.GW.Notify(broker.IBCodeRestoredDataLost, "") }, true,
			func(n int64) bool { return n == 2 }},
		{"IB 1100 then 1102", func(e *chaostest.Env) {
			e.GW.Notify(broker.IBCodeConnectivityLost, "")
			e.GW.Notify(broker.IBCodeRestoredDataMaintained, "")
		}, false, func(n int64) bool { return n == 1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var n atomic.Int64
			e := newChaos(t, chaostest.CountQuoteSubscriptions(dialInProcess, &n))
			chaostest.QuoteStream(t, e, func() { c.lose(e) }, c.wantGap)
			if !c.subs(n.Load()) {
				t.Errorf("robust subscribed %d times", n.Load())
			}
			if c.name != "gateway drop" {
				if st := e.B.Stats(); st.Reconnects != 0 {
					t.Errorf("the event touched the session: %+v", st)
				}
			}
			e.CloseAndCheck(t)
		})
	}
}
