package ibkr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// The read side over the fake at text, raw-id and protobuf server versions:
// exact values as the Script describes them.
func TestReadSideExact(t *testing.T) {
	for _, v := range []int{178, 193, 201, 207, fakes.DefaultServerVersion} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			s := fakes.DefaultScript()
			s.ServerVersion = v
			_, a, ctx := connected(t, s)
			for _, acct := range s.Accounts {
				got, err := a.AccountUpdates(ctx, acct)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := s.AccountUpdate(acct)
				if got.UpdateTime == "" {
					t.Errorf("%s: no update time", acct)
				}
				want.UpdateTime = got.UpdateTime
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("account updates %s (-want +got):\n%s", acct, d)
				}
			}
			for _, f := range []broker.ExecutionFilter{{}, {Symbol: "SPY"}, {Side: "BUY"}, {Account: "DU7654321"}} {
				got, err := a.Executions(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(s.ExecutionsMatching(f), got); d != "" {
					t.Errorf("executions %+v (-want +got):\n%s", f, d)
				}
			}
			for name, call := range map[string]func() ([]broker.Order, error){
				"open":      func() ([]broker.Order, error) { return a.OpenOrders(ctx) },
				"completed": func() ([]broker.Order, error) { return a.CompletedOrders(ctx) }} {
				got, err := call()
				if err != nil || got == nil || len(got) != 0 {
					t.Errorf("%s orders: %v, %v; want an empty list", name, got, err)
				}
			}
			if _, err := a.AccountUpdates(ctx, "DU0000000"); !errors.Is(err, broker.ErrInvalidArgument) {
				t.Errorf("account updates of an unmanaged account: %v, want ErrInvalidArgument", err)
			}
			if _, err := a.AccountUpdates(ctx, ""); !errors.Is(err, broker.ErrInvalidArgument) {
				t.Errorf("account updates of \"\" with two accounts: %v, want ErrInvalidArgument", err)
			}
		})
	}
}

// TestOrdersFromTheSimulator: open and completed orders placed on the fake's
// order simulator (through the session's own scmhub client) come back through
// OpenOrders and CompletedOrders with their exact quantities and prices, at
// text, raw-id and protobuf server versions.
func TestOrdersFromTheSimulator(t *testing.T) {
	for _, v := range []int{178, 193, 201, 207, fakes.DefaultServerVersion} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			s := fakes.DefaultScript()
			s.ServerVersion = v
			s.Quotes = []fakes.Quote{{Symbol: "AAPL", ConID: 265598, Price: broker.MustDecimal("190.5")}}
			g, a, ctx := connected(t, s)
			var ec *ibapi.EClient
			if !a.As(&ec) {
				t.Fatal("As(**ibapi.EClient) = false")
			}
			c := &ibapi.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", Currency: "USD"}
			lmt := ibapi.LimitOrder("BUY", ibapi.StringToDecimal("10"), 150.25)
			lmt.OrderRef, lmt.TIF = "r1", "GTC"
			mkt := ibapi.MarketOrder("SELL", ibapi.StringToDecimal("3"))
			mkt.OrderRef = "r2"
			ec.PlaceOrder(1, c, lmt)
			ec.PlaceOrder(2, c, mkt)
			if _, err := g.WaitRequests(ctx, int(ibapi.PLACE_ORDER), 2); err != nil {
				t.Fatal(err)
			}
			open, err := a.OpenOrders(ctx)
			if err != nil {
				t.Fatal(err)
			}
			done, err := a.CompletedOrders(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sim := map[int64]fakes.Order{}
			for _, o := range g.Orders() {
				sim[o.ID] = o
			}
			check := func(what string, got []broker.Order, id int64) {
				t.Helper()
				if len(got) != 1 {
					t.Fatalf("%s: %d orders, want 1: %+v", what, len(got), got)
				}
				o, x := sim[id], got[0]
				want := broker.Order{OrderID: o.ID, PermID: o.PermID, ClientID: o.ClientID, Account: o.Account,
					Action: o.Action, OrderType: o.OrderType, TotalQuantity: o.Quantity, LimitPrice: o.LmtPrice,
					AuxPrice: o.AuxPrice, TIF: o.TIF, OrderRef: o.OrderRef, Status: o.Status, Filled: o.Filled}
				x.Contract = broker.Contract{}
				if what == "completed" {
					want.OrderID, want.ClientID = x.OrderID, x.ClientID // COMPLETED_ORDER carries neither
				}
				if diff := cmp.Diff(want, x); diff != "" {
					t.Errorf("%s order (-simulator +got):\n%s", what, diff)
				}
				if got[0].Contract.Symbol != "AAPL" || got[0].Contract.ConID != 265598 {
					t.Errorf("%s order contract %+v", what, got[0].Contract)
				}
			}
			check("open", open, 1)
			check("completed", done, 2)
		})
	}
}
