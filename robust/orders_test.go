package robust

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// newOrderTest connects a robust Broker to traders on a fresh bookGW, on a
// fake clock with no attempt timeout and no periodic health check.
func newOrderTest(t *testing.T, opts ...Option) (*Broker, *traderFarm) {
	t.Helper()
	f := newTraderFarm()
	return newOrderTestOn(t, f, opts...), f
}

func newOrderTestOn(t *testing.T, f *traderFarm, opts ...Option) *Broker {
	t.Helper()
	base := []Option{WithClock(newFakeClock()), WithRand(half), WithAttemptTimeout(0), WithHealthCheck(0, 0, 1)}
	b := New(f.dial, append(base, opts...)...)
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	connect(t, b)
	return b
}

func orderReq(key string) broker.OrderRequest {
	return broker.OrderRequest{Key: key, Contract: stubAAPL, Action: broker.ActionBuy, Quantity: broker.DecimalFromInt(10),
		OrderType: broker.OrderLimit, LimitPrice: broker.MustDecimal("150.25")}
}

func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkOne asserts that the gateway holds exactly one order under key, that
// po names it, and that no order id was ever reused.
func checkOne(t *testing.T, gw *bookGW, key string, po broker.PlacedOrder) {
	t.Helper()
	var found []broker.Order
	for _, o := range gw.snapshot() {
		if o.OrderRef == key {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("the gateway holds %d orders under key %s, want 1: %+v", len(found), key, found)
	}
	if po.OrderID != found[0].OrderID || po.PermID != found[0].PermID || po.Key != key {
		t.Errorf("the caller got %+v, the gateway holds order %d (perm %d)", po, found[0].OrderID, found[0].PermID)
	}
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if gw.reused != 0 {
		t.Errorf("%d order id(s) reused (IB 103)", gw.reused)
	}
}

// TestPlaceOrderExactlyOnceAtEveryFailurePoint: whatever fails, wherever in
// the exchange (before the send, after it before the ack, after the ack
// before the reply reaches robust), and whatever the inner Broker says about
// it, the gateway ends with exactly one order under the key and the caller
// gets its id; the order is re-sent only if it never reached the gateway.
func TestPlaceOrderExactlyOnceAtEveryFailurePoint(t *testing.T) {
	fates := []struct {
		name string
		f    fault
	}{
		{"worker crash (ErrUnavailable)", fault{crash: true, err: fmt.Errorf("%w: worker exited", broker.ErrUnavailable)}},
		{"socket drop (ErrOutcomeUnknown)", fault{drop: true, err: fmt.Errorf("%w: connection reset", broker.ErrOutcomeUnknown)}},
		{"socket drop (ErrNotConnected)", fault{drop: true, err: broker.ErrNotConnected}},
		{"closed inner (ErrClosed)", fault{crash: true, err: broker.ErrClosed}},
		{"timeout, session up (ErrTimeout)", fault{err: fmt.Errorf("%w: no ack", broker.ErrTimeout)}},
		{"unmapped error, session up", fault{err: errors.New("write: broken pipe")}},
	}
	for _, lookupFirst := range []bool{true, false} {
		for _, at := range []faultPoint{beforeSend, afterSend, afterAck} {
			for _, fate := range fates {
				t.Run(fmt.Sprintf("lookup=%v/%v/%s", lookupFirst, at, fate.name), func(t *testing.T) {
					b, f := newOrderTest(t, WithLookupBeforePlace(lookupFirst))
					ft := fate.f
					ft.at = at
					f.gw.script(broker.OpPlaceOrder, ft)
					po, err := b.PlaceOrder(ctx10s(t), orderReq("k1"))
					if err != nil {
						t.Fatalf("PlaceOrder: %v (stats %+v)", err, b.Stats())
					}
					checkOne(t, f.gw, "k1", po)
					wantSends, wantExisting := 1, true
					if at == beforeSend {
						wantSends, wantExisting = 2, false
					}
					if got := f.placeCalls(); got != wantSends {
						t.Errorf("PlaceOrder reached the inner Brokers %d time(s), want %d", got, wantSends)
					}
					if po.Existing != wantExisting {
						t.Errorf("Existing = %v, want %v", po.Existing, wantExisting)
					}
					// The same key again: the remembered order, nothing sent.
					again, err := b.PlaceOrder(ctx10s(t), orderReq("k1"))
					if err != nil || again.OrderID != po.OrderID || !again.Existing {
						t.Errorf("PlaceOrder again = %+v, %v; want order %d, Existing", again, err, po.OrderID)
					}
					if got := f.placeCalls(); got != wantSends {
						t.Errorf("the repeat reached the inner Brokers (%d calls)", got)
					}
				})
			}
		}
	}
}

// TestPlaceOrderSameKeyConcurrently: concurrent PlaceOrders with one key
// share one send, also when that send's outcome is unknown and resolved by a
// lookup on a new worker.
func TestPlaceOrderSameKeyConcurrently(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			b, f := newOrderTest(t)
			release := make(chan struct{})
			ft := fault{at: afterSend, wait: release}
			if crash {
				ft.crash, ft.err = true, fmt.Errorf("%w: worker exited", broker.ErrUnavailable)
			}
			f.gw.script(broker.OpPlaceOrder, ft)
			const n = 8
			var wg sync.WaitGroup
			got := make([]broker.PlacedOrder, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() { got[i], errs[i] = b.PlaceOrder(ctx10s(t), orderReq("same")) })
			}
			eventually(t, "every call joined the first", func() bool {
				b.keys.mu.Lock()
				defer b.keys.mu.Unlock()
				fl := b.keys.flights["same"]
				return fl != nil && fl.waiters == n-1
			})
			close(release)
			wg.Wait()
			fresh := 0
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("call %d: %v", i, errs[i])
				}
				checkOne(t, f.gw, "same", got[i])
				if !got[i].Existing {
					fresh++
				}
			}
			if want := map[bool]int{false: 1, true: 0}[crash]; fresh != want {
				t.Errorf("%d call(s) report a fresh order, want %d", fresh, want)
			}
			if got := f.placeCalls(); got != 1 {
				t.Errorf("PlaceOrder reached the inner Brokers %d time(s), want 1", got)
			}
		})
	}
}

