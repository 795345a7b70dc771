// Data cases: positions, account summary and ping answers, cancellation and concurrent calls.

package conformance

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
)

// TestPositions: Positions returns the scripted positions exactly, in the
// gateway's order, with exact decimals (fractional, negative, tiny and
// near-maximum quantities); a second call does not see leftovers of the first,
// and a third, after the gateway's positions changed, sees the new list, not a
// cached one.
func TestPositions(t TB, newBroker Factory, f Features) {
	s, env, b := connectedStandard(t, newBroker, f)
	for i := range 3 {
		if i == 2 {
			s = s.Clone()
			s.Positions = slices.Clone(s.Positions[1:])
			slices.Reverse(s.Positions)
			s.Positions[0].Quantity = broker.MustDecimal("-42.5")
			env.Gateway.SetScript(s)
		}
		ctx, cancel := callCtx(t)
		pos, err := b.Positions(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Positions #%d: %v", i+1, err)
		}
		if diff := cmp.Diff(s.Positions, pos); diff != "" {
			t.Errorf("Positions #%d (-script +got):\n%s", i+1, diff)
		}
	}
}

// TestAccountSummary: AccountSummary returns the scripted values exactly, one
// entry per account in the order the gateway first named each account (which
// is neither sorted nor the managed accounts' order, and includes an account
// the gateway does not manage), for the default tags (not every tag the
// gateway holds) and for an explicit list including a tag beyond the defaults.
func TestAccountSummary(t TB, newBroker Factory, f Features) {
	s, _, b := connectedStandard(t, newBroker, f)
	ctx, cancel := callCtx(t)
	defer cancel()
	sum, err := b.AccountSummary(ctx)
	if err != nil {
		t.Fatalf("AccountSummary(): %v", err)
	}
	if diff := cmp.Diff(ExpectedSummary(s), sum); diff != "" {
		t.Errorf("AccountSummary() (-script +got):\n%s", diff)
	}
	tags := []string{"NetLiquidation", "DayTradesRemaining", "AccountType"}
	want := ExpectedSummary(s, tags...)
	sum, err = b.AccountSummary(ctx, tags...)
	if err != nil {
		t.Fatalf("AccountSummary(%v): %v", tags, err)
	}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("AccountSummary(%v) (-want +got):\n%s", tags, diff)
	}
}

// TestPing: Ping succeeds on a live session, repeatedly, and each Ping makes
// a round trip: the gateway reads a REQ_CURRENT_TIME for each.
func TestPing(t TB, newBroker Factory, f Features) {
	_, env, b := connectedStandard(t, newBroker, f)
	ctx, cancel := callCtx(t)
	defer cancel()
	for i := range 3 {
		before := env.Gateway.RequestCount(reqCurrentTime)
		if err := b.Ping(ctx); err != nil {
			t.Fatalf("Ping #%d: %v", i+1, err)
		}
		if after := env.Gateway.RequestCount(reqCurrentTime); after <= before {
			t.Errorf("Ping #%d succeeded without a REQ_CURRENT_TIME reaching the gateway", i+1)
		}
	}
}

// TestCancellation: a Positions call whose context is cancelled while the
// gateway holds its reply returns within PromptBound with an error matching
// context.Canceled; calls with a context already done fail with its error;
// and the Broker keeps working: the next calls get complete, correct answers.
func TestCancellation(t TB, newBroker Factory, f Features) {
	s, env, b := connectedStandard(t, newBroker, f)

	env.Gateway.Stall()
	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	mark := env.Gateway.RequestCount(reqPositions)
	go func() {
		_, err := b.Positions(ctx)
		done <- result{err, time.Now()}
	}()
	if err := awaitRequest(env, reqPositions, mark+1, done); err != nil {
		cancel()
		env.Gateway.Resume()
		t.Fatalf("REQ_POSITIONS did not reach the gateway: %v", err)
	}
	cancelled := time.Now()
	cancel()
	select {
	case r := <-done:
		wantIs(t, "Positions cancelled mid-call", r.err, context.Canceled)
		if waited := r.at.Sub(cancelled); waited > PromptBound {
			t.Errorf("Positions returned %v after its context was cancelled, want within %v", waited, PromptBound)
		}
		env.Gateway.Resume()
	case <-time.After(2 * PromptBound):
		env.Gateway.Resume()
		t.Errorf("Positions did not return within %v of its context being cancelled: it waits for the gateway", 2*PromptBound)
		select {
		case <-done:
		case <-time.After(CallTimeout):
			t.Fatalf("Positions did not return within %v of the gateway answering", CallTimeout)
		}
	}

	dead, cancelDead := context.WithCancel(t.Context())
	cancelDead()
	cs := calls(b)
	for _, name := range sortedNames(cs) {
		if name == "Accounts" {
			continue // may be answered from memory; no promise either way
		}
		wantIs(t, name+" with a cancelled context", cs[name](dead), context.Canceled)
	}

	ctx2, cancel2 := callCtx(t)
	defer cancel2()
	pos, err := b.Positions(ctx2)
	if err != nil {
		t.Fatalf("Positions after a cancelled call: %v", err)
	}
	if diff := cmp.Diff(s.Positions, pos); diff != "" {
		t.Errorf("Positions after a cancelled call (-script +got):\n%s", diff)
	}
	if err := b.Ping(ctx2); err != nil {
		t.Errorf("Ping after a cancelled call: %v", err)
	}
}

// TestConcurrent: 16 goroutines calling every method at once, AccountSummary
// with different tags, all get complete, correct answers: their own.
func TestConcurrent(t TB, newBroker Factory, f Features) {
	s, _, b := connectedStandard(t, newBroker, f)
	ctx, cancel := callCtx(t)
	defer cancel()
	const n = 16
	errs := make(chan error, n*4)
	var wg sync.WaitGroup
	start := make(chan struct{})
	allTags := append(slices.Clone(broker.DefaultSummaryTags), extraSummaryTags...)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tags := []string{allTags[i%len(allTags)]}
			want := ExpectedSummary(s, tags...)
			for j := range 4 {
				switch (i + j) % 4 {
				case 0:
					pos, err := b.Positions(ctx)
					if err == nil && !cmp.Equal(s.Positions, pos) {
						err = fmt.Errorf("wrong positions:\n%s", cmp.Diff(s.Positions, pos))
					}
					errs <- wrap("Positions", err)
				case 1:
					sum, err := b.AccountSummary(ctx, tags...)
					if err == nil && !cmp.Equal(want, sum) {
						err = fmt.Errorf("wrong summary for %q (-want +got):\n%s", tags, cmp.Diff(want, sum))
					}
					errs <- wrap("AccountSummary", err)
				case 2:
					errs <- wrap("Ping", b.Ping(ctx))
				case 3:
					accts, err := b.Accounts(ctx)
					if err == nil && !cmp.Equal(s.Accounts, accts) {
						err = fmt.Errorf("wrong accounts %v", accts)
					}
					errs <- wrap("Accounts", err)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent call: %v", err)
		}
	}
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
