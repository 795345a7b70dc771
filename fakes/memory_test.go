package fakes_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// memCalls runs every data operation of b and returns their errors by name.
func memCalls(ctx context.Context, b broker.Broker) map[string]error {
	_, errA := b.Accounts(ctx)
	_, errP := b.Positions(ctx)
	_, errS := b.AccountSummary(ctx)
	return map[string]error{"Accounts": errA, "Positions": errP, "AccountSummary": errS, "Ping": b.Ping(ctx)}
}

func TestMemoryLifecycle(t *testing.T) {
	s := fakes.DefaultScript()
	m := fakes.NewMemory(s)
	ctx := t.Context()

	for name, err := range memCalls(ctx, m) {
		if !errors.Is(err, broker.ErrNotConnected) {
			t.Errorf("%s before Connect = %v, want ErrNotConnected", name, err)
		}
	}
	if err := m.Disconnect(ctx); err != nil {
		t.Errorf("Disconnect while disconnected = %v, want nil", err)
	}
	if _, err := m.Connect(ctx, broker.ConnectParams{Port: 70000}); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("Connect(port 70000) = %v, want ErrInvalidArgument", err)
	}
	if m.Connected() {
		t.Fatal("Connected after a failed Connect")
	}
	info, err := m.Connect(ctx, broker.ConnectParams{ClientID: 7})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(broker.ConnectInfo{Accounts: s.Accounts, ServerVersion: fakes.DefaultServerVersion}, info); diff != "" {
		t.Errorf("ConnectInfo (-want +got):\n%s", diff)
	}
	if _, err := m.Connect(ctx, broker.ConnectParams{}); !errors.Is(err, broker.ErrAlreadyConnected) {
		t.Errorf("second Connect = %v, want ErrAlreadyConnected", err)
	}
	for name, err := range memCalls(ctx, m) {
		if err != nil {
			t.Errorf("%s while connected = %v", name, err)
		}
	}
	if err := m.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	for name, err := range memCalls(ctx, m) {
		if !errors.Is(err, broker.ErrNotConnected) {
			t.Errorf("%s after Disconnect = %v, want ErrNotConnected", name, err)
		}
	}
	if _, err := m.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatalf("Connect after Disconnect = %v", err)
	}

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if m.Connected() {
		t.Error("Connected after Close")
	}
	errs := memCalls(ctx, m)
	_, errs["Connect"] = m.Connect(ctx, broker.ConnectParams{})
	errs["Disconnect"] = m.Disconnect(ctx)
	_, errs["Subscribe"] = m.Subscribe(ctx)
	for name, err := range errs {
		if !errors.Is(err, broker.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestMemoryServerVersion(t *testing.T) {
	m := fakes.NewMemory(fakes.Script{ServerVersion: 176})
	defer m.Close()
	info, err := m.Connect(t.Context(), broker.ConnectParams{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(broker.ConnectInfo{Accounts: []string{}, ServerVersion: 176}, info); diff != "" {
		t.Errorf("ConnectInfo (-want +got):\n%s", diff)
	}
}

func connectedMemory(t *testing.T, s fakes.Script, opts ...fakes.MemoryOption) *fakes.Memory {
	t.Helper()
	m := fakes.NewMemory(s, opts...)
	t.Cleanup(func() { _ = m.Close() })
	if _, err := m.Connect(t.Context(), broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMemoryServesScript(t *testing.T) {
	s := fakes.DefaultScript()
	m := connectedMemory(t, s)
	ctx := t.Context()

	accts, err := m.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.Accounts, accts); diff != "" {
		t.Errorf("Accounts (-want +got):\n%s", diff)
	}
	pos, err := m.Positions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.Positions, pos); diff != "" {
		t.Errorf("Positions (-want +got):\n%s", diff)
	}
	// DefaultScript holds exactly the default tags for both accounts.
	sums, err := m.AccountSummary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.Summary, sums); diff != "" {
		t.Errorf("AccountSummary() (-want +got):\n%s", diff)
	}
	sums, err = m.AccountSummary(ctx, "NetLiquidation", "Nope", "AccountType", "NetLiquidation")
	if err != nil {
		t.Fatal(err)
	}
	var want []broker.AccountSummary
	for _, a := range s.Summary {
		want = append(want, broker.AccountSummary{Account: a.Account, Values: map[string]broker.SummaryValue{
			"NetLiquidation": a.Values["NetLiquidation"], "AccountType": a.Values["AccountType"]}})
	}
	if diff := cmp.Diff(want, sums); diff != "" {
		t.Errorf("AccountSummary(NetLiquidation, Nope, AccountType) (-want +got):\n%s", diff)
	}
	sums, err = m.AccountSummary(ctx, "$LEDGER")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.Summary, sums); diff != "" {
		t.Errorf("AccountSummary($LEDGER) (-want +got):\n%s", diff)
	}
	sums, err = m.AccountSummary(ctx, "Nope")
	if err != nil || sums == nil || len(sums) != 0 {
		t.Errorf("AccountSummary(Nope) = %#v, %v; want an empty, non-nil slice", sums, err)
	}
	for _, bad := range []string{"", "A,B", "A\x00"} {
		if _, err := m.AccountSummary(ctx, "NetLiquidation", bad); !errors.Is(err, broker.ErrInvalidArgument) {
			t.Errorf("AccountSummary(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}

	// Results are copies: changing them changes neither the Memory nor s.
	accts[0], pos[0].Quantity = "changed", broker.MustDecimal("1")
	accts2, _ := m.Accounts(ctx)
	pos2, _ := m.Positions(ctx)
	if diff := cmp.Diff(fakes.DefaultScript().Accounts, accts2); diff != "" {
		t.Errorf("Accounts after changing a result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fakes.DefaultScript().Positions, pos2); diff != "" {
		t.Errorf("Positions after changing a result (-want +got):\n%s", diff)
	}

	// SetScript changes the answers of later calls; the session stays open.
	s2 := fakes.Script{Accounts: []string{"DU1"}, Positions: s.Positions[:1]}
	m.SetScript(s2)
	if diff := cmp.Diff(s2, m.Script()); diff != "" {
		t.Errorf("Script after SetScript (-want +got):\n%s", diff)
	}
	pos, err = m.Positions(ctx)
	if err != nil || !cmp.Equal(s2.Positions, pos) {
		t.Errorf("Positions after SetScript = %v, %v; want %v", pos, err, s2.Positions)
	}
}

// TestMemoryAgreesWithGateway: the ibkr adapter over a Gateway and a Memory
// serving the same Script answer the same.
func TestMemoryAgreesWithGateway(t *testing.T) {
	s := fakes.DefaultScript()
	s.Summary = append(s.Summary, broker.AccountSummary{Account: s.Summary[0].Account,
		Values: map[string]broker.SummaryValue{"Extra": {Value: "1", Currency: "USD"}}})
	g := startGateway(t, s)
	a := ibkr.New()
	defer a.Close()
	ctx, cancel := context.WithTimeout(t.Context(), hangLimit)
	defer cancel()
	if _, err := a.Connect(ctx, g.ConnectParams(1)); err != nil {
		t.Fatal(err)
	}
	m := connectedMemory(t, s)
	for _, tags := range [][]string{nil, {"NetLiquidation", "AccountType"}, {"Extra", "Cushion"}, {"Nope"},
		{"$LEDGER"}, {" NetLiquidation ", "$LEDGER:ALL"}} {
		want, err := a.AccountSummary(ctx, tags...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.AccountSummary(ctx, tags...)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("AccountSummary(%q) (-adapter +memory):\n%s", tags, diff)
		}
	}
	wantP, err := a.Positions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gotP, _ := m.Positions(ctx)
	if diff := cmp.Diff(wantP, gotP); diff != "" {
		t.Errorf("Positions (-adapter +memory):\n%s", diff)
	}
}

func TestMemoryHonoursContext(t *testing.T) {
	m := connectedMemory(t, fakes.DefaultScript())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	errs := memCalls(ctx, m)
	_, errs["Connect"] = m.Connect(ctx, broker.ConnectParams{})
	errs["Disconnect"] = m.Disconnect(ctx)
	for name, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", name, err)
		}
	}
	for name, err := range memCalls(t.Context(), m) {
		if err != nil {
			t.Errorf("%s after cancelled calls = %v; the Memory must stay usable and connected", name, err)
		}
	}
}

func TestMemoryHook(t *testing.T) {
	type call struct {
		Op   broker.Op
		Tags []string
	}
	var (
		mu    sync.Mutex
		calls []call
		fail  error
	)
	boom := &broker.APIError{ReqID: 9, Code: broker.IBCodeNoSecurityDefinition, Message: "No security definition"}
	m := fakes.NewMemory(fakes.DefaultScript(), fakes.WithHook(func(ctx context.Context, op broker.Op, tags []string) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{op, slices.Clone(tags)})
		return fail
	}))
	defer m.Close()
	ctx := t.Context()

	// A failing hook fails the operation with its error, even before Connect.
	fail = fmt.Errorf("positions: %w", boom)
	if _, err := m.Positions(ctx); !errors.Is(err, fail) || !errors.Is(err, boom) {
		t.Errorf("Positions with a failing hook = %v, want %v", err, fail)
	}
	if _, err := m.Connect(ctx, broker.ConnectParams{}); !errors.Is(err, boom) || m.Connected() {
		t.Errorf("Connect with a failing hook = %v (connected %v), want %v and no session", err, m.Connected(), boom)
	}
	mu.Lock()
	fail = nil
	calls = nil
	mu.Unlock()

	if _, err := m.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	for name, err := range memCalls(ctx, m) {
		if err != nil {
			t.Errorf("%s = %v", name, err)
		}
	}
	if _, err := m.AccountSummary(ctx, "A", "B"); err != nil {
		t.Fatal(err)
	}
	if err := m.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	want := []call{{broker.OpConnect, nil}, {broker.OpAccounts, nil}, {broker.OpPositions, nil},
		{broker.OpAccountSummary, nil}, {broker.OpPing, nil}, {broker.OpAccountSummary, []string{"A", "B"}},
		{broker.OpDisconnect, nil}}
	mu.Lock()
	got := calls
	mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hook calls (-want +got):\n%s", diff)
	}
}

// TestMemorySlowHook: a blocking hook simulates a slow call; the caller's
// deadline or Close ends it, and the Memory stays usable after a deadline.
func TestMemorySlowHook(t *testing.T) {
	entered := make(chan struct{}, 1)
	m := connectedMemory(t, fakes.DefaultScript(), fakes.WithHook(func(ctx context.Context, op broker.Op, tags []string) error {
		if !slices.Contains(tags, "slow") {
			return nil
		}
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := m.AccountSummary(ctx, "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow AccountSummary past its deadline = %v, want DeadlineExceeded", err)
	}
	<-entered
	if err := m.Ping(t.Context()); err != nil {
		t.Errorf("Ping after a timed-out call = %v", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := m.AccountSummary(context.Background(), "slow")
		done <- err
	}()
	<-entered
	_ = m.Close()
	select {
	case err := <-done:
		if !errors.Is(err, broker.ErrClosed) {
			t.Errorf("slow AccountSummary ended by Close = %v, want ErrClosed", err)
		}
	case <-time.After(hangLimit):
		t.Fatal("Close did not end a blocked call")
	}
}

func TestMemoryEvents(t *testing.T) {
	m := fakes.NewMemory(fakes.Script{})
	ctx, cancel := context.WithCancel(t.Context())
	ch1, err := m.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch2, err := m.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	want := []broker.Event{
		{Kind: broker.EventConnectionLost, Time: at, Code: broker.IBCodeConnectivityLost, Message: "lost"},
		{Kind: broker.EventNotice, Time: at.Add(time.Second), Code: broker.IBCodeMarketDataFarmOK, Message: "farm OK"},
	}
	for _, e := range want {
		m.Publish(e)
	}
	for i, ch := range []<-chan broker.Event{ch1, ch2} {
		var got []broker.Event
		for range want {
			got = append(got, <-ch)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("subscriber %d events (-want +got):\n%s", i, diff)
		}
	}
	cancel()
	if _, ok := <-ch1; ok {
		t.Error("subscriber 1 got an event after its context ended; want its channel closed")
	}
	_ = m.Close()
	if _, ok := <-ch2; ok {
		t.Error("subscriber 2 got an event after Close; want its channel closed")
	}
	m.Publish(want[0]) // after Close: no effect, no panic
}

// TestMemoryConcurrent exercises every method at once under the race detector.
func TestMemoryConcurrent(t *testing.T) {
	m := fakes.NewMemory(fakes.DefaultScript(), fakes.WithHook(func(ctx context.Context, _ broker.Op, _ []string) error {
		return ctx.Err()
	}))
	ctx := t.Context()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := m.Subscribe(sctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				_, _ = m.Connect(ctx, broker.ConnectParams{ClientID: int64(i)})
				memCalls(ctx, m)
				m.Publish(broker.Event{Kind: broker.EventNotice})
				m.SetScript(m.Script())
				if i == 0 {
					_ = m.Disconnect(ctx)
				}
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			<-ch
		}
	})
	wg.Wait()
	_ = m.Close()
}

// ExampleMemory serves a Script from memory, with a hook that fails Ping.
func ExampleMemory() {
	ctx := context.Background()
	m := fakes.NewMemory(fakes.DefaultScript(), fakes.WithHook(func(ctx context.Context, op broker.Op, tags []string) error {
		if op == broker.OpPing {
			return fmt.Errorf("scripted: %w", broker.ErrUnavailable)
		}
		return nil
	}))
	defer m.Close()

	_, err := m.Accounts(ctx)
	fmt.Println(err)
	info, _ := m.Connect(ctx, broker.ConnectParams{})
	fmt.Println(info.Accounts, info.ServerVersion)
	sums, _ := m.AccountSummary(ctx, "NetLiquidation")
	for _, s := range sums {
		fmt.Println(s.Account, s.Values["NetLiquidation"].Value, s.Values["NetLiquidation"].Currency)
	}
	fmt.Println(m.Ping(ctx))
	// Output:
	// broker: not connected
	// [DU1234567 DU7654321] 225
	// DU1234567 100523.45 USD
	// DU7654321 51234.5 EUR
	// scripted: broker: unavailable
}