// TestPlaceOrderLookupBeforeFirstSend: a Broker that never saw the key (a
// restarted program) finds the order at the gateway and sends nothing;
// without the lookup it would place a second one, which is what
// WithLookupBeforePlace(false) documents.
func TestPlaceOrderLookupBeforeFirstSend(t *testing.T) {
	f := newTraderFarm()
	first := newOrderTestOn(t, f)
	po, err := first.PlaceOrder(ctx10s(t), orderReq("k"))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := newOrderTestOn(t, f)
	again, err := second.PlaceOrder(ctx10s(t), orderReq("k"))
	if err != nil || again.OrderID != po.OrderID || !again.Existing {
		t.Fatalf("PlaceOrder on a fresh Broker = %+v, %v; want order %d, Existing", again, err, po.OrderID)
	}
	checkOne(t, f.gw, "k", again)

	blind := newOrderTestOn(t, f, WithLookupBeforePlace(false))
	if _, err := blind.PlaceOrder(ctx10s(t), orderReq("k")); err != nil {
		t.Fatal(err)
	}
	if n := f.gw.byKey()["k"]; n != 2 {
		t.Errorf("without the lookup the gateway holds %d orders under the reused key, want 2", n)
	}
}

// TestPlaceOrderFoundFilled: an order that filled while the session was down
// is found through the completed orders (which carry no order id in IB) and
// its execution (which does).
func TestPlaceOrderFoundFilled(t *testing.T) {
	b, f := newOrderTest(t)
	f.gw.script(broker.OpPlaceOrder, fault{at: afterSend, crash: true, err: broker.ErrUnavailable,
		then: func() { f.gw.fill(7, 1) }})
	po, err := b.PlaceOrder(ctx10s(t), orderReq("k"))
	if err != nil {
		t.Fatal(err)
	}
	checkOne(t, f.gw, "k", po)
	if po.Status != broker.StatusFilled || !po.Existing {
		t.Errorf("got %+v, want the filled order, Existing", po)
	}
}

