package testbroker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/internal/testbroker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSteering: the verbs the transports' tests use do what the package doc says.
func TestSteering(t *testing.T) {
	b := testbroker.New(fakes.Script{Accounts: []string{"DU1"}}, func(n int) []broker.Position {
		return make([]broker.Position, n)
	})
	var logs testbroker.LogBuffer
	b.SetBlockNote(&logs)
	ctx := ctxFor(t)
	if _, err := b.Connect(ctx, broker.ConnectParams{Port: 1, ClientID: broker.IBCodeClientIDInUse}); !errors.Is(err, broker.ErrClientIDInUse) {
		t.Fatalf("Connect as 326: %v", err)
	}
	if _, err := b.Connect(ctx, broker.ConnectParams{Port: 1, ClientID: broker.IBCodeConnectFail}); !errors.Is(err, broker.ErrGatewayUnreachable) {
		t.Fatalf("Connect as 502: %v", err)
	}
	if _, err := b.Connect(ctx, broker.ConnectParams{Port: 1, ClientID: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AccountSummary(ctx, "err:client_id_in_use:326"); !errors.Is(err, broker.ErrClientIDInUse) || broker.IBCode(err) != broker.IBCodeClientIDInUse {
		t.Fatalf("err: %v", err)
	}
	if _, err := b.AccountSummary(ctx, "ibcode:200"); broker.IBCode(err) != broker.IBCodeNoSecurityDefinition {
		t.Fatalf("ibcode: %v", err)
	}
	if _, err := b.AccountSummary(ctx, "positions:4"); err != nil {
		t.Fatal(err)
	}
	if ps, err := b.Positions(ctx); err != nil || len(ps) != 4 {
		t.Fatalf("Positions after positions:4 = %d, %v", len(ps), err)
	}

	errc := make(chan error, 2)
	go func() { _, err := b.AccountSummary(ctx, "wait:g"); errc <- err }()
	bctx, cancel := context.WithCancel(ctx)
	go func() { _, err := b.AccountSummary(bctx, "block"); errc <- err }()
	if err := b.WaitBlocked(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := logs.WaitContains(ctx, testbroker.BlockedNote); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AccountSummary(ctx, "release:g"); err != nil {
		t.Fatal(err)
	}
	cancel()
	for range 2 {
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("blocked call: %v", err)
		}
	}

	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if err := b.WaitBlocked(short, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitBlocked for a call never made: %v", err)
	}
	b.SetErr(broker.ErrTimeout)
	if err := b.Ping(ctx); !errors.Is(err, broker.ErrTimeout) {
		t.Fatalf("Ping with SetErr: %v", err)
	}
}

// TestOrderKeysSteer: PlaceOrder runs its key as a tag; any other key is
// placed on the Memory's order book.
func TestOrderKeysSteer(t *testing.T) {
	s := fakes.DefaultScript()
	b := testbroker.New(s, nil)
	ctx := ctxFor(t)
	if _, err := b.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	r := broker.OrderRequest{Key: "err:rejected:201", Contract: broker.Contract{Symbol: "AAPL"}, Action: broker.ActionBuy,
		Quantity: broker.DecimalFromInt(1), OrderType: broker.OrderMarket}
	if _, err := b.PlaceOrder(ctx, r); !errors.Is(err, broker.ErrRejected) || broker.IBCode(err) != 201 {
		t.Errorf("key err:rejected:201 = %v", err)
	}
	r.Key = "plain"
	if p, err := b.PlaceOrder(ctx, r); err != nil || p.Key != "plain" || len(b.Orders()) != 1 {
		t.Errorf("plain key = %+v, %v; book %+v", p, err, b.Orders())
	}
}
