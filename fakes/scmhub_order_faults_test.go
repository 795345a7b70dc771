//go:build !race

// Issue 17 part 4: the order simulator's faults and its sharing across
// connections, driven by scmhub/ibapi. See scmhub_test.go for why these
// tests are left out of -race builds.

package fakes_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// connectOrders connects scmhub as clientID and returns the first NEXT_VALID_ID.
func connectOrders(t *testing.T, g *fakes.Gateway, clientID int64) (*ibapi.EClient, *orderRecorder, int64) {
	t.Helper()
	r := newOrderRecorder()
	c := ibapi.NewEClient(r)
	if err := c.Connect(g.Host(), g.Port(), clientID); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect() })
	return c, r, recv(t, r.next, "NextValidID")
}

// reconcile checks what a reconnected client 1 finds of the filled market
// order id with orderRef ref: no open order, one completed, one execution.
func reconcile(t *testing.T, g *fakes.Gateway, id int64, ref string) {
	t.Helper()
	c, r, next := connectOrders(t, g, 1)
	if next <= id {
		t.Fatalf("NextValidID %d after order %d", next, id)
	}
	c.ReqOpenOrders()
	r.expectEvents(t, "open end")
	c.ReqCompletedOrders(false)
	r.expectEvents(t, fmt.Sprintf("completed AAPL BUY 10 MKT filled=10 ref=%s Filled", ref), "completed end")
	c.ReqExecutions(5, ibapi.NewExecutionFilter())
	r.expectEvents(t, fmt.Sprintf("exec 5 AAPL order=%d BOT 10@190.5 cum=10 ref=%s", id, ref), "commission 1 USD",
		"executions end 5")
}

func TestOrderDropAfterOrderFault(t *testing.T) {
	for _, v := range []int{178, fakes.DefaultServerVersion} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			s := orderScript(v)
			s.Faults.DropAfterOrder = 1
			g := startGateway(t, s)
			c, r, id := connectOrders(t, g, 1)
			c.PlaceOrder(id, stock("AAPL"), order("BUY", "10", "MKT", 0, "drop"))
			r.expectEvents(t, "closed") // and no ack before it
			if o := g.Orders(); len(o) != 1 || o[0].Status != fakes.StatusFilled || o[0].OrderRef != "drop" {
				t.Fatalf("g.Orders() = %+v, want the order filled", o)
			}
			reconcile(t, g, id, "drop")
		})
	}
}

func TestOrderAckDelayFault(t *testing.T) {
	s := orderScript(fakes.DefaultServerVersion)
	s.Faults.AckDelay = 150 * time.Millisecond
	g := startGateway(t, s)
	c, r, id := connectOrders(t, g, 1)
	start := time.Now()
	c.PlaceOrder(id, stock("AAPL"), order("BUY", "1", "LMT", 100, "late"))
	r.expectEvents(t,
		fmt.Sprintf("open %d AAPL BUY 1 LMT lmt=100 aux=- tif=DAY acct=DU1234567 ref=late client=1 Submitted", id))
	if d := time.Since(start); d < s.Faults.AckDelay {
		t.Fatalf("ack after %v, want at least %v", d, s.Faults.AckDelay)
	}
}

func TestOrderFillsWhileDisconnected(t *testing.T) {
	g := startGateway(t, orderScript(fakes.TextServerVersion))
	c, r, id := connectOrders(t, g, 1)
	c.PlaceOrder(id, stock("AAPL"), order("BUY", "10", "LMT", 190, "away"))
	r.expectEvents(t,
		fmt.Sprintf("open %d AAPL BUY 10 LMT lmt=190 aux=- tif=DAY acct=DU1234567 ref=away client=1 Submitted", id),
		fmt.Sprintf("status %d Submitted filled=0 remaining=10 avg=0 last=0 client=1", id))
	_ = c.Disconnect()
	waitFor(t, "the client to leave", func() bool { return len(g.LiveClientIDs()) == 0 })
	if n := g.SetPrice("AAPL", broker.MustDecimal("189.99")); n != 1 {
		t.Fatalf("SetPrice made %d executions, want 1", n)
	}
	c2, r2, next := connectOrders(t, g, 1)
	if next <= id {
		t.Fatalf("NextValidID %d after order %d", next, id)
	}
	c2.ReqCompletedOrders(false)
	r2.expectEvents(t, "completed AAPL BUY 10 LMT filled=10 ref=away Filled", "completed end")
	c2.ReqExecutions(5, ibapi.NewExecutionFilter())
	r2.expectEvents(t, fmt.Sprintf("exec 5 AAPL order=%d BOT 10@189.99 cum=10 ref=away", id), "commission 1 USD",
		"executions end 5")
}

// TestOrdersAcrossClients: an order is pushed to its client and to client 0,
// listed by REQ_ALL_OPEN_ORDERS for anyone, and its id is never issued again.
func TestOrdersAcrossClients(t *testing.T) {
	g := startGateway(t, orderScript(fakes.DefaultServerVersion))
	c1, r1, id := connectOrders(t, g, 1)
	_, r0, _ := connectOrders(t, g, 0)
	c2, r2, _ := connectOrders(t, g, 2)
	c1.PlaceOrder(id, stock("AAPL"), order("SELL", "3", "LMT", 200, "mine"))
	open := fmt.Sprintf("open %d AAPL SELL 3 LMT lmt=200 aux=- tif=DAY acct=DU1234567 ref=mine client=1 Submitted", id)
	status := fmt.Sprintf("status %d Submitted filled=0 remaining=3 avg=0 last=0 client=1", id)
	r1.expectEvents(t, open, status)
	r0.expectEvents(t, open, status)
	c2.ReqOpenOrders()
	r2.expectEvents(t, "open end") // not client 2's, and nothing pushed to it before
	c2.ReqAllOpenOrders()
	r2.expectEvents(t, open, status, "open end")
	c2.CancelOrder(id, ibapi.NewOrderCancel()) // client 2 cannot cancel client 1's order
	r2.expectError(t, id, fakes.CodeOrderNotFound)
	_, _, next := connectOrders(t, g, 3)
	if next <= id {
		t.Fatalf("client 3's NextValidID %d, want past %d", next, id)
	}
}

func TestOrderReadOnlyAPI(t *testing.T) {
	s := orderScript(fakes.DefaultServerVersion)
	s.ReadOnlyAPI = true
	g := startGateway(t, s)
	c, r, id := connectOrders(t, g, 1)
	c.PlaceOrder(id, stock("AAPL"), order("BUY", "1", "MKT", 0, "ro"))
	r.expectError(t, id, fakes.CodeValidationError)
	if o := g.Orders(); len(o) != 0 {
		t.Fatalf("g.Orders() = %+v, want none", o)
	}
}