// TestPlaceOrderRefusalsAreFinal: a refusal is returned as is, never re-sent
// nor reconciled.
func TestPlaceOrderRefusalsAreFinal(t *testing.T) {
	for _, refusal := range []error{
		fmt.Errorf("place: %w", &broker.APIError{ReqID: 1, Code: broker.IBCodeOrderRejected, Message: "Order rejected"}),
		broker.ErrReadOnly,
		fmt.Errorf("%w: bad account", broker.ErrInvalidArgument),
		broker.ErrUnsupported,
	} {
		t.Run(refusal.Error(), func(t *testing.T) {
			b, f := newOrderTest(t)
			f.gw.script(broker.OpPlaceOrder, fault{at: beforeSend, err: refusal})
			_, err := b.PlaceOrder(ctx10s(t), orderReq("k"))
			if !errors.Is(err, refusal) || errors.Is(err, broker.ErrOutcomeUnknown) {
				t.Fatalf("got %v, want %v", err, refusal)
			}
			if got, lookups := f.placeCalls(), f.get(t, 0).count(broker.OpOpenOrders); got != 1 || lookups != 1 {
				t.Errorf("%d send(s), %d lookup(s); want 1 of each (the lookup before the send)", got, lookups)
			}
		})
	}
}

// TestPlaceOrderInvalidIsRefusedLocally: a malformed request reaches nothing.
func TestPlaceOrderInvalidIsRefusedLocally(t *testing.T) {
	b, f := newOrderTest(t)
	r := orderReq("has space")
	if _, err := b.PlaceOrder(ctx10s(t), r); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Fatalf("got %v, want ErrInvalidArgument", err)
	}
	if f.get(t, 0).count(broker.OpOpenOrders) != 0 || f.placeCalls() != 0 {
		t.Error("a malformed request reached the inner Broker")
	}
}

// TestPlaceOrderUnknownWhenTheCallerGivesUp: a caller whose context ends
// while the outcome is unknown is told so; the next PlaceOrder of the key
// resolves it by a lookup before sending, even with lookups before the first
// send turned off.
func TestPlaceOrderUnknownWhenTheCallerGivesUp(t *testing.T) {
	b, f := newOrderTest(t, WithLookupBeforePlace(false))
	f.gw.script(broker.OpPlaceOrder, fault{at: afterSend, wait: make(chan struct{})})
	ctx, cancel := context.WithCancel(t.Context())
	done := async(func() (broker.PlacedOrder, error) { return b.PlaceOrder(ctx, orderReq("k")) })
	eventually(t, "the order at the gateway", func() bool { return f.gw.sent() == 1 })
	cancel()
	r := await(t, done)
	if !errors.Is(r.err, broker.ErrOutcomeUnknown) || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("got %v, want ErrOutcomeUnknown and context.Canceled", r.err)
	}
	po, err := b.PlaceOrder(ctx10s(t), orderReq("k"))
	if err != nil || !po.Existing {
		t.Fatalf("PlaceOrder again = %+v, %v; want the order found", po, err)
	}
	checkOne(t, f.gw, "k", po)
	if got := f.placeCalls(); got != 1 {
		t.Errorf("%d send(s), want 1", got)
	}
}

// TestPlaceOrderNotResentUnderAnotherClientID: if the session comes back
// with another client id (IB 326 and NextClientID), the order may be
// invisible there: robust says the outcome is unknown rather than send it.
func TestPlaceOrderNotResentUnderAnotherClientID(t *testing.T) {
	f := newTraderFarm()
	b := newOrderTestOn(t, f, WithClock(SystemClock()), WithBackoff(Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}),
		WithClientIDPolicy(NextClientID(2)))
	f.mu.Lock()
	f.prep = func(t *trader) {
		t.fail(broker.OpConnect, &broker.APIError{ReqID: -1, Code: broker.IBCodeClientIDInUse, Message: "client id is already in use"})
	}
	f.mu.Unlock()
	f.gw.script(broker.OpPlaceOrder, fault{at: afterSend, crash: true, err: broker.ErrUnavailable})
	_, err := b.PlaceOrder(ctx10s(t), orderReq("k"))
	if !errors.Is(err, broker.ErrOutcomeUnknown) {
		t.Fatalf("got %v, want ErrOutcomeUnknown", err)
	}
	if got := f.placeCalls(); got != 1 {
		t.Errorf("%d send(s), want 1", got)
	}
	if n := f.gw.byKey()["k"]; n != 1 {
		t.Errorf("the gateway holds %d orders, want 1", n)
	}
}

