package fakes

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/brokerkit/brokerkit/broker"
)

// Hook is called by a Memory before each operation with the operation's name
// and, for broker.OpAccountSummary, the tags exactly as the caller passed them
// (nil for every other operation). A non-nil error fails the operation and is
// returned as is, so a hook can inject any error, including an *broker.APIError.
// A hook that blocks simulates a slow call: it should return when ctx is done,
// which happens when the caller's context ends or the Memory is closed.
//
// A hook runs without any lock of the Memory held, so it may call the Memory's
// methods (SetScript, Publish, ...), and it may run concurrently with itself.
type Hook func(ctx context.Context, op broker.Op, tags []string) error

// MemoryOption configures a Memory.
type MemoryOption func(*Memory)

// WithHook installs h, called before each operation of the Memory (see Hook).
func WithHook(h Hook) MemoryOption { return func(m *Memory) { m.hook = h } }

// Memory is an in-memory broker.Broker that serves a Script's accounts,
// positions and account summary without any gateway, socket or goroutine.
// It honours the whole broker.Broker contract: ErrNotConnected without a
// session, ErrAlreadyConnected on a second Connect, ErrInvalidArgument for bad
// ConnectParams or summary tags, ErrClosed after Close, a done context failing
// the call with ctx.Err(), and Subscribe through a broker.Hub fed by Publish.
//
// AccountSummary answers what the ibkr adapter answers over a Gateway serving
// the same Script: rows are selected exactly as the Gateway selects them ("$"
// tags stand for all of an account's tags) and grouped per account in the
// order accounts are first named. The Script's Faults are ignored; use a Hook
// to inject failures and delays. A Memory is safe for concurrent use.
type Memory struct {
	hook    Hook
	hub     broker.Hub
	closing context.Context // done once Close has been called
	close   context.CancelFunc

	mu        sync.Mutex
	script    Script
	connected bool
	closed    bool
	subs      map[*memSub]struct{} // account update streams (readside.go)
}

var _ broker.Broker = (*Memory)(nil)

// NewMemory returns a disconnected Memory serving a copy of s.
func NewMemory(s Script, opts ...MemoryOption) *Memory {
	m := &Memory{script: s.Clone()}
	m.closing, m.close = context.WithCancel(context.Background())
	for _, o := range opts {
		o(m)
	}
	return m
}

// Script returns a copy of the Script being served.
func (m *Memory) Script() Script {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.script.Clone()
}

// SetScript replaces the Script being served by a copy of s; calls that start
// afterwards answer from it. The session, if any, stays open.
func (m *Memory) SetScript(s Script) {
	s = s.Clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.script = s
	m.publishLocked()
}

// Connected reports whether a session is open.
func (m *Memory) Connected() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.connected
}

// Publish delivers e to every current subscriber (see broker.Hub.Publish).
// After Close it does nothing.
func (m *Memory) Publish(e broker.Event) { m.hub.Publish(e) }

// begin runs the checks every operation starts with: the caller's context,
// Close, then the hook.
func (m *Memory) begin(ctx context.Context, op broker.Op, tags []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fakes: memory: %s: %w", op, err)
	}
	if m.closing.Err() != nil {
		return broker.ErrClosed
	}
	if m.hook == nil {
		return nil
	}
	hctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(m.closing, cancel)
	err := m.hook(hctx, op, tags)
	stop()
	cancel()
	switch {
	case m.closing.Err() != nil:
		return broker.ErrClosed
	case err != nil:
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("fakes: memory: %s: %w", op, ctx.Err())
	}
	return nil
}

// session returns the Script to answer from, or ErrClosed, or ErrNotConnected
// if there is no session.
func (m *Memory) session() (Script, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return Script{}, broker.ErrClosed
	case !m.connected:
		return Script{}, broker.ErrNotConnected
	}
	return m.script, nil
}

// call is begin then session.
func (m *Memory) call(ctx context.Context, op broker.Op) (Script, error) {
	if err := m.begin(ctx, op, nil); err != nil {
		return Script{}, err
	}
	return m.session()
}

// Connect implements broker.Broker: it validates p and opens the session,
// answering the Script's accounts and server version (DefaultServerVersion if 0).
func (m *Memory) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if err := m.begin(ctx, broker.OpConnect, nil); err != nil {
		return broker.ConnectInfo{}, err
	}
	if err := p.Validate(); err != nil {
		return broker.ConnectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return broker.ConnectInfo{}, broker.ErrClosed
	case m.connected:
		return broker.ConnectInfo{}, broker.ErrAlreadyConnected
	}
	m.connected = true
	return broker.ConnectInfo{Accounts: nonNil(slices.Clone(m.script.Accounts)), ServerVersion: m.script.serverVersion()}, nil
}

// Disconnect implements broker.Broker; it is idempotent.
func (m *Memory) Disconnect(ctx context.Context) error {
	if err := m.begin(ctx, broker.OpDisconnect, nil); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return broker.ErrClosed
	}
	m.connected = false
	m.endSubsLocked()
	return nil
}

// Accounts implements broker.Broker with the Script's accounts.
func (m *Memory) Accounts(ctx context.Context) ([]string, error) {
	s, err := m.call(ctx, broker.OpAccounts)
	if err != nil {
		return nil, err
	}
	return nonNil(slices.Clone(s.Accounts)), nil
}

// Positions implements broker.Broker with the Script's positions, in order.
func (m *Memory) Positions(ctx context.Context) ([]broker.Position, error) {
	s, err := m.call(ctx, broker.OpPositions)
	if err != nil {
		return nil, err
	}
	return nonNil(slices.Clone(s.Positions)), nil
}

// AccountSummary implements broker.Broker with the Script's summary values for
// tags (broker.DefaultSummaryTags when none), selected as the Gateway selects
// them. A tag that is empty or contains a comma or NUL fails with
// broker.ErrInvalidArgument. The result is never nil.
func (m *Memory) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	if err := m.begin(ctx, broker.OpAccountSummary, tags); err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		tags = broker.DefaultSummaryTags
	}
	for _, t := range tags {
		if t == "" || strings.ContainsAny(t, ",\x00") {
			return nil, fmt.Errorf("%w: summary tag %q", broker.ErrInvalidArgument, t)
		}
	}
	s, err := m.session()
	if err != nil {
		return nil, err
	}
	out := []broker.AccountSummary{}
	index := map[string]int{}
	eachSummaryRow(s.Summary, strings.Join(tags, ","), func(account, tag string, v broker.SummaryValue) {
		i, ok := index[account]
		if !ok {
			i = len(out)
			index[account] = i
			out = append(out, broker.AccountSummary{Account: account, Values: map[string]broker.SummaryValue{}})
		}
		out[i].Values[tag] = v
	})
	return out, nil
}

// Ping implements broker.Broker; it succeeds whenever a session is open.
func (m *Memory) Ping(ctx context.Context) error {
	_, err := m.call(ctx, broker.OpPing)
	return err
}

// Subscribe implements broker.Broker: the channel receives what Publish
// publishes until ctx is done or the Memory is closed.
func (m *Memory) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	return m.hub.Subscribe(ctx)
}

// Close implements broker.Broker: it ends the session, cancels the context of
// every running hook, closes every subscription and makes every later call fail
// with broker.ErrClosed. It is idempotent and always returns nil.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed, m.connected = true, false
	m.endSubsLocked()
	m.mu.Unlock()
	m.close()
	m.hub.Close()
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
