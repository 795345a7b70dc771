package conformance

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// Cases of the read side: AccountUpdates, Executions, OpenOrders and
// CompletedOrders, each checked against the Script exactly.

// Message ids of the read side's requests (TWS API).
const (
	reqAcctData        = 6
	reqExecutions      = 7
	reqOpenOrders      = 5
	reqCompletedOrders = 99
)

// ReadScript is StandardScript's accounts with the read side's data: marked
// positions (fractional, negative, a future and an option with multipliers)
// and executions with and without realized PnL. Its prices and amounts have at
// most 15 significant digits, the precision the TWS API's doubles carry on
// every transport of PORTFOLIO_VALUE and COMMISSION_REPORT.
func ReadScript() fakes.Script {
	d := broker.MustDecimal
	s := fakes.DefaultScript()
	a2 := s.Accounts[1]
	s.Marks = append(s.Marks, fakes.Mark{Account: a2, ConID: 272093, MarketPrice: d("415.87"),
		UnrealizedPnL: d("-59.1425"), RealizedPnL: d("-3.5")})
	s.Executions = append(s.Executions, fakes.Execution{ExecID: "0000e0d5.6745a3b3.01.01", OrderID: 13,
		PermID: 1804436633, ClientID: 2, Account: a2, Contract: s.Positions[5].Contract,
		Time: "20261201 16:01:59 US/Eastern", Exchange: "NASDAQ", Side: "SLD", Shares: d("10.25"),
		Price: d("410.1"), Commission: d("1.025625"), CommissionCurrency: "USD"})
	return s
}

var updateTime = regexp.MustCompile(`^\d\d:\d\d$`)

// TestAccountUpdates: AccountUpdates returns each managed account's values and
// portfolio exactly as the Script gives them, in the gateway's order, with an
// update time; after the gateway's data changed a new call sees the change
// (not a cached download); "" with several accounts and an account the
// session does not manage fail with ErrInvalidArgument.
func TestAccountUpdates(t TB, newBroker Factory, f Features) {
	s := ReadScript()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	connect(t, b, env.Params)
	ctx, cancel := callCtx(t)
	defer cancel()
	check := func(s fakes.Script, when string) {
		t.Helper()
		for _, acct := range s.Accounts {
			got, err := b.AccountUpdates(ctx, acct)
			if err != nil {
				t.Fatalf("AccountUpdates(%q) %s: %v", acct, when, err)
			}
			want, _ := s.AccountUpdate(acct)
			if !updateTime.MatchString(got.UpdateTime) {
				t.Errorf("AccountUpdates(%q) %s: update time %q, want HH:MM", acct, when, got.UpdateTime)
			}
			want.UpdateTime = got.UpdateTime
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("AccountUpdates(%q) %s (-script +got):\n%s", acct, when, diff)
			}
		}
	}
	check(s, "")
	s = s.Clone()
	s.Marks[0].MarketPrice = broker.MustDecimal("190.75")
	s.Marks[0].UnrealizedPnL = broker.MustDecimal("4050")
	s.Positions = slices.Delete(s.Positions, 1, 2)
	env.Gateway.SetScript(s)
	check(s, "after the gateway's data changed")
	for _, acct := range []string{"", "DU0000000"} {
		_, err := b.AccountUpdates(ctx, acct)
		wantIs(t, "AccountUpdates("+acct+")", err, broker.ErrInvalidArgument)
	}
}

// TestExecutions: Executions returns the executions matching each filter
// exactly as the Script gives them, in the gateway's order, each with its
// commission and realized PnL; a filter that matches nothing gives an empty
// list.
func TestExecutions(t TB, newBroker Factory, f Features) {
	s := ReadScript()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	connect(t, b, env.Params)
	ctx, cancel := callCtx(t)
	defer cancel()
	filters := []broker.ExecutionFilter{{}, {Symbol: "SPY"}, {Side: "SELL"}, {Account: s.Accounts[1]},
		{ClientID: 2}, {Since: "20261201 15:40:00"}, {Symbol: "NONE"}}
	for _, fl := range filters {
		got, err := b.Executions(ctx, fl)
		if err != nil {
			t.Fatalf("Executions(%+v): %v", fl, err)
		}
		if diff := cmp.Diff(s.ExecutionsMatching(fl), got); diff != "" {
			t.Errorf("Executions(%+v) (-script +got):\n%s", fl, diff)
		}
	}
}