// TestPlaceOrderGivesUpAfterTheBudget: sends that never reach the gateway
// are retried up to WithMaxAttempts; then the error says what happened and
// not "unknown", since the lookups found nothing.
func TestPlaceOrderGivesUpAfterTheBudget(t *testing.T) {
	b, f := newOrderTest(t, WithMaxAttempts(3))
	crash := fault{at: beforeSend, crash: true, err: fmt.Errorf("%w: worker exited", broker.ErrUnavailable)}
	f.gw.script(broker.OpPlaceOrder, crash, crash, crash)
	_, err := b.PlaceOrder(ctx10s(t), orderReq("k"))
	if !errors.Is(err, broker.ErrUnavailable) || errors.Is(err, broker.ErrOutcomeUnknown) {
		t.Fatalf("got %v, want ErrUnavailable (resolved: nothing placed)", err)
	}
	if got := f.placeCalls(); got != 3 {
		t.Errorf("%d send(s), want 3", got)
	}
	if n := len(f.gw.snapshot()); n != 0 {
		t.Errorf("the gateway holds %d orders, want 0", n)
	}
}

// TestModifyOrderReconciles: a modification with an unknown outcome is read
// back: applied, it is done; not applied, it is sent once more; on a final
// order, ErrNotFound.
func TestModifyOrderReconciles(t *testing.T) {
	newTerms := orderReq("k")
	newTerms.LimitPrice = broker.MustDecimal("149.50")
	for _, tc := range []struct {
		at        faultPoint
		fill      bool
		wantSends int
		wantErr   error
	}{
		{at: afterSend, wantSends: 1},
		{at: afterAck, wantSends: 1},
		{at: beforeSend, wantSends: 2},
		{at: beforeSend, fill: true, wantSends: 1, wantErr: broker.ErrNotFound},
	} {
		t.Run(fmt.Sprintf("%v/fill=%v", tc.at, tc.fill), func(t *testing.T) {
			b, f := newOrderTest(t)
			po, err := b.PlaceOrder(ctx10s(t), orderReq("k"))
			if err != nil {
				t.Fatal(err)
			}
			ft := fault{at: tc.at, crash: true, err: broker.ErrUnavailable}
			if tc.fill {
				ft.then = func() { f.gw.fill(7, po.OrderID) }
			}
			f.gw.script(broker.OpModifyOrder, ft)
			got, err := b.ModifyOrder(ctx10s(t), po.OrderID, newTerms)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("ModifyOrder: %v, want %v", err, tc.wantErr)
			}
			n := 0
			for i := range f.n() {
				n += f.get(t, i).count(broker.OpModifyOrder)
			}
			if n != tc.wantSends {
				t.Errorf("%d send(s), want %d", n, tc.wantSends)
			}
			if tc.wantErr == nil {
				if got.OrderID != po.OrderID {
					t.Errorf("got %+v, want order %d", got, po.OrderID)
				}
				if o := f.gw.snapshot()[0]; o.LimitPrice.Cmp(newTerms.LimitPrice) != 0 {
					t.Errorf("the gateway's limit is %s, want %s", o.LimitPrice, newTerms.LimitPrice)
				}
			}
		})
	}
}

