// The state machine's session and data-call actions (connect, reads, bursts, script changes, slow replies).

package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
)

func (m *machine) connect(t *rapid.T) {
	ctx, cancel := m.ctx(t)
	defer cancel()
	if m.dead {
		_, err := m.b.Connect(ctx, m.env.Params)
		expect(t, "Connect after the worker crashed", err, broker.ErrUnavailable)
		return
	}
	if m.connected {
		_, err := m.b.Connect(ctx, m.env.Params)
		expect(t, "Connect while connected", err, broker.ErrAlreadyConnected)
		return
	}
	waitGatewayIdle(t, m.env, "before Connect")
	info, err := m.b.Connect(ctx, m.env.Params)
	expect(t, "Connect", err, nil)
	want := broker.ConnectInfo{Accounts: m.script.Accounts, ServerVersion: m.f.serverVersion()}
	if diff := cmp.Diff(want, info, cmpOpts...); diff != "" {
		t.Fatalf("Connect info (-model +got):\n%s", diff)
	}
	m.sessionStarted()
}

// sessionStarted records a new session on the gateway's current script.
func (m *machine) sessionStarted() {
	m.session++
	m.connected = true
	m.mdType = broker.MarketDataLive
	m.accounts = m.script.Accounts
	m.slow = m.script.Faults.ReplyDelay > 0
}

func (m *machine) disconnect(t *rapid.T) {
	ctx, cancel := m.ctx(t)
	defer cancel()
	err := m.b.Disconnect(ctx)
	if m.dead && errors.Is(err, broker.ErrUnavailable) {
		err = nil // the crashed worker cannot be told; nil would do as well
	}
	expect(t, "Disconnect", err, nil)
	m.quotesLost(t, "after Disconnect", false)
	m.connected = false
	waitGatewayIdle(t, m.env, "after Disconnect")
}

// call is one drawn read call and the check of its answer against the model.
type call struct {
	name string
	run  func(ctx context.Context) error // makes the call and compares; nil or the error
}

// drawCall draws a read call and binds it to the model's current prediction.
func (m *machine) drawCall(t *rapid.T, label string) call {
	kind := rapid.SampledFrom([]string{"Accounts", "Positions", "AccountSummary", "Ping"}).Draw(t, label)
	wantErr := m.wantErr()
	b := m.b
	switch kind {
	case "Accounts":
		want := m.accounts
		return call{kind, func(ctx context.Context) error {
			got, err := b.Accounts(ctx)
			return compare(err, wantErr, want, got)
		}}
	case "Positions":
		want := m.script.Positions
		return call{kind, func(ctx context.Context) error {
			got, err := b.Positions(ctx)
			return compare(err, wantErr, want, got)
		}}
	case "AccountSummary":
		tags := GenSummaryTags().Draw(t, label+"Tags")
		want := ExpectedSummary(m.script, tags...)
		return call{fmt.Sprintf("AccountSummary%q", tags), func(ctx context.Context) error {
			got, err := b.AccountSummary(ctx, tags...)
			return compare(err, wantErr, want, got)
		}}
	default:
		return call{kind, func(ctx context.Context) error {
			return compare[any](b.Ping(ctx), wantErr, nil, nil)
		}}
	}
}

// compare returns nil if the answer (got, err) is the predicted one.
func compare[T any](err, wantErr error, want, got T) error {
	switch {
	case wantErr == nil && err != nil:
		return fmt.Errorf("unexpected error %w", err)
	case wantErr != nil && !errors.Is(err, wantErr):
		return fmt.Errorf("got error %v, want one matching %v", err, wantErr)
	case wantErr == nil:
		if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
			return fmt.Errorf("answer differs from the model (-model +got):\n%s", diff)
		}
	}
	return nil
}

func (m *machine) accountsCall(t *rapid.T) {
	ctx, cancel := m.ctx(t)
	defer cancel()
	got, err := m.b.Accounts(ctx)
	if e := compare(err, m.wantErr(), m.accounts, got); e != nil {
		t.Fatalf("Accounts: %v", e)
	}
}

func (m *machine) positionsCall(t *rapid.T) {
	ctx, cancel := m.ctx(t)
	defer cancel()
	got, err := m.b.Positions(ctx)
	if e := compare(err, m.wantErr(), m.script.Positions, got); e != nil {
		t.Fatalf("Positions: %v", e)
	}
}

