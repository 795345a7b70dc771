package robust

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
)

// TestPlaceOrderProperty: over random batches of PlaceOrders (keys drawn
// from a small pool, so that keys repeat sequentially and concurrently) and
// random faults at every point of the exchange (before the send, after it,
// after the ack) with every fate (the worker dies, the socket drops, the call
// times out or fails oddly with the session up), every call succeeds, the
// gateway holds exactly one order per key, every caller of a key gets that
// order's id, and no order id is used twice.
func TestPlaceOrderProperty(t *testing.T) {
	fates := []fault{
		{crash: true, err: broker.ErrUnavailable},
		{drop: true, err: broker.ErrOutcomeUnknown},
		{drop: true, err: broker.ErrNotConnected},
		{err: broker.ErrTimeout},
		{err: errors.New("write: broken pipe")},
	}
	rapid.Check(t, func(rt *rapid.T) {
		f := newTraderFarm()
		b := New(f.dial, WithClock(newFakeClock()), WithRand(half), WithAttemptTimeout(0), WithHealthCheck(0, 0, 1),
			WithMaxAttempts(8), WithLookupBeforePlace(rapid.Bool().Draw(rt, "lookup")))
		defer func() {
			if err := b.Close(); err != nil {
				rt.Errorf("Close: %v", err)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := b.Connect(ctx, testParams); err != nil {
			rt.Fatalf("Connect: %v", err)
		}
		got := map[string][]broker.PlacedOrder{}
		for batch := range rapid.IntRange(1, 4).Draw(rt, "batches") {
			f.gw.mu.Lock()
			f.gw.faults[broker.OpPlaceOrder] = nil // a batch's faults stay within the budget of its calls
			f.gw.mu.Unlock()
			for i := range rapid.IntRange(0, 3).Draw(rt, fmt.Sprintf("faults %d", batch)) {
				ft := rapid.SampledFrom(fates).Draw(rt, fmt.Sprintf("fate %d.%d", batch, i))
				ft.at = rapid.SampledFrom([]faultPoint{beforeSend, afterSend, afterAck}).Draw(rt, fmt.Sprintf("point %d.%d", batch, i))
				f.gw.script(broker.OpPlaceOrder, ft)
			}
			keys := rapid.SliceOfN(rapid.SampledFrom([]string{"a", "b", "c"}), 1, 4).Draw(rt, fmt.Sprintf("keys %d", batch))
			pos := make([]broker.PlacedOrder, len(keys))
			errs := make([]error, len(keys))
			var wg sync.WaitGroup
			for i, k := range keys {
				wg.Go(func() { pos[i], errs[i] = b.PlaceOrder(ctx, orderReq(k)) })
			}
			wg.Wait()
			for i, k := range keys {
				if errs[i] != nil {
					rt.Fatalf("PlaceOrder(%s): %v", k, errs[i])
				}
				got[k] = append(got[k], pos[i])
			}
		}
		book := map[string][]broker.Order{}
		for _, o := range f.gw.snapshot() {
			book[o.OrderRef] = append(book[o.OrderRef], o)
		}
		for k, pos := range got {
			if len(book[k]) != 1 {
				rt.Fatalf("the gateway holds %d orders under key %s: %+v", len(book[k]), k, book[k])
			}
			for _, po := range pos {
				if po.OrderID != book[k][0].OrderID || po.PermID != book[k][0].PermID {
					rt.Fatalf("a caller of key %s got %+v; the gateway holds order %d", k, po, book[k][0].OrderID)
				}
			}
		}
		f.gw.mu.Lock()
		defer f.gw.mu.Unlock()
		if f.gw.reused != 0 {
			rt.Fatalf("%d order id(s) reused", f.gw.reused)
		}
	})
}
