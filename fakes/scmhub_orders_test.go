//go:build !race

// Issue 17 part 4: the order simulator, driven by scmhub/ibapi at a matrix of
// server versions (text PLACE_ORDER below 203, protobuf from it). See
// scmhub_test.go for why these tests are left out of -race builds.

package fakes_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scmhub/ibapi"
	"github.com/scmhub/ibapi/protobuf"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// orderRecorder writes each order callback as one line on ev, so that tests
// can wait for them in order.
type orderRecorder struct {
	ibapi.Wrapper
	mu     sync.Mutex
	protos map[string]bool // scmhub's *ProtoBuf callbacks that ran
	ev     chan string
	errs   chan ibError
	next   chan int64
}

func newOrderRecorder() *orderRecorder {
	return &orderRecorder{protos: map[string]bool{}, ev: make(chan string, 256), errs: make(chan ibError, 64), next: make(chan int64, 16)}
}

func (r *orderRecorder) NextValidID(id int64) { put(r.next, id) }
func (r *orderRecorder) Error(reqID, _ int64, code int64, msg, _ string) {
	if code != fakes.CodeMarketDataFarmOK && code != fakes.CodeHistDataFarmOK && code != fakes.CodeSecDefDataFarmOK {
		put(r.errs, ibError{ReqID: reqID, Code: code, Msg: msg})
	}
}
func (r *orderRecorder) OpenOrder(id int64, c *ibapi.Contract, o *ibapi.Order, s *ibapi.OrderState) {
	put(r.ev, fmt.Sprintf("open %d %s %s %s %s lmt=%s aux=%s tif=%s acct=%s ref=%s client=%d %s", id, c.Symbol,
		o.Action, o.TotalQuantity.String(), o.OrderType, unset(o.LmtPrice), unset(o.AuxPrice), o.TIF, o.Account,
		o.OrderRef, o.ClientID, s.Status))
}
func (r *orderRecorder) OrderStatus(id int64, status string, filled, remaining ibapi.Decimal, avg float64, _, _ int64,
	last float64, client int64, _ string, _ float64) {
	put(r.ev, fmt.Sprintf("status %d %s filled=%s remaining=%s avg=%s last=%s client=%d", id, status, filled.String(),
		remaining.String(), fl(avg), fl(last), client))
}
func (r *orderRecorder) ExecDetails(reqID int64, c *ibapi.Contract, e *ibapi.Execution) {
	put(r.ev, fmt.Sprintf("exec %d %s order=%d %s %s@%s cum=%s ref=%s", reqID, c.Symbol, e.OrderID, e.Side,
		e.Shares.String(), fl(e.Price), e.CumQty.String(), e.OrderRef))
}
func (r *orderRecorder) CommissionAndFeesReport(c ibapi.CommissionAndFeesReport) {
	put(r.ev, fmt.Sprintf("commission %s %s", fl(c.CommissionAndFees), c.Currency))
}
func (r *orderRecorder) CompletedOrder(c *ibapi.Contract, o *ibapi.Order, s *ibapi.OrderState) {
	put(r.ev, fmt.Sprintf("completed %s %s %s %s filled=%s ref=%s %s", c.Symbol, o.Action, o.TotalQuantity.String(),
		o.OrderType, o.FilledQuantity.String(), o.OrderRef, s.Status))
}
func (r *orderRecorder) Position(account string, c *ibapi.Contract, pos ibapi.Decimal, avg float64) {
	put(r.ev, fmt.Sprintf("position %s %s %s avg=%s", account, c.Symbol, pos.String(), fl(avg)))
}
func (r *orderRecorder) ConnectionClosed()          { put(r.ev, "closed") }
func (r *orderRecorder) PositionEnd()               { put(r.ev, "positions end") }
func (r *orderRecorder) OpenOrderEnd()              { put(r.ev, "open end") }
func (r *orderRecorder) CompletedOrdersEnd()        { put(r.ev, "completed end") }
func (r *orderRecorder) ExecDetailsEnd(reqID int64) { put(r.ev, fmt.Sprint("executions end ", reqID)) }

