package robust

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// ---- a fake clock ----

// fakeClock is a Clock that moves only when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	made    []time.Duration // durations of every timer ever created, in order
	changed chan struct{}
}

type fakeTimer struct {
	clk  *fakeClock
	c    chan time.Time
	when time.Time
	d    time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 9, 30, 0, 0, time.UTC), changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, c: make(chan time.Time, 1), when: c.now.Add(d), d: d}
	c.made = append(c.made, d)
	if d <= 0 {
		t.c <- c.now
	} else {
		c.timers = append(c.timers, t)
	}
	c.notifyLocked()
	return t
}

func (c *fakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	c := t.clk
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			c.notifyLocked()
			return true
		}
	}
	return false
}

// Advance moves the clock forward by d and fires every timer that is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].when.Before(c.timers[j].when) })
	keep := c.timers[:0]
	for _, t := range c.timers {
		if !t.when.After(c.now) {
			t.c <- c.now
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.notifyLocked()
}

// pending returns the durations of the timers not yet fired or stopped.
func (c *fakeClock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ds []time.Duration
	for _, t := range c.timers {
		ds = append(ds, t.d)
	}
	return ds
}

// waitPending blocks until some pending timer has duration d (any duration if d < 0)
// and returns it; it fails the test after a generous real-time bound.
func (c *fakeClock) waitPending(t testing.TB, d time.Duration) time.Duration {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		for _, x := range c.timers {
			if d < 0 || x.d == d {
				c.mu.Unlock()
				return x.d
			}
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no pending timer of %v after 10s (pending: %v)", d, c.pending())
		}
	}
}

// ---- a scripted in-memory Broker ----

// errBlock in a script makes the call block until its context is done.
var errBlock = errors.New("block until the context is done")

const stubServerVersion = 176

// stub is a scripted broker.Broker. Each operation consumes the next error of its
// script (nil means succeed); with the script empty it behaves like a healthy session.
type stub struct {
	id  int
	hub broker.Hub

	mu        sync.Mutex
	connected bool
	closed    bool
	dead      bool // every call fails with ErrUnavailable, as a killed child would
	script    map[broker.Op][]error
	calls     map[broker.Op]int
	connects  []broker.ConnectParams
	exited    chan struct{}
	quotes    []*stubQuotes // every quote subscription, in order (quotes_test.go)
	keepOpen  bool          // quote channels outlive cancellation and death, as a lagging transport's would
}

func newStub(id int) *stub {
	return &stub{id: id, script: map[broker.Op][]error{}, calls: map[broker.Op]int{}, exited: make(chan struct{})}
}

func (s *stub) Pid() int { return 1000 + s.id }

// fail appends errors to op's script.
func (s *stub) fail(op broker.Op, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script[op] = append(s.script[op], errs...)
}

func (s *stub) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead = true
	s.connected = false
	s.endQuotesLocked()
}

func (s *stub) count(op broker.Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *stub) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *stub) isConnected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

func (s *stub) clientIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int64
	for _, p := range s.connects {
		ids = append(ids, p.ClientID)
	}
	return ids
}

// dropSession makes the session vanish as a dropped socket would.
func (s *stub) dropSession() {
	s.mu.Lock()
	s.connected = false
	s.endQuotesLocked()
	s.mu.Unlock()
	s.hub.Publish(broker.Event{Kind: broker.EventConnectionLost, Message: "socket closed"})
}

