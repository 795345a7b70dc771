package ibkr_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// Lost answers and never-ending lists (issue 10, items 2 and 3). Request 1 on
// every connection is Connect's REQ_CURRENT_TIME.

// connected returns a gateway serving s, an Adapter connected to it and a
// context for the test's calls.
func connected(t *testing.T, s fakes.Script, opts ...ibkr.Option) (*fakes.Gateway, *ibkr.Adapter, context.Context) {
	t.Helper()
	g := newGateway(t, s)
	a := ibkr.New(append([]ibkr.Option{ibkr.WithLogger(testLogger(t))}, opts...)...)
	t.Cleanup(func() { _ = a.Close() })
	ctx := ctxFor(t)
	if _, err := a.Connect(ctx, params(g)); err != nil {
		t.Fatal(err)
	}
	return g, a, ctx
}

// shortCtx is a call bound short enough to give up on a lost answer quickly.
func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

// count returns how many messages with this id the connections sent.
func count(g *fakes.Gateway, msgID int) int {
	n := 0
	for _, c := range g.Connections() {
		for _, r := range c.Requests {
			if r.ID == msgID {
				n++
			}
		}
	}
	return n
}

// waitCount waits until the gateway has read n messages with this id.
func waitCount(t *testing.T, g *fakes.Gateway, msgID, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := g.WaitRequests(ctx, msgID, n); err != nil {
		t.Fatal(err)
	}
}

const (
	msgReqPositions    = fakes.MsgReqPositions
	msgCancelPositions = fakes.MsgCancelPositions
)

// TestLostPositionEnd: one POSITION_END that never comes costs the call that
// waited for it, not the session: the request is cancelled on the wire, the
// next Positions sends a fresh REQ_POSITIONS and gets exactly the script's
// rows (the abandoned request's late rows are not mixed in).
func TestLostPositionEnd(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.NoEndMarkerRequest = 2
	g, a, ctx := connected(t, s)
	if _, err := a.Positions(shortCtx(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Positions without POSITION_END: %v, want DeadlineExceeded", err)
	}
	waitCount(t, g, msgCancelPositions, 1)
	for i := range 3 {
		got, err := a.Positions(ctx)
		if err != nil {
			t.Fatalf("Positions %d after the lost POSITION_END: %v", i, err)
		}
		if diff := cmp.Diff(s.Positions, got); diff != "" {
			t.Fatalf("Positions %d after the lost POSITION_END (-script +got):\n%s", i, diff)
		}
	}
	if n := count(g, msgReqPositions); n != 4 {
		t.Errorf("gateway read %d REQ_POSITIONS, want 4 (one per call)", n)
	}
}

// TestLostCurrentTime: one CURRENT_TIME that never comes costs that Ping
// only; every later Ping succeeds.
func TestLostCurrentTime(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.UnansweredRequest = 2
	_, a, ctx := connected(t, s)
	if err := a.Ping(shortCtx(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping without an answer: %v, want DeadlineExceeded", err)
	}
	for i := range 5 {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := a.Ping(pctx)
		cancel()
		if err != nil {
			t.Fatalf("Ping %d after the lost answer: %v", i, err)
		}
	}
	if _, err := a.Positions(ctx); err != nil {
		t.Errorf("Positions after the lost answer: %v", err)
	}
}

// TestEndlessPositions: rows that never reach POSITION_END. A call that gives
// up returns at once and the request is cancelled on the wire (the gateway
// stops sending); a call that waits fails with ErrProtocol once the answer
// passes the bound, the request is cancelled, and the session lives on.
func TestEndlessPositions(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.EndlessPositions = true
	g := newGateway(t, s)
	ctx := ctxFor(t)

	unbounded := ibkr.New(ibkr.WithLogger(testLogger(t)), ibkr.WithMaxAnswer(math.MaxInt, math.MaxInt))
	t.Cleanup(func() { _ = unbounded.Close() })
	if _, err := unbounded.Connect(ctx, params(g)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := unbounded.Positions(shortCtx(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("endless Positions with a deadline: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("endless Positions returned %v after its 300ms deadline", d)
	}
	waitCount(t, g, msgCancelPositions, 1)
	if err := unbounded.Ping(ctx); err != nil {
		t.Errorf("Ping after the cancelled call: %v", err)
	}
	if err := unbounded.Close(); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, g)

	a := ibkr.New(ibkr.WithLogger(testLogger(t)), ibkr.WithMaxAnswer(5000, 0))
	t.Cleanup(func() { _ = a.Close() })
	if _, err := a.Connect(ctx, params(g)); err != nil {
		t.Fatal(err)
	}
	_, err := a.Positions(ctx)
	if !errors.Is(err, broker.ErrProtocol) || errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("endless Positions: %v, want ErrProtocol (and a live session)", err)
	}
	waitCount(t, g, msgCancelPositions, 2)
	if err := a.Ping(ctx); err != nil {
		t.Errorf("Ping after the bound: %v", err)
	}
}

// TestSummaryBound: an account summary answer past the bound fails
// that call with ErrProtocol; the session lives on.
func TestSummaryBound(t *testing.T) {
	g := newGateway(t, fakes.DefaultScript())
	a := ibkr.New(ibkr.WithLogger(testLogger(t)), ibkr.WithMaxAnswer(3, 0))
	t.Cleanup(func() { _ = a.Close() })
	ctx := ctxFor(t)
	if _, err := a.Connect(ctx, params(g)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AccountSummary(ctx, "NetLiquidation", "TotalCashValue"); !errors.Is(err, broker.ErrProtocol) {
		t.Fatalf("AccountSummary of 4 rows with a bound of 3: %v, want ErrProtocol", err)
	}
	if _, err := a.AccountSummary(ctx, "NetLiquidation"); err != nil {
		t.Errorf("AccountSummary of 2 rows: %v", err)
	}
}

// TestEmptyFrame: an empty frame in place of an answer (scmhub skips it) costs
// the call it replaced, not the process or the session.
func TestEmptyFrame(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.EmptyFrameRequest = 2
	_, a, ctx := connected(t, s)
	if err := a.Ping(shortCtx(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping answered with an empty frame: %v, want DeadlineExceeded", err)
	}
	if err := a.Ping(ctx); err != nil {
		t.Errorf("Ping after the empty frame: %v", err)
	}
	if _, err := a.Positions(ctx); err != nil {
		t.Errorf("Positions after the empty frame: %v", err)
	}
}