func (r *orderRecorder) sawProto(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.protos[name] = true
}
func (r *orderRecorder) OpenOrderProtoBuf(*protobuf.OpenOrder)     { r.sawProto("OPEN_ORDER") }
func (r *orderRecorder) OrderStatusProtoBuf(*protobuf.OrderStatus) { r.sawProto("ORDER_STATUS") }
func (r *orderRecorder) CompletedOrderProtoBuf(*protobuf.CompletedOrder) {
	r.sawProto("COMPLETED_ORDER")
}

// checkOrderProtos: OPEN_ORDER and ORDER_STATUS come as protobuf from 203,
// COMPLETED_ORDER from 204, as text below.
func (r *orderRecorder) checkOrderProtos(t *testing.T, v int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, since := range map[string]int{"OPEN_ORDER": 203, "ORDER_STATUS": 203, "COMPLETED_ORDER": 204} {
		if r.protos[name] != (v >= since) {
			t.Errorf("v%d: %s came as protobuf: %v, want %v", v, name, r.protos[name], v >= since)
		}
	}
}

func unset(f float64) string {
	if f == ibapi.UNSET_FLOAT {
		return "-"
	}
	return fl(f)
}

// expectEvents waits for exactly want, in order, failing on an error callback.
func (r *orderRecorder) expectEvents(t *testing.T, want ...string) {
	t.Helper()
	for i, w := range want {
		select {
		case got := <-r.ev:
			if got != w {
				t.Fatalf("event %d: got\n  %q\nwant\n  %q", i, got, w)
			}
		case e := <-r.errs:
			t.Fatalf("error %+v while waiting for %q", e, w)
		case <-time.After(hangLimit):
			t.Fatalf("timed out waiting for %q", w)
		}
	}
}

func (r *orderRecorder) expectError(t *testing.T, id, code int64) {
	t.Helper()
	select {
	case e := <-r.errs:
		if e.ReqID != id || e.Code != code {
			t.Fatalf("error %+v, want %d for order %d", e, code, id)
		}
	case ev := <-r.ev:
		t.Fatalf("got %q, want error %d for order %d", ev, code, id)
	case <-time.After(hangLimit):
		t.Fatalf("timed out waiting for error %d", code)
	}
}

func stock(symbol string) *ibapi.Contract {
	c := ibapi.NewContract()
	c.Symbol, c.SecType, c.Exchange, c.Currency = symbol, "STK", "SMART", "USD"
	return c
}

func order(action, qty, typ string, lmt float64, ref string) *ibapi.Order {
	o := ibapi.NewOrder()
	o.Action, o.TotalQuantity, o.OrderType, o.OrderRef = action, ibapi.StringToDecimal(qty), typ, ref
	if typ == "LMT" {
		o.LmtPrice = lmt
	}
	return o
}

// orderVersions: a version field on OPEN_ORDER and ORDER_STATUS (130), ib_async's
// newest (178), the newest text version (193), raw ids with text orders (201),
// protobuf orders (203), protobuf order lists (204) and the newest.
var orderVersions = []int{130, 178, fakes.TextServerVersion, fakes.VersionRawIDs, fakes.VersionProtobufOrders, 204,
	fakes.DefaultServerVersion}

func TestScmhubOrders(t *testing.T) {
	for _, v := range orderVersions {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) { testOrders(t, v) })
	}
}