func (s *stub) run(ctx context.Context, op broker.Op, needSession bool) error {
	s.mu.Lock()
	s.calls[op]++
	var err error
	switch {
	case s.closed:
		err = broker.ErrClosed
	case s.dead:
		err = fmt.Errorf("%w: worker %d is dead", broker.ErrUnavailable, s.id)
	case len(s.script[op]) > 0:
		err = s.script[op][0]
		s.script[op] = s.script[op][1:]
	case needSession && !s.connected:
		err = broker.ErrNotConnected
	}
	s.mu.Unlock()
	if err == errBlock {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (s *stub) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if err := s.run(ctx, broker.OpConnect, false); err != nil {
		return broker.ConnectInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connected {
		return broker.ConnectInfo{}, broker.ErrAlreadyConnected
	}
	s.connected = true
	s.connects = append(s.connects, p)
	return broker.ConnectInfo{Accounts: []string{"DU111", "DU222"}, ServerVersion: stubServerVersion}, nil
}

func (s *stub) Disconnect(ctx context.Context) error {
	if err := s.run(ctx, broker.OpDisconnect, false); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected = false
	return nil
}

func (s *stub) Accounts(ctx context.Context) ([]string, error) {
	if err := s.run(ctx, broker.OpAccounts, true); err != nil {
		return nil, err
	}
	return []string{"DU111", "DU222"}, nil
}

func (s *stub) Positions(ctx context.Context) ([]broker.Position, error) {
	if err := s.run(ctx, broker.OpPositions, true); err != nil {
		return nil, err
	}
	return []broker.Position{{
		Account:  "DU111",
		Contract: broker.Contract{ConID: 265598, Symbol: "AAPL", SecType: "STK", Currency: "USD"},
		Quantity: broker.DecimalFromInt(int64(100 + s.id)), // tells which stub served the call
		AvgCost:  broker.MustDecimal("150.25"),
	}}, nil
}

func (s *stub) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	if err := s.run(ctx, broker.OpAccountSummary, true); err != nil {
		return nil, err
	}
	return []broker.AccountSummary{{Account: "DU111", Values: map[string]broker.SummaryValue{
		"NetLiquidation": {Value: "100000.00", Currency: "USD"},
	}}}, nil
}

func (s *stub) AccountUpdates(ctx context.Context, account string) (broker.AccountUpdate, error) {
	if err := s.run(ctx, broker.OpAccountUpdates, true); err != nil {
		return broker.AccountUpdate{}, err
	}
	return broker.AccountUpdate{Account: account, Values: []broker.AccountValue{{Key: "NetLiquidation",
		Value: "100000.00", Currency: "USD"}}}, nil
}

func (s *stub) Executions(ctx context.Context, _ broker.ExecutionFilter) ([]broker.Execution, error) {
	if err := s.run(ctx, broker.OpExecutions, true); err != nil {
		return nil, err
	}
	return []broker.Execution{{ExecID: "e1", Shares: broker.DecimalFromInt(int64(1 + s.id))}}, nil
}

func (s *stub) OpenOrders(ctx context.Context) ([]broker.Order, error) {
	if err := s.run(ctx, broker.OpOpenOrders, true); err != nil {
		return nil, err
	}
	return []broker.Order{}, nil
}

func (s *stub) CompletedOrders(ctx context.Context) ([]broker.Order, error) {
	if err := s.run(ctx, broker.OpCompletedOrders, true); err != nil {
		return nil, err
	}
	return []broker.Order{}, nil
}

func (s *stub) Ping(ctx context.Context) error { return s.run(ctx, broker.OpPing, true) }

var stubAAPL = broker.Contract{ConID: 265598, Symbol: "AAPL", SecType: "STK", Exchange: "SMART", Currency: "USD"}

func (s *stub) ContractDetails(ctx context.Context, c broker.Contract) ([]broker.ContractDetails, error) {
	if err := s.run(ctx, broker.OpContractDetails, true); err != nil {
		return nil, err
	}
	return []broker.ContractDetails{{Contract: stubAAPL, LongName: "APPLE INC", MinTick: broker.MustDecimal("0.01")}}, nil
}

func (s *stub) Snapshot(ctx context.Context, c broker.Contract) (broker.Quote, error) {
	if err := s.run(ctx, broker.OpSnapshot, true); err != nil {
		return broker.Quote{}, err
	}
	return broker.Quote{Contract: c, Bid: broker.DecimalFromInt(int64(100 + s.id)), DataType: broker.MarketDataLive}, nil
}

func (s *stub) HistoricalBars(ctx context.Context, c broker.Contract, r broker.BarsRequest) ([]broker.Bar, error) {
	if err := s.run(ctx, broker.OpHistoricalBars, true); err != nil {
		return nil, err
	}
	return []broker.Bar{{Time: r.End, Close: broker.DecimalFromInt(int64(100 + s.id))}}, nil
}

func (s *stub) SetMarketDataType(ctx context.Context, t broker.MarketDataType) error {
	return s.run(ctx, broker.OpSetMarketDataType, true)
}

func (s *stub) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	return s.hub.Subscribe(ctx)
}

func (s *stub) Close() error {
	s.mu.Lock()
	s.closed = true
	s.connected = false
	s.endQuotesLocked()
	s.mu.Unlock()
	s.hub.Close()
	return nil
}

// exiterStub is a stub whose death can be observed through Exiter.
type exiterStub struct{ *stub }

func (e exiterStub) Exited() <-chan struct{} { return e.exited }

// farm dials stubs, numbered from 0, and remembers them.
type farm struct {
	mu       sync.Mutex
	stubs    []*stub
	dialErrs []error
	prep     func(*stub) // applied to each new stub before it is returned
	exiter   bool
}

func (f *farm) dial(ctx context.Context) (broker.Broker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.dialErrs) > 0 {
		err := f.dialErrs[0]
		f.dialErrs = f.dialErrs[1:]
		return nil, err
	}
	s := newStub(len(f.stubs))
	if f.prep != nil {
		f.prep(s)
	}
	f.stubs = append(f.stubs, s)
	if f.exiter {
		return exiterStub{s}, nil
	}
	return s, nil
}

func (f *farm) n() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.stubs)
}

func (f *farm) get(t testing.TB, i int) *stub {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.stubs) {
		t.Fatalf("stub %d was never dialed (%d dialed)", i, len(f.stubs))
	}
	return f.stubs[i]
}

// hookLog records the state-change hook's notifications.
type hookLog struct {
	mu      sync.Mutex
	changes []Change
}

func (h *hookLog) hook(c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changes = append(h.changes, c)
}

func (h *hookLog) states() []State {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []State
	for _, c := range h.changes {
		if c.From != c.To {
			out = append(out, c.To)
		}
	}
	return out
}

func (h *hookLog) breakers() []BreakerState {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []BreakerState
	for _, c := range h.changes {
		if c.BreakerFrom != c.Breaker {
			out = append(out, c.Breaker)
		}
	}
	return out
}

// eventually polls cond (real time, generous bound against hangs only).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// half is a jitter source that always draws the middle of the range.
func half() float64 { return 0.5 }

var testParams = broker.ConnectParams{Host: "127.0.0.1", Port: 4002, ClientID: 7, Timeout: time.Second}
