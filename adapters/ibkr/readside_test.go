package ibkr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

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