// TestCancelOrderReconciles: a cancel with an unknown outcome is done if the
// order is final, sent once more if it still works; a refusal at the first
// send is the gateway's answer.
func TestCancelOrderReconciles(t *testing.T) {
	for _, tc := range []struct {
		name      string
		at        faultPoint
		fill      bool
		wantSends int
		wantCode  int64
	}{
		{name: "applied", at: afterSend, wantSends: 1},
		{name: "ack lost", at: afterAck, wantSends: 1},
		{name: "not sent", at: beforeSend, wantSends: 2},
		{name: "filled meanwhile", at: beforeSend, fill: true, wantSends: 1},
		{name: "already filled", fill: true, wantSends: 1, wantCode: 10148},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, f := newOrderTest(t)
			po, err := b.PlaceOrder(ctx10s(t), orderReq("k"))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.at != 0:
				ft := fault{at: tc.at, crash: true, err: broker.ErrUnavailable}
				if tc.fill {
					ft.then = func() { f.gw.fill(7, po.OrderID) }
				}
				f.gw.script(broker.OpCancelOrder, ft)
			case tc.fill:
				f.gw.fill(7, po.OrderID)
			}
			err = b.CancelOrder(ctx10s(t), po.OrderID)
			if broker.IBCode(err) != tc.wantCode || (tc.wantCode == 0 && err != nil) {
				t.Fatalf("CancelOrder: %v, want IB code %d", err, tc.wantCode)
			}
			n := 0
			for i := range f.n() {
				n += f.get(t, i).count(broker.OpCancelOrder)
			}
			if n != tc.wantSends {
				t.Errorf("%d send(s), want %d", n, tc.wantSends)
			}
			if o := f.gw.snapshot()[0]; !broker.TerminalStatus(o.Status) {
				t.Errorf("the order is %s after the cancel", o.Status)
			}
		})
	}
}

// TestCancelUnknownOrderIsNotFound: a cancel whose order is nowhere fails
// with ErrNotFound, also after an unknown outcome.
func TestCancelUnknownOrderIsNotFound(t *testing.T) {
	b, f := newOrderTest(t)
	if err := b.CancelOrder(ctx10s(t), 42); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	f.gw.script(broker.OpCancelOrder, fault{at: beforeSend, crash: true, err: broker.ErrUnavailable})
	if err := b.CancelOrder(ctx10s(t), 42); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("after an unknown outcome: got %v, want ErrNotFound", err)
	}
}

func TestClassifySend(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want sendOutcome
	}{
		{nil, sentDone},
		{broker.ErrOutcomeUnknown, sentUnknown},
		{fmt.Errorf("x: %w", broker.ErrNotConnected), sentUnknown},
		{broker.ErrorFromCode(broker.CodeNotConnected, "socket closed", 504), sentUnknown},
		{broker.ErrUnavailable, sentUnknown},
		{broker.ErrClosed, sentUnknown},
		{broker.ErrTimeout, sentUnknown},
		{context.DeadlineExceeded, sentUnknown},
		{context.Canceled, sentUnknown},
		{broker.ErrProtocol, sentUnknown},
		{errors.New("EOF"), sentUnknown},
		{broker.ErrRejected, sentRefused},
		{broker.ErrReadOnly, sentRefused},
		{broker.ErrInvalidArgument, sentRefused},
		{broker.ErrNotFound, sentRefused},
		{broker.ErrUnsupported, sentRefused},
		{&broker.APIError{Code: 103, Message: "Duplicate order id"}, sentRefused},
	} {
		if got := classifySend(tc.err); got != tc.want {
			t.Errorf("classifySend(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestOrderStreamSurvivesReconnect: the order events channel stays open
// across a dropped session; a gap marks the new session, whose events follow
// on the same channel; the channel closes with the subscriber's context.
func TestOrderStreamSurvivesReconnect(t *testing.T) {
	b, f := newOrderTest(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := b.SubscribeOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func(what string) broker.OrderEvent {
		t.Helper()
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("%s: the channel closed", what)
			}
			return e
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no event within 10s", what)
		}
		panic("unreachable")
	}
	if _, err := b.PlaceOrder(ctx10s(t), orderReq("a")); err != nil {
		t.Fatal(err)
	}
	if e := next("first order"); e.Kind != broker.OrderEventStatus || e.Order.OrderRef != "a" {
		t.Fatalf("got %+v, want a status of order a", e)
	}
	f.get(t, 0).drop()
	if e := next("after the drop"); e.Kind != broker.OrderEventGap || e.Gap != GapSessionRestored {
		t.Fatalf("got %+v, want the gap", e)
	}
	if _, err := b.PlaceOrder(ctx10s(t), orderReq("b")); err != nil {
		t.Fatal(err)
	}
	if e := next("second order"); e.Kind != broker.OrderEventStatus || e.Order.OrderRef != "b" {
		t.Fatalf("got %+v, want a status of order b", e)
	}
	cancel()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the channel is still open after its context ended")
		}
	}
}