func (m *machine) summaryCall(t *rapid.T) {
	tags := GenSummaryTags().Draw(t, "tags")
	ctx, cancel := m.ctx(t)
	defer cancel()
	got, err := m.b.AccountSummary(ctx, tags...)
	if e := compare(err, m.wantErr(), ExpectedSummary(m.script, tags...), got); e != nil {
		t.Fatalf("AccountSummary(%q): %v", tags, e)
	}
}

// readAll makes every read once (AccountSummary with the default tags) and
// compares each answer with the model.
func (m *machine) readAll(t *rapid.T) {
	m.accountsCall(t)
	m.positionsCall(t)
	ctx, cancel := m.ctx(t)
	defer cancel()
	got, err := m.b.AccountSummary(ctx)
	if e := compare(err, m.wantErr(), ExpectedSummary(m.script), got); e != nil {
		t.Fatalf("AccountSummary(): %v", e)
	}
}

func (m *machine) pingCall(t *rapid.T) {
	ctx, cancel := m.ctx(t)
	defer cancel()
	expect(t, "Ping", m.b.Ping(ctx), m.wantErr())
}

func (m *machine) burst(t *rapid.T) {
	n := rapid.IntRange(2, 12).Draw(t, "goroutines")
	calls := make([]call, n)
	for i := range calls {
		calls[i] = m.drawCall(t, fmt.Sprintf("call%d", i))
	}
	ctx, cancel := m.ctx(t)
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = c.run(ctx)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("burst call %d of %d, %s: %v", i, n, calls[i].name, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func (m *machine) setScript(t *rapid.T) {
	s := withOrderMarket(machineScript().Draw(t, "newScript"))
	s.Faults = m.script.Faults
	if cmp.Equal(s.Positions, m.script.Positions, cmpOpts...) {
		// A change nobody can see proves nothing: make one.
		// (At most one position per account and contract id, as in GenScript.)
		extra := GenPosition(s.Accounts).Draw(t, "extraPosition")
		for slices.ContainsFunc(s.Positions, func(p broker.Position) bool { return positionKey(p) == positionKey(extra) }) {
			extra.Contract.ConID++
		}
		s.Positions = append(slices.Clone(s.Positions), extra)
	}
	live := m.connected && !m.dead
	if live {
		m.positionsCall(t) // the list before the change ...
	}
	m.env.Gateway.SetScript(s)
	m.script = s
	if live {
		m.positionsCall(t) // ... and after: the change, not a cache
	}
}

func (m *machine) toggleSlow(t *rapid.T) {
	s := m.script.Clone()
	if s.Faults.ReplyDelay > 0 {
		s.Faults.ReplyDelay = 0
	} else {
		s.Faults.ReplyDelay = SlowReplyDelay
	}
	m.env.Gateway.SetScript(s)
	m.script = s
}

// read makes one Positions, AccountSummary (default tags) or Ping call and
// returns its error only.
func (m *machine) read(ctx context.Context, kind string) error {
	var err error
	switch kind {
	case "Positions":
		_, err = m.b.Positions(ctx)
	case "AccountSummary":
		_, err = m.b.AccountSummary(ctx)
	default:
		err = m.b.Ping(ctx)
	}
	return err
}

func (m *machine) cancelSlow(t *rapid.T) {
	if !m.connected || !m.slow {
		t.Skip("needs a session with slow replies")
	}
	kind := rapid.SampledFrom([]string{"Positions", "AccountSummary", "Ping"}).Draw(t, "slowCall")
	ctx, cancel := context.WithTimeout(t.Context(), SlowReplyDelay/5)
	err := m.read(ctx, kind)
	cancel()
	m.pingAnswerMayBeLate = true // its CURRENT_TIME (ping or fence) is answered later
	expect(t, kind+" with a deadline the slow gateway cannot meet", err, context.DeadlineExceeded)
	// The session goes on; the Ping also lets the gateway finish the abandoned
	// request, so that its answer cannot be taken for a later call's.
	ctx2, cancel2 := m.ctx(t)
	defer cancel2()
	expect(t, "Ping after a call timed out", m.b.Ping(ctx2), nil)
}
