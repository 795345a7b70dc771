package fakes_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// TestMemoryReadSideAgreesWithGateway: the ibkr adapter over a Gateway and a
// Memory serving the same Script answer the read side the same.
func TestMemoryReadSideAgreesWithGateway(t *testing.T) {
	s := fakes.DefaultScript()
	g := startGateway(t, s)
	a := ibkr.New()
	defer a.Close()
	ctx, cancel := context.WithTimeout(t.Context(), hangLimit)
	defer cancel()
	if _, err := a.Connect(ctx, g.ConnectParams(1)); err != nil {
		t.Fatal(err)
	}
	m := connectedMemory(t, s)
	for _, acct := range append(s.Accounts, "DU0000000") {
		want, werr := a.AccountUpdates(ctx, acct)
		got, gerr := m.AccountUpdates(ctx, acct)
		if !errors.Is(gerr, broker.ErrInvalidArgument) || !errors.Is(werr, broker.ErrInvalidArgument) {
			if werr != nil || gerr != nil {
				t.Fatalf("AccountUpdates(%q): adapter %v, memory %v", acct, werr, gerr)
			}
		}
		got.UpdateTime = want.UpdateTime
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("AccountUpdates(%q) (-adapter +memory):\n%s", acct, diff)
		}
	}
	for _, f := range []broker.ExecutionFilter{{}, {Side: "SELL"}, {Symbol: "AAPL"}, {ClientID: 7}} {
		want, err := a.Executions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := m.Executions(ctx, f)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Executions(%+v) (-adapter +memory):\n%s", f, diff)
		}
	}
	for _, call := range []func(broker.Broker) ([]broker.Order, error){
		func(b broker.Broker) ([]broker.Order, error) { return b.OpenOrders(ctx) },
		func(b broker.Broker) ([]broker.Order, error) { return b.CompletedOrders(ctx) },
	} {
		want, werr := call(a)
		got, gerr := call(m)
		if werr != nil || gerr != nil || !cmp.Equal(want, got) {
			t.Errorf("orders: adapter %v %v, memory %v %v", want, werr, got, gerr)
		}
	}
}

// TestMemoryAccountStream: a Memory's stream delivers the state, then the
// state after a SetScript that changes it (not after one that does not), and
// is closed by its ctx and by Disconnect.
func TestMemoryAccountStream(t *testing.T) {
	s := fakes.DefaultScript()
	m := connectedMemory(t, s)
	sctx, stop := context.WithCancel(t.Context())
	ch, err := m.SubscribeAccountUpdates(sctx, s.Accounts[1])
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.AccountUpdate(s.Accounts[1])
	u := <-ch
	want.UpdateTime = u.UpdateTime
	if diff := cmp.Diff(want, u); diff != "" {
		t.Fatalf("first state (-script +got):\n%s", diff)
	}
	m.SetScript(s) // no change: nothing to deliver
	select {
	case u := <-ch:
		t.Fatalf("a SetScript without a change delivered %+v", u)
	default:
	}
	s.Marks[2].UnrealizedPnL = broker.MustDecimal("1300.5")
	m.SetScript(s)
	u = <-ch
	if got := u.Portfolio[1].UnrealizedPnL; got.String() != "1300.5" {
		t.Errorf("after the change: unrealized PnL %s, want 1300.5", got)
	}
	stop()
	if _, open := <-ch; open {
		t.Error("the channel is open after its ctx ended")
	}
	ch2, err := m.SubscribeAccountUpdates(t.Context(), s.Accounts[0])
	if err != nil {
		t.Fatal(err)
	}
	<-ch2
	if err := m.Disconnect(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, open := <-ch2; open {
		t.Error("the channel is open after Disconnect")
	}
	if _, err := m.SubscribeAccountUpdates(t.Context(), s.Accounts[0]); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("subscribe without a session: %v, want ErrNotConnected", err)
	}
}