func testOrders(t *testing.T, v int) {
	g := startGateway(t, orderScript(v))
	r := newOrderRecorder()
	c := ibapi.NewEClient(r)
	if err := c.Connect(g.Host(), g.Port(), 1); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect() })
	id := recv(t, r.next, "NextValidID")
	const a = "DU1234567"

	// A market order fills at once at the quote.
	c.PlaceOrder(id, stock("AAPL"), order("BUY", "10", "MKT", 0, "k1"))
	r.expectEvents(t,
		fmt.Sprintf("open %d AAPL BUY 10 MKT lmt=- aux=- tif=DAY acct=%s ref=k1 client=1 Submitted", id, a),
		fmt.Sprintf("status %d Submitted filled=0 remaining=10 avg=0 last=0 client=1", id),
		fmt.Sprintf("exec -1 AAPL order=%d BOT 10@190.5 cum=10 ref=k1", id),
		"commission 1 USD",
		fmt.Sprintf("open %d AAPL BUY 10 MKT lmt=- aux=- tif=DAY acct=%s ref=k1 client=1 Filled", id, a),
		fmt.Sprintf("status %d Filled filled=10 remaining=0 avg=190.5 last=190.5 client=1", id))

	// A limit order rests, fills in parts of the scripted size when the price
	// crosses, and is modified in between.
	lim := id + 1
	c.PlaceOrder(lim, stock("MSFT"), order("BUY", "100", "LMT", 395, "k2"))
	r.expectEvents(t,
		fmt.Sprintf("open %d MSFT BUY 100 LMT lmt=395 aux=- tif=DAY acct=%s ref=k2 client=1 Submitted", lim, a),
		fmt.Sprintf("status %d Submitted filled=0 remaining=100 avg=0 last=0 client=1", lim))
	if n := g.SetPrice("MSFT", broker.MustDecimal("394.5")); n != 1 {
		t.Fatalf("SetPrice made %d executions, want 1", n)
	}
	r.expectEvents(t,
		fmt.Sprintf("exec -1 MSFT order=%d BOT 30@394.5 cum=30 ref=k2", lim),
		"commission 0.5 USD",
		fmt.Sprintf("open %d MSFT BUY 100 LMT lmt=395 aux=- tif=DAY acct=%s ref=k2 client=1 Submitted", lim, a),
		fmt.Sprintf("status %d Submitted filled=30 remaining=70 avg=394.5 last=394.5 client=1", lim))
	c.PlaceOrder(lim, stock("MSFT"), order("BUY", "60", "LMT", 394, "k2"))
	r.expectEvents(t,
		fmt.Sprintf("open %d MSFT BUY 60 LMT lmt=394 aux=- tif=DAY acct=%s ref=k2 client=1 Submitted", lim, a),
		fmt.Sprintf("status %d Submitted filled=30 remaining=30 avg=394.5 last=394.5 client=1", lim))
	g.SetPrice("MSFT", broker.MustDecimal("393.5"))
	r.expectEvents(t,
		fmt.Sprintf("exec -1 MSFT order=%d BOT 30@393.5 cum=60 ref=k2", lim),
		"commission 0.5 USD",
		fmt.Sprintf("open %d MSFT BUY 60 LMT lmt=394 aux=- tif=DAY acct=%s ref=k2 client=1 Filled", lim, a),
		fmt.Sprintf("status %d Filled filled=60 remaining=0 avg=394 last=393.5 client=1", lim))

	// A resting order is cancelled.
	cx := id + 2
	c.PlaceOrder(cx, stock("AAPL"), order("SELL", "5", "LMT", 250, "k3"))
	r.expectEvents(t,
		fmt.Sprintf("open %d AAPL SELL 5 LMT lmt=250 aux=- tif=DAY acct=%s ref=k3 client=1 Submitted", cx, a),
		fmt.Sprintf("status %d Submitted filled=0 remaining=5 avg=0 last=0 client=1", cx))
	c.ReqOpenOrders()
	r.expectEvents(t,
		fmt.Sprintf("open %d AAPL SELL 5 LMT lmt=250 aux=- tif=DAY acct=%s ref=k3 client=1 Submitted", cx, a),
		fmt.Sprintf("status %d Submitted filled=0 remaining=5 avg=0 last=0 client=1", cx),
		"open end")
	c.CancelOrder(cx, ibapi.NewOrderCancel())
	r.expectEvents(t, fmt.Sprintf("status %d Cancelled filled=0 remaining=0 avg=0 last=0 client=1", cx))
	r.expectError(t, cx, fakes.CodeOrderCancelled)

	// Rejects, with IB's codes.
	c.PlaceOrder(id+3, stock("NOPE"), order("BUY", "1", "MKT", 0, "bad"))
	r.expectError(t, id+3, fakes.CodeOrderRejected)
	c.PlaceOrder(id+4, stock("AAPL"), order("BUY", "0", "MKT", 0, "zero"))
	r.expectError(t, id+4, fakes.CodeOrderRejected)
	c.PlaceOrder(id+5, stock("AAPL"), order("BUY", "1", "LMT", 190.005, "tick"))
	r.expectError(t, id+5, fakes.CodePriceIncrement)
	c.PlaceOrder(id, stock("AAPL"), order("BUY", "1", "MKT", 0, "again"))
	r.expectError(t, id, fakes.CodeDuplicateOrderID)
	c.CancelOrder(id+99, ibapi.NewOrderCancel())
	r.expectError(t, id+99, fakes.CodeOrderNotFound)
	c.CancelOrder(id, ibapi.NewOrderCancel())
	r.expectError(t, id, fakes.CodeCannotCancel)

	// What a client reconciles from: open and completed orders, executions,
	// positions, and an order id past every one used.
	c.ReqAllOpenOrders()
	r.expectEvents(t, "open end")
	c.ReqCompletedOrders(false)
	r.expectEvents(t,
		"completed AAPL BUY 10 MKT filled=10 ref=k1 Filled",
		"completed MSFT BUY 60 LMT filled=60 ref=k2 Filled",
		"completed AAPL SELL 5 LMT filled=0 ref=k3 Cancelled",
		"completed end")
	f := ibapi.NewExecutionFilter()
	f.Symbol = "MSFT"
	c.ReqExecutions(8, f)
	r.expectEvents(t,
		fmt.Sprintf("exec 8 MSFT order=%d BOT 30@394.5 cum=30 ref=k2", lim), "commission 0.5 USD",
		fmt.Sprintf("exec 8 MSFT order=%d BOT 30@393.5 cum=60 ref=k2", lim), "commission 0.5 USD",
		"executions end 8")
	c.ReqPositions()
	pos := drainUntil(t, r, "positions end")
	for _, w := range []string{"position DU1234567 AAPL 110 avg=153.9090909091", "position DU1234567 MSFT 60 avg=394",
		"position DU7654321 MSFT -10.25 avg=410.1"} {
		if !strings.Contains(pos, w+"\n") {
			t.Errorf("positions lack %q:\n%s", w, pos)
		}
	}
	c.ReqIDs(1)
	if n := recv(t, r.next, "NextValidID"); n != id+6 {
		t.Fatalf("NextValidID %d after ids up to %d, want %d", n, id+5, id+6)
	}
	if !c.IsConnected() {
		t.Fatal("session ended")
	}
	r.checkOrderProtos(t, v)
	for _, q := range g.Connections()[0].Requests {
		if (q.ID == 3 || q.ID == 4) && q.Protobuf != (v >= fakes.VersionProtobufOrders) {
			t.Fatalf("v%d: request %q came as protobuf: %v", v, q.Fields, q.Protobuf)
		}
	}
	orders := g.Orders()
	if len(orders) != 6 {
		t.Fatalf("g.Orders(): %d orders, want 6 (3 done, 3 rejected)", len(orders))
	}
	if o := orders[1]; o.Status != fakes.StatusFilled || o.Modifications != 1 || len(o.ExecIDs) != 2 ||
		o.OrderRef != "k2" {
		t.Fatalf("g.Orders()[1] = %+v", o)
	}
}

// drainUntil returns the position events up to want, one a line.
func drainUntil(t *testing.T, r *orderRecorder, want string) string {
	t.Helper()
	var b strings.Builder
	for {
		select {
		case got := <-r.ev:
			if got == want {
				return b.String()
			}
			if !strings.HasPrefix(got, "position ") {
				t.Fatalf("got %q while waiting for %q", got, want)
			}
			b.WriteString(got + "\n")
		case <-time.After(hangLimit):
			t.Fatalf("timed out waiting for %q", want)
		}
	}
}
