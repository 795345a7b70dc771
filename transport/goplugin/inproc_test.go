package goplugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
)

// sentinels are the errors whose errors.Is answer must survive the crossing.
var sentinels = []error{
	broker.ErrNotConnected, broker.ErrAlreadyConnected, broker.ErrTimeout, broker.ErrClientIDInUse,
	broker.ErrGatewayUnreachable, broker.ErrHandshakeFailed, broker.ErrUnavailable, broker.ErrProtocol,
	broker.ErrClosed, broker.ErrInvalidArgument, broker.ErrUnsupported, context.Canceled, context.DeadlineExceeded,
}

func connect(t testing.TB, b broker.Broker) broker.ConnectInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ci, err := b.Connect(ctx, broker.ConnectParams{Host: "127.0.0.1", Port: 4002, ClientID: 7})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return ci
}

func decimalGen() *rapid.Generator[broker.Decimal] {
	return rapid.Custom(func(t *rapid.T) broker.Decimal {
		s := rapid.StringMatching(`-?[0-9]{1,30}(\.[0-9]{1,30})?`).Draw(t, "decimal")
		return broker.MustDecimal(s)
	})
}

// TestRoundTripProperty: whatever the served Broker returns, the Client returns
// the same values, decimals exact.
func TestRoundTripProperty(t *testing.T) {
	mem := newMemBroker()
	c, _ := inProcessPair(t, mem)
	ctx := context.Background()
	connect(t, c)
	rapid.Check(t, func(rt *rapid.T) {
		dec := decimalGen()
		str := rapid.String()
		n := rapid.IntRange(0, 20).Draw(rt, "n")
		ps := make([]broker.Position, n)
		for i := range ps {
			ps[i] = broker.Position{
				Account: str.Draw(rt, "account"),
				Contract: broker.Contract{
					ConID: rapid.Int64().Draw(rt, "conid"), Symbol: str.Draw(rt, "symbol"), SecType: str.Draw(rt, "sectype"),
					Expiry: str.Draw(rt, "expiry"), Strike: dec.Draw(rt, "strike"), Right: str.Draw(rt, "right"),
					Multiplier: str.Draw(rt, "mult"), Exchange: str.Draw(rt, "exch"), Currency: str.Draw(rt, "ccy"),
					LocalSymbol: str.Draw(rt, "local"), TradingClass: str.Draw(rt, "class"),
				},
				Quantity: dec.Draw(rt, "qty"),
				AvgCost:  dec.Draw(rt, "avg"),
			}
		}
		mem.SetPositions(ps)
		want, err := mem.Positions(ctx)
		if err != nil {
			rt.Fatal(err)
		}
		got, err := c.Positions(ctx)
		if err != nil {
			rt.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			rt.Fatalf("Positions (-in-process +goplugin):\n%s", diff)
		}
	})
}

func TestCallsMatchInProcess(t *testing.T) {
	mem := newMemBroker()
	c, _ := inProcessPair(t, mem)
	ctx := context.Background()

	if err := c.Ping(ctx); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("Ping before Connect = %v, want ErrNotConnected", err)
	}
	ci := connect(t, c)
	if diff := cmp.Diff(broker.ConnectInfo{Accounts: memAccounts, ServerVersion: 193}, ci); diff != "" {
		t.Errorf("ConnectInfo (-want +got):\n%s", diff)
	}
	if _, err := c.Connect(ctx, broker.ConnectParams{}); !errors.Is(err, broker.ErrAlreadyConnected) {
		t.Errorf("second Connect = %v, want ErrAlreadyConnected", err)
	}
	accts, err := c.Accounts(ctx)
	if err != nil || !cmp.Equal(accts, memAccounts) {
		t.Errorf("Accounts = %v, %v; want %v", accts, err, memAccounts)
	}
	for _, tags := range [][]string{nil, {"NetLiquidation", "AccountType"}} {
		want, _ := mem.AccountSummary(ctx, tags...)
		got, err := c.AccountSummary(ctx, tags...)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("AccountSummary(%v) (-in-process +goplugin):\n%s", tags, diff)
		}
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("Ping = %v", err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Errorf("Disconnect = %v", err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Errorf("second Disconnect = %v", err)
	}
	if _, err := c.Connect(ctx, broker.ConnectParams{Port: 70000}); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("Connect(port 70000) = %v, want ErrInvalidArgument", err)
	}
}