// TestOrders: OpenOrders and CompletedOrders ask the gateway (a
// REQ_OPEN_ORDERS and a REQ_COMPLETED_ORDERS reach it for every call) and
// return its list, empty and not nil when it has no orders.
func TestOrders(t TB, newBroker Factory, f Features) {
	env := newEnv(t, f, ReadScript())
	b := newBroker(t, env)
	connect(t, b, env.Params)
	ctx, cancel := callCtx(t)
	defer cancel()
	for i := range 2 {
		for _, c := range []struct {
			name string
			id   int
			call func() ([]broker.Order, error)
		}{
			{"OpenOrders", reqOpenOrders, func() ([]broker.Order, error) { return b.OpenOrders(ctx) }},
			{"CompletedOrders", reqCompletedOrders, func() ([]broker.Order, error) { return b.CompletedOrders(ctx) }},
		} {
			before := env.Gateway.RequestCount(c.id)
			got, err := c.call()
			if err != nil {
				t.Fatalf("%s #%d: %v", c.name, i+1, err)
			}
			if got == nil || len(got) != 0 {
				t.Errorf("%s #%d: %v, want an empty, non-nil list", c.name, i+1, got)
			}
			if env.Gateway.RequestCount(c.id) <= before {
				t.Errorf("%s #%d answered without its request reaching the gateway", c.name, i+1)
			}
		}
	}
}

// TestAccountUpdatesStream: SubscribeAccountUpdates (broker.AccountStreamer)
// delivers the account's state as the Script gives it after the first
// download, then the new state after the gateway reports a change; the
// one-shot AccountUpdates of the streamed account agrees with it; the channel
// is closed once ctx is done, and a closed one is closed for good. A Broker
// without the capability skips, naming it.
func TestAccountUpdatesStream(t TB, newBroker Factory, f Features) {
	s := ReadScript()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	as, ok := b.(broker.AccountStreamer)
	if !ok {
		t.Skipf("the Broker does not implement broker.AccountStreamer")
	}
	connect(t, b, env.Params)
	ctx, cancel := callCtx(t)
	defer cancel()
	if _, err := as.SubscribeAccountUpdates(ctx, "DU0000000"); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("SubscribeAccountUpdates of an unmanaged account: %v, want ErrInvalidArgument", err)
	}
	acct := s.Accounts[0]
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ch, err := as.SubscribeAccountUpdates(sctx, acct)
	if err != nil {
		t.Fatalf("SubscribeAccountUpdates(%q): %v", acct, err)
	}
	want, _ := s.AccountUpdate(acct)
	awaitUpdate(t, ch, want, "the first download")

	one, err := b.AccountUpdates(ctx, acct)
	if err != nil {
		t.Fatalf("AccountUpdates(%q) while streaming: %v", acct, err)
	}
	want.UpdateTime = one.UpdateTime
	if diff := cmp.Diff(want, one); diff != "" {
		t.Errorf("AccountUpdates(%q) while streaming (-script +got):\n%s", acct, diff)
	}

	s = s.Clone()
	s.Marks[0].MarketPrice = broker.MustDecimal("191.25")
	s.Marks[0].UnrealizedPnL = broker.MustDecimal("4100")
	s.Summary[0].Values["NetLiquidation"] = broker.SummaryValue{Value: "100698.45", Currency: "USD"}
	env.Gateway.SetScript(s)
	if env.Gateway.PushAccountUpdates(acct) == 0 {
		t.Fatalf("the gateway reached no connection with the account's change")
	}
	want, _ = s.AccountUpdate(acct)
	awaitUpdate(t, ch, want, "the gateway reported a change")

	stop()
	awaitClosed(t, ch, CallTimeout, "after its ctx ended")
}

// awaitUpdate reads ch until it delivers want (update time aside, checked for
// its form), within CallTimeout.
func awaitUpdate(t TB, ch <-chan broker.AccountUpdate, want broker.AccountUpdate, when string) broker.AccountUpdate {
	t.Helper()
	deadline := time.After(CallTimeout)
	var last broker.AccountUpdate
	for {
		select {
		case u, open := <-ch:
			if !open {
				t.Fatalf("stream of %s closed before %s", want.Account, when)
			}
			if !updateTime.MatchString(u.UpdateTime) {
				t.Fatalf("stream of %s after %s: update time %q, want HH:MM", want.Account, when, u.UpdateTime)
			}
			want.UpdateTime = u.UpdateTime
			if cmp.Equal(want, u) {
				return u
			}
			last = u
		case <-deadline:
			t.Fatalf("stream of %s: no state equal to the Script within %v after %s; last (-script +got):\n%s",
				want.Account, CallTimeout, when, cmp.Diff(want, last))
		}
	}
}
