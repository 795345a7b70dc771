package conformance

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// ---- helpers ----
//
// The cases themselves live in cases_connection.go, cases_data.go,
// cases_lifecycle.go and prompt*.go.

func connect(t TB, b broker.Broker, p broker.ConnectParams) broker.ConnectInfo {
	t.Helper()
	ctx, cancel := callCtx(t)
	defer cancel()
	info, err := b.Connect(ctx, p)
	if err != nil {
		t.Fatalf("Connect(%s, client %d): %v", p.Addr(), p.ClientID, err)
	}
	return info
}

func disconnect(t TB, b broker.Broker) {
	t.Helper()
	ctx, cancel := callCtx(t)
	defer cancel()
	if err := b.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
}

// connectedStandard starts a gateway serving StandardScript and a Broker
// connected to it, the start of most cases.
func connectedStandard(t TB, newBroker Factory, f Features) (fakes.Script, Env, broker.Broker) {
	t.Helper()
	s := StandardScript()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	connect(t, b, env.Params)
	return s, env, b
}

// waitGatewayIdle waits until the gateway has seen every session end: it
// notices a client's close asynchronously, and until then it would refuse the
// same client id with 326, as real TWS does.
func waitGatewayIdle(t TB, env Env, when string) {
	t.Helper()
	deadline := time.Now().Add(CallTimeout)
	for {
		ids := env.Gateway.LiveClientIDs()
		if len(ids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the gateway still has live sessions %v after %v", when, ids, CallTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantIs reports a failure unless errors.Is(err, target).
func wantIs(t TB, what string, err, target error) bool {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want one matching %v", what, err, target)
		return false
	}
	return true
}

// calls are the methods of a connected Broker, each made once with ctx.
func calls(b broker.Broker) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"Accounts":       func(ctx context.Context) error { _, err := b.Accounts(ctx); return err },
		"Positions":      func(ctx context.Context) error { _, err := b.Positions(ctx); return err },
		"AccountSummary": func(ctx context.Context) error { _, err := b.AccountSummary(ctx); return err },
		"Ping":           func(ctx context.Context) error { return b.Ping(ctx) },
		"ContractDetails": func(ctx context.Context) error {
			_, err := b.ContractDetails(ctx, broker.Contract{ConID: 265598})
			return err
		},
		"Snapshot": func(ctx context.Context) error { _, err := b.Snapshot(ctx, standardAAPL); return err },
		"HistoricalBars": func(ctx context.Context) error {
			_, err := b.HistoricalBars(ctx, standardAAPL, standardBars)
			return err
		},
		"SetMarketDataType": func(ctx context.Context) error { return b.SetMarketDataType(ctx, broker.MarketDataFrozen) },
		"AccountUpdates":    func(ctx context.Context) error { _, err := b.AccountUpdates(ctx, ""); return err },
		"Executions": func(ctx context.Context) error {
			_, err := b.Executions(ctx, broker.ExecutionFilter{})
			return err
		},
		"OpenOrders":      func(ctx context.Context) error { _, err := b.OpenOrders(ctx); return err },
		"CompletedOrders": func(ctx context.Context) error { _, err := b.CompletedOrders(ctx); return err },
	}
}

func sortedNames(m map[string]func(context.Context) error) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// checkData compares every data call of a connected b with script s.
func checkData(t TB, b broker.Broker, s fakes.Script) {
	t.Helper()
	ctx, cancel := callCtx(t)
	defer cancel()
	accts, err := b.Accounts(ctx)
	if err != nil {
		t.Errorf("Accounts: %v", err)
	} else if diff := cmp.Diff(s.Accounts, accts); diff != "" {
		t.Errorf("Accounts (-script +got):\n%s", diff)
	}
	pos, err := b.Positions(ctx)
	if err != nil {
		t.Errorf("Positions: %v", err)
	} else if diff := cmp.Diff(s.Positions, pos); diff != "" {
		t.Errorf("Positions (-script +got):\n%s", diff)
	}
	sum, err := b.AccountSummary(ctx)
	if err != nil {
		t.Errorf("AccountSummary: %v", err)
	} else if diff := cmp.Diff(ExpectedSummary(s), sum); diff != "" {
		t.Errorf("AccountSummary (-script +got):\n%s", diff)
	}
	if err := b.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// waitEvent waits up to CallTimeout for an event matching ok, skipping others.
func waitEvent(t TB, ch <-chan broker.Event, what string, ok func(broker.Event) bool) broker.Event {
	t.Helper()
	timer := time.NewTimer(CallTimeout)
	defer timer.Stop()
	var seen []broker.Event
	for {
		select {
		case e, open := <-ch:
			if !open {
				t.Fatalf("waiting for %s: event channel closed; saw %v", what, seen)
			}
			if ok(e) {
				return e
			}
			seen = append(seen, e)
		case <-timer.C:
			t.Fatalf("no %s within %v; saw %v", what, CallTimeout, seen)
		}
	}
}

func subscribe(t TB, b broker.Broker) <-chan broker.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	ch, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return ch
}