// TestErrorsCrossProperty: every wire code, with or without an IB code, comes back
// matching exactly the sentinels the original matched, with its message and IB code.
func TestErrorsCrossProperty(t *testing.T) {
	mem := newMemBroker()
	c, _ := inProcessPair(t, mem)
	ctx := context.Background()
	codes := append(broker.ErrorCodes(), "some_future_code")
	// Errors as implementations make them: a wrapped sentinel, a wrapped
	// *APIError, or an error rebuilt from any wire code (known or not).
	// (An error that matches two sentinels at once, such as ErrorFromCode
	// ("already_connected", "", 504), cannot cross: it has one wire code.)
	rapid.Check(t, func(rt *rapid.T) {
		msg := rapid.StringMatching(`[ -~]{0,40}`).Draw(rt, "msg")
		var orig error
		switch rapid.IntRange(0, 2).Draw(rt, "kind") {
		case 0:
			orig = fmt.Errorf("%s: %w", msg, rapid.SampledFrom(sentinels).Draw(rt, "sentinel"))
		case 1:
			ib := rapid.SampledFrom([]int64{broker.IBCodeNoSecurityDefinition, broker.IBCodeClientIDInUse,
				broker.IBCodeMarketDataNotSubscribed, broker.IBCodeConnectFail, broker.IBCodeNotConnected,
				broker.IBCodeConnectivityLost, broker.IBCodeMarketDataFarmOK}).Draw(rt, "ib")
			orig = fmt.Errorf("op: %w", &broker.APIError{ReqID: -1, Code: ib, Message: msg})
		case 2:
			orig = broker.ErrorFromCode(rapid.SampledFrom(codes).Draw(rt, "code"), msg, 0)
		}
		mem.SetErr(orig)
		_, got := c.Accounts(ctx)
		checkSameError(rt, orig, got)
		got = c.Ping(ctx)
		checkSameError(rt, orig, got)
	})
	mem.SetErr(nil)
}

func checkSameError(t interface{ Fatalf(string, ...any) }, want, got error) {
	if got == nil {
		t.Fatalf("got nil error, want %v", want)
	}
	for _, s := range sentinels {
		if errors.Is(want, s) != errors.Is(got, s) {
			t.Fatalf("errors.Is(%v, %v) = %v after crossing, %v before", got, s, errors.Is(got, s), errors.Is(want, s))
		}
	}
	if broker.ErrorCode(want) != broker.ErrorCode(got) || broker.IBCode(want) != broker.IBCode(got) || want.Error() != got.Error() {
		t.Fatalf("crossed error = (%q, %d, %q), want (%q, %d, %q)", broker.ErrorCode(got), broker.IBCode(got), got,
			broker.ErrorCode(want), broker.IBCode(want), want)
	}
}

func TestAPIErrorCrosses(t *testing.T) {
	mem := newMemBroker()
	c, _ := inProcessPair(t, mem)
	// 10148 (an order that cannot be cancelled) maps to no sentinel.
	mem.SetErr(fmt.Errorf("reqPositions: %w", &broker.APIError{ReqID: 9, Code: 10148, Message: "cannot be cancelled"}))
	_, err := c.Positions(context.Background())
	var api *broker.APIError
	if !errors.As(err, &api) || api.Code != 10148 {
		t.Fatalf("Positions = %v; want an *APIError with code 10148", err)
	}
	if got := broker.ErrorCode(err); got != broker.CodeAPIError {
		t.Errorf("ErrorCode = %q, want %q", got, broker.CodeAPIError)
	}
}

func TestEventsCross(t *testing.T) {
	mem := newMemBroker()
	c, _ := inProcessPair(t, mem)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Subscribe has returned: the child's subscription exists, nothing may be missed.
	at := time.Date(2026, 1, 2, 15, 4, 5, 6, time.UTC)
	want := []broker.Event{
		{Kind: broker.EventConnectionLost, Time: at, Code: broker.IBCodeConnectivityLost, Message: "Connectivity between IB and TWS has been lost."},
		{Kind: broker.EventConnectionRestored, Time: at.Add(time.Second), Code: broker.IBCodeRestoredDataMaintained, Message: "restored, data maintained"},
		{Kind: broker.EventNotice, Time: at.Add(2 * time.Second), Code: broker.IBCodeMarketDataFarmOK, Message: "farm OK"},
	}
	for _, e := range want {
		mem.Publish(e)
	}
	var got []broker.Event
	within(t, 10*time.Second, "receiving events", func() {
		for len(got) < len(want) {
			got = append(got, <-ch)
		}
	})
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("events (-published +received):\n%s", diff)
	}
	cancel()
	within(t, 10*time.Second, "channel close after cancel", func() {
		for range ch {
		}
	})
}

func TestContextExpiryKeepsClientUsable(t *testing.T) {
	c, _ := inProcessPair(t, newMemBroker())
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.AccountSummary(ctx, "block")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked call = %v, want DeadlineExceeded", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := c.Ping(ctx2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ping(canceled ctx) = %v, want Canceled", err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after expiry = %v", err)
	}
}