// TestOrderStreamClosedByClose: Close ends the stream (and its goroutine)
// even with a subscriber that reads nothing.
func TestOrderStreamClosedByClose(t *testing.T) {
	b, _ := newOrderTest(t)
	ch, err := b.SubscribeOrders(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := b.PlaceOrder(ctx10s(t), orderReq(fmt.Sprintf("k%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for range ch {
		n++
	}
	if n > 3 {
		t.Errorf("%d events for 3 orders", n)
	}
}

// TestPlaceOrderSameKeyOtherTerms: a key reused with other terms is a
// caller's bug: ErrInvalidArgument, nothing sent; the TIF's case is no term.
func TestPlaceOrderSameKeyOtherTerms(t *testing.T) {
	b, f := newOrderTest(t)
	r := orderReq("k")
	r.TIF = "day"
	po, err := b.PlaceOrder(ctx10s(t), r)
	if err != nil {
		t.Fatal(err)
	}
	r.TIF = broker.TIFDay
	if again, err := b.PlaceOrder(ctx10s(t), r); err != nil || again.OrderID != po.OrderID || !again.Existing {
		t.Fatalf("same terms, TIF in capitals: %+v, %v", again, err)
	}
	r.Quantity = broker.DecimalFromInt(11)
	if _, err := b.PlaceOrder(ctx10s(t), r); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Fatalf("other quantity: got %v, want ErrInvalidArgument", err)
	}
	if got := f.placeCalls(); got != 1 {
		t.Errorf("%d send(s), want 1", got)
	}
}

// TestModifyFinalOrderIsNotFound: IB answers new terms for an id whose order
// is final with 103 (an inner Broker of a later session cannot know better);
// robust says ErrNotFound, as the port's contract does, keeping the IB code.
func TestModifyFinalOrderIsNotFound(t *testing.T) {
	b, f := newOrderTest(t)
	dup := &broker.APIError{ReqID: 1, Code: broker.IBCodeDuplicateOrderID, Message: "Duplicate order id"}
	f.gw.script(broker.OpModifyOrder, fault{at: beforeSend, err: dup})
	_, err := b.ModifyOrder(ctx10s(t), 1, orderReq("k"))
	if !errors.Is(err, broker.ErrNotFound) || broker.IBCode(err) != broker.IBCodeDuplicateOrderID {
		t.Fatalf("got %v, want ErrNotFound with IB code 103", err)
	}
}

// TestPlaceOrderAfterModifyTakesTheNewTerms: after a ModifyOrder, the key's
// terms are the new ones: placing the key with them returns the order, with
// the old ones is a key reused with other terms.
func TestPlaceOrderAfterModifyTakesTheNewTerms(t *testing.T) {
	b, f := newOrderTest(t)
	po, err := b.PlaceOrder(ctx10s(t), orderReq("k"))
	if err != nil {
		t.Fatal(err)
	}
	r := orderReq("k")
	r.LimitPrice = broker.MustDecimal("149.00")
	if _, err := b.ModifyOrder(ctx10s(t), po.OrderID, r); err != nil {
		t.Fatal(err)
	}
	if again, err := b.PlaceOrder(ctx10s(t), r); err != nil || again.OrderID != po.OrderID || !again.Existing {
		t.Fatalf("PlaceOrder with the new terms = %+v, %v; want order %d, Existing", again, err, po.OrderID)
	}
	if _, err := b.PlaceOrder(ctx10s(t), orderReq("k")); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Fatalf("PlaceOrder with the old terms: got %v, want ErrInvalidArgument", err)
	}
	if got := f.placeCalls(); got != 1 {
		t.Errorf("%d send(s), want 1", got)
	}
}