func TestChildExitFailsCallsAtOnce(t *testing.T) {
	mem := newMemBroker()
	c, exit := inProcessPair(t, mem)
	connect(t, c)
	errc := make(chan error, 1)
	go func() {
		_, err := c.AccountSummary(context.Background(), "block")
		errc <- err
	}()
	waitBlocked(t, mem, 1) // the call is in flight
	exit()
	within(t, 10*time.Second, "in-flight call after exit", func() {
		if err := <-errc; !errors.Is(err, broker.ErrUnavailable) {
			t.Errorf("in-flight call = %v, want ErrUnavailable", err)
		}
	})
	if err := c.Ping(context.Background()); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("later Ping = %v, want ErrUnavailable", err)
	}
	if _, err := c.Subscribe(context.Background()); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("later Subscribe = %v, want ErrUnavailable", err)
	}
}

func TestCloseFailsEverythingWithErrClosed(t *testing.T) {
	mem := newMemBroker()
	c, _ := inProcessPair(t, mem)
	connect(t, c)
	ch, err := c.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.AccountSummary(context.Background(), "block")
		errc <- err
	}()
	waitBlocked(t, mem, 1) // the call is in flight
	var wg sync.WaitGroup
	for range 3 { // concurrent and repeated Close
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Close() }()
	}
	within(t, 10*time.Second, "Close", wg.Wait)
	if err := <-errc; !errors.Is(err, broker.ErrClosed) {
		t.Errorf("in-flight call = %v, want ErrClosed", err)
	}
	within(t, 10*time.Second, "event channel close", func() {
		for range ch {
		}
	})
	ctx := context.Background()
	calls := map[string]error{
		"Connect":        second(c.Connect(ctx, broker.ConnectParams{})),
		"Disconnect":     c.Disconnect(ctx),
		"Accounts":       second(c.Accounts(ctx)),
		"Positions":      second(c.Positions(ctx)),
		"AccountSummary": second(c.AccountSummary(ctx)),
		"Ping":           c.Ping(ctx),
		"Subscribe":      second(c.Subscribe(ctx)),
	}
	for name, err := range calls {
		if !errors.Is(err, broker.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if err := mem.Ping(ctx); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Close did not close the served Broker: its Ping = %v, want ErrClosed", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestPanicInServedBrokerIsAnError(t *testing.T) {
	c, _ := inProcessPair(t, newMemBroker())
	connect(t, c)
	_, err := c.AccountSummary(context.Background(), "panic")
	if err == nil || broker.ErrorCode(err) != broker.CodeInternal || !strings.Contains(err.Error(), "scripted panic") {
		t.Fatalf("panicking call = %v (code %q), want an internal error naming the panic", err, broker.ErrorCode(err))
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after panic = %v", err)
	}
}

func TestConcurrentCallers(t *testing.T) {
	c, _ := inProcessPair(t, newMemBroker())
	connect(t, c)
	runConcurrentCallers(t, c)
}

// runConcurrentCallers runs 16 goroutines of mixed calls and checks every answer.
func runConcurrentCallers(t *testing.T, c broker.Broker) {
	t.Helper()
	ctx := context.Background()
	want, err := c.Positions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				switch (i + j) % 3 {
				case 0:
					if err := c.Ping(ctx); err != nil {
						errs <- fmt.Errorf("caller %d: Ping: %w", i, err)
						return
					}
				case 1:
					got, err := c.Positions(ctx)
					if err != nil || !cmp.Equal(got, want) {
						errs <- fmt.Errorf("caller %d: Positions = %d positions, %v", i, len(got), err)
						return
					}
				case 2:
					a, err := c.Accounts(ctx)
					if err != nil || !cmp.Equal(a, memAccounts) {
						errs <- fmt.Errorf("caller %d: Accounts = %v, %v", i, a, err)
						return
					}
				}
			}
		}()
	}
	within(t, 60*time.Second, "16 concurrent callers", wg.Wait)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSubscribeErrorCrosses(t *testing.T) {
	mem := newMemBroker()
	c, _ := inProcessPair(t, mem)
	_ = mem.Close() // the served Broker is closed, the Client is not
	if _, err := c.Subscribe(context.Background()); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Subscribe on a closed served Broker = %v, want ErrClosed", err)
	}
	if err := c.Ping(context.Background()); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Ping on a closed served Broker = %v, want ErrClosed", err)
	}
}

// waitBlocked waits until n calls to mem have started blocking.
func waitBlocked(t *testing.T, mem *memBroker, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := mem.WaitBlocked(ctx, n); err != nil {
		t.Fatal(err)
	}
}
