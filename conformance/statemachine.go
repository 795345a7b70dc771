package conformance

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// Defaults of RunStateMachine.
const (
	// DefaultStateMachineChecks is the number of rapid checks (fresh gateway
	// and Broker each). With 20, 20 runs out of 20 killed each of the order
	// and staleness mutants of conformance/internal/mutants (the old default,
	// 5 checks over GenScript only, killed them in 1 to 11 runs out of 20);
	// see conformance/CONTRACT.md and TestStateMachineCatchesBugs.
	DefaultStateMachineChecks = 20
	DefaultStateMachineSteps  = 15 // average actions per check
	// SlowReplyDelay is the gateway's reply delay while the model's "slow"
	// fault is on; a call with a deadline of a fifth of it must time out.
	SlowReplyDelay = 50 * time.Millisecond
	// StallTimeout is ConnectParams.Timeout of a Connect to a stalled gateway.
	StallTimeout = 200 * time.Millisecond
	// CheckTimeout is the watchdog on one rapid check: a check that hangs
	// panics with every goroutine's stack.
	CheckTimeout = 3 * time.Minute
)

// StateMachineFeatures configures RunStateMachine.
type StateMachineFeatures struct {
	// Features of the Broker. With Reconnects a dropped gateway connection or
	// a crashed worker is expected to heal by itself; without it a drop leaves
	// the Broker disconnected and a crash leaves it failing every call with
	// broker.ErrUnavailable. Crash, if set, enables the Crash action (drawn
	// only while a session is open, so that the worker surely exists).
	Features

	// Checks is the number of rapid checks, each with its own fake gateway,
	// generated script and Broker; 0 means DefaultStateMachineChecks.
	// -rapid.checks (or $RAPID_CHECKS), when given, wins.
	Checks int

	// Steps is the average number of actions per check; 0 means
	// DefaultStateMachineSteps. -rapid.steps (or $RAPID_STEPS), when given, wins.
	Steps int
}

// RunStateMachine runs a model-based property test of the broker.Broker
// contract: a model of the session (connected or not, the session's accounts,
// the gateway's script) runs beside the real Broker, and rapid draws actions
// (each check serves a permuted StandardScript or a GenScript, and seven
// times in eight starts with a session and one read of everything):
//
//   - Connect, Disconnect, Accounts, Positions, AccountSummary (default or
//     drawn tags, some absent from the script) and Ping;
//   - Burst: 2 to 12 goroutines each making a drawn call at once; every answer
//     must be the one its own call asked for (no response reaches the wrong
//     caller);
//   - SetScript: the gateway starts serving a newly generated script (half
//     GenScript's, half StandardScript permuted, so that data often exposes
//     a Broker that reorders); Positions made just before and just after
//     the change (with a session) and every later read must equal the
//     script then served exactly;
//   - Slow: toggles a reply delay of SlowReplyDelay for the next connections;
//     CancelSlow then makes a call with a deadline the gateway cannot meet,
//     which must fail with context.DeadlineExceeded, and the session must
//     answer the next Ping;
//   - CancelMid: the gateway stops answering (fakes.Gateway.Stall), a drawn
//     call is cancelled once its request reached the gateway and must fail
//     with context.Canceled within PromptBound; the gateway then answers the
//     abandoned request and the session must answer the next Ping;
//   - Stall and Refuse (while disconnected): Connect to a gateway that stalls
//     the handshake must fail with broker.ErrTimeout, one that refuses the
//     client id with IB 326 with broker.ErrClientIDInUse;
//   - Drop: the gateway drops every connection; subscribers must see
//     broker.EventConnectionLost, then calls fail with
//     broker.ErrNotConnected, or with Features.Reconnects succeed again;
//   - Notices: IB 1100 then 1101 or 1102 reach subscribers as connection
//     lost and restored, and the session stays usable;
//   - Quote and QuoteCancel (with broker.QuoteStreamer): a stream of a drawn
//     instrument must fail as the model says or converge to the script's
//     quote (the fields a moving quote's walk leaves alone); it stays open
//     across actions until QuoteCancel closes it (promptly, its line leaving
//     the gateway), Disconnect, Close, a drop, a crash or IB 1101 end it
//     (with Features.Reconnects only Disconnect and Close do: the Broker
//     subscribes again on the new session);
//   - Crash (with Features.Crash): the worker process is killed; with
//     Features.Reconnects the Broker recovers, else every later call fails
//     at once with broker.ErrUnavailable (and Close succeeds).
//   - PlaceOrder, CancelOrder, ModifyOrder and MovePrice (when the Broker
//     is a broker.OrderTrader; statemachine_orders.go): a model of the
//     orders placed on a market only the machine trades (market and limit,
//     buy and sell, limits off the tick one time in ten: ErrRejected; a key
//     placed again with the same terms must return the one order with
//     Existing, with other terms ErrInvalidArgument; keys are reused within
//     a session, or across sessions with Features.Reconnects); the price
//     moves with fakes.Gateway.SetPrice, connected or not, filling the
//     limit orders it crosses. The gateway must hold exactly the model's
//     orders, one per key, under the model's ids and in its statuses, and
//     OpenOrders and CompletedOrders must list them.
//
// After every action the answers must equal the model's (go-cmp, decimals
// exact) or be the typed error the model predicts; the invariant is that the
// gateway holds exactly one live session while the model is connected and
// none otherwise, one market data line per open quote stream, and exactly the model's orders. At the end of each
// check the gateway's script changes once
// more (SetScript, with a session), then the Broker is closed, every method
// must fail with broker.ErrClosed, a worker process (a Broker with an
// Exited() <-chan struct{} method) must have exited, the gateway must see
// every connection closed and no goroutine may be left.
//
// newBroker is called once per check with the check's *rapid.T as TB, so the
// cleanups it registers run at the end of that check: a transport starts one
// worker per check, not per action. RunStateMachine sets rapid's check and
// step counts for its own run only (see StateMachineFeatures); so it must not
// run in parallel with other rapid tests of the same test binary.
//
// Failing cases are saved by rapid under testdata/rapid/<TestName>/ of the
// calling package and replayed first by every later run, so a failure found
// once keeps failing in `go test` until it is fixed (commit the file).
func RunStateMachine(t *testing.T, newBroker Factory, f StateMachineFeatures) {
	t.Helper()
	checks, steps := f.Checks, f.Steps
	if checks <= 0 {
		checks = DefaultStateMachineChecks
	}
	if steps <= 0 {
		steps = DefaultStateMachineSteps
	}
	restore := setRapidDefaults(checks, steps)
	defer restore()
	rapid.Check(t, func(rt *rapid.T) {
		runMachine(rt, newBroker, f)
	})
}

var (
	rapidUserFlags     map[string]bool
	rapidUserFlagsOnce sync.Once
)

// setRapidDefaults sets -rapid.checks and -rapid.steps unless the user gave
// them, and returns a function that restores them.
func setRapidDefaults(checks, steps int) (restore func()) {
	rapidUserFlagsOnce.Do(func() {
		rapidUserFlags = map[string]bool{}
		flag.Visit(func(fl *flag.Flag) { rapidUserFlags[fl.Name] = true })
		for name, env := range map[string]string{"rapid.checks": "RAPID_CHECKS", "rapid.steps": "RAPID_STEPS"} {
			if _, ok := os.LookupEnv(env); ok {
				rapidUserFlags[name] = true
			}
		}
	})
	var undo []func()
	for name, v := range map[string]int{"rapid.checks": checks, "rapid.steps": steps} {
		fl := flag.Lookup(name)
		if fl == nil || rapidUserFlags[name] {
			continue
		}
		old := fl.Value.String()
		if fl.Value.Set(strconv.Itoa(v)) == nil {
			undo = append(undo, func() { _ = fl.Value.Set(old) })
		}
	}
	return func() {
		for _, u := range undo {
			u()
		}
	}
}

// machine is the model and the system under test of one check.
type machine struct {
	f   StateMachineFeatures
	env Env
	b   broker.Broker
	ev  *eventLog

	script    fakes.Script          // what the gateway serves now
	connected bool                  // a session is open (or, with Reconnects, wanted)
	accounts  []string              // the session's accounts, from its MANAGED_ACCTS
	slow      bool                  // the session's connection delays its replies
	dead      bool                  // the worker crashed and nothing restarts it
	mdType    broker.MarketDataType // the session's market data type (live from each new session)
	barsAsked map[string]bool       // historical windows asked for in this check (IB paces repeats)
	quotes    []*modelQuote         // the quote streams open (statemachine_quotes.go)
	session   int                   // sessions started in this check (the plain adapter dedupes order keys per session)
	om        orderModel            // the orders placed (statemachine_orders.go)

	// pingAnswerMayBeLate: a request answered by CURRENT_TIME (a Ping, or a
	// Positions fence) was abandoned in this check, so its answer may come
	// late and complete a newer Ping (docs/adr/0007).
	pingAnswerMayBeLate bool
}

var cmpOpts = []cmp.Option{cmpopts.EquateEmpty()}

func runMachine(t *rapid.T, newBroker Factory, f StateMachineFeatures) {
	before := goleak.IgnoreCurrent()
	name := t.Name()
	watchdog := time.AfterFunc(CheckTimeout, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		panic(fmt.Sprintf("conformance: state machine check of %s hung for %v; goroutines:\n%s", name, CheckTimeout, buf))
	})
	defer watchdog.Stop()

	s := withOrderMarket(machineScript().Draw(t, "script"))
	if rapid.IntRange(0, 3).Draw(t, "startSlow") == 0 {
		s.Faults.ReplyDelay = SlowReplyDelay
	}
	env := newEnv(t, f.Features, s)
	m := &machine{f: f, env: env, script: s, mdType: broker.MarketDataLive, barsAsked: map[string]bool{}}
	m.b = newBroker(t, env)
	m.ev = startEventLog(t, m.b)
	if !rapid.SampledFrom([]bool{false, false, false, false, false, false, false, true}).Draw(t, "startDisconnected") {
		// Most checks start with a session and read everything once, so
		// that every check compares data with the model at least once.
		m.connect(t)
		m.readAll(t)
	}

	actions := map[string]func(*rapid.T){
		"Connect":     m.connect,
		"Disconnect":  m.disconnect,
		"Accounts":    m.accountsCall,
		"Positions":   m.positionsCall,
		"Summary":     m.summaryCall,
		"Ping":        m.pingCall,
		"Updates":     m.accountUpdatesCall,
		"Executions":  m.executionsCall,
		"Orders":      m.ordersCall,
		"Stream":      m.streamCall,
		"Burst":       m.burst,
		"SetScript":   m.setScript,
		"Slow":        m.toggleSlow,
		"CancelSlow":  m.cancelSlow,
		"CancelMid":   m.cancelMidCall,
		"Stall":       m.stall,
		"Refuse":      m.refuse,
		"Drop":        m.drop,
		"Notices":     m.notices,
		"Details":     m.detailsCall,
		"Snapshot":    m.snapshotCall,
		"Bars":        m.barsCall,
		"MDType":      m.marketTypeCall,
		"Quote":       m.quoteCall,
		"QuoteCancel": m.quoteCancel,
		"":            m.invariants,
	}
	if f.Crash != nil {
		actions["Crash"] = m.crash
	}
	for name, a := range m.orderActions() {
		actions[name] = a
	}
	t.Repeat(actions)
	m.finish(t, before)
}

func (m *machine) ctx(t TB) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), CallTimeout)
}

// expect fails t unless err matches the model's prediction: nil when want is
// nil, else errors.Is(err, want).
func expect(t TB, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: got error %v, want one matching %v", what, err, want)
	}
}

// wantErr is the error the model predicts for a data call.
func (m *machine) wantErr() error {
	if m.dead {
		return broker.ErrUnavailable
	}
	if m.connected {
		return nil
	}
	return broker.ErrNotConnected
}

// machineScript generates the scripts the machine serves: two times in three
// StandardScript with its positions and summary entries permuted, else
// GenScript's. The permuted standard data exposes a Broker that reorders
// accounts, positions or summaries in every check that reads them;
// GenScript's small scripts are often sorted by chance.
func machineScript() *rapid.Generator[fakes.Script] {
	standard := rapid.Custom(func(t *rapid.T) fakes.Script {
		s := StandardScript()
		s.Positions = rapid.Permutation(s.Positions).Draw(t, "positionsOrder")
		s.Summary = rapid.Permutation(s.Summary).Draw(t, "summaryOrder")
		s.Executions = rapid.Permutation(ReadScript().Executions).Draw(t, "executionsOrder")
		return s
	})
	return rapid.OneOf(standard, standard, GenScript())
}

// ---- actions and invariants ----
//
// Most actions live in statemachine_calls.go and statemachine_faults.go, the
// event log in statemachine_events.go.

// cancelMidCall stalls the gateway, makes a drawn call, cancels its context
// once its request reached the gateway, and expects context.Canceled within
// PromptBound; the gateway then answers the abandoned request and the session
// must serve the next call correctly (no late answer taken for it).
func (m *machine) cancelMidCall(t *rapid.T) {
	if !m.connected {
		t.Skip("needs a session")
	}
	kind := rapid.SampledFrom([]string{"Positions", "AccountSummary", "Ping"}).Draw(t, "midCall")
	id := map[string]int{"Positions": reqPositions, "AccountSummary": reqAccountSummary, "Ping": reqCurrentTime}[kind]
	m.env.Gateway.Stall()
	defer m.env.Gateway.Resume()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	mark := m.env.Gateway.RequestCount(id)
	fences := m.env.Gateway.RequestCount(reqCurrentTime)
	done := make(chan error, 1)
	go func() { done <- m.read(ctx, kind) }()
	want := []requestCount{{id, mark + 1}}
	if kind == "Positions" {
		// A Positions after an abandoned one goes out behind a REQ_CURRENT_TIME
		// fence (docs/adr/0007), which the stalled gateway never answers: the
		// fence reaching it is the call's request reaching it.
		want = append(want, requestCount{reqCurrentTime, fences + 1})
	}
	if err := awaitFirstRequest(m.env, done, want...); err != nil {
		var first *returnedFirst
		if kind == "Ping" && errors.As(err, &first) && first.result == nil {
			// CURRENT_TIME carries no request id: the answer to one already
			// in flight when the gateway stalled (a decorator's health check,
			// an earlier fence) completes a Ping that waits behind it
			// (docs/adr/0007). Nothing is left to cancel.
			return
		}
		t.Fatalf("%s: %v", kind, err)
	}
	cancel()
	late := m.pingAnswerMayBeLate
	m.pingAnswerMayBeLate = true // this call's own request is abandoned too
	select {
	case err := <-done:
		if err == nil && kind == "Ping" && late {
			// CURRENT_TIME carries no request id: a late answer to a Ping
			// abandoned earlier in this check (slow replies) may complete this
			// one before its cancellation (docs/adr/0007). Any answer still
			// proves the session alive; a Ping that ignores cancellation is
			// caught by the CancelMidCall case, which has no earlier Ping.
			break
		}
		expect(t, kind+" cancelled mid-call", err, context.Canceled)
	case <-time.After(2 * PromptBound):
		m.env.Gateway.Resume()
		t.Fatalf("%s did not return within %v of its context being cancelled", kind, 2*PromptBound)
	}
	m.env.Gateway.Resume()
	ctx2, cancel2 := m.ctx(t)
	defer cancel2()
	expect(t, "Ping after a call cancelled mid-call", m.b.Ping(ctx2), nil)
}

// invariants: the gateway holds exactly the model's sessions, one market
// data line per open quote stream, and exactly the model's orders.
func (m *machine) invariants(t *rapid.T) {
	m.orderInvariant(t)
	want := 0
	if m.connected {
		want = 1
	}
	deadline := time.Now().Add(CallTimeout)
	for {
		ids := m.env.Gateway.LiveClientIDs()
		if len(ids) == want && (want == 0 || ids[0] == m.env.ClientID) {
			m.quoteLines(t)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway holds sessions %v; the model has %d (client %d)", ids, want, m.env.ClientID)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// finish closes the Broker and checks that it let go of everything.
func (m *machine) finish(t *rapid.T, before goleak.Option) {
	if m.connected && !m.dead {
		m.setScript(t) // the data changes one last time, and reads see it
	}
	if err := m.b.Close(); err != nil && !(m.dead && errors.Is(err, broker.ErrUnavailable)) {
		t.Fatalf("Close: %v", err)
	}
	m.quotesLost(t, "after Close", false)
	ctx, cancel := m.ctx(t)
	defer cancel()
	cs := calls(m.b)
	cs["Connect"] = func(ctx context.Context) error { _, err := m.b.Connect(ctx, m.env.Params); return err }
	cs["Disconnect"] = func(ctx context.Context) error { return m.b.Disconnect(ctx) }
	cs["Subscribe"] = func(ctx context.Context) error { _, err := m.b.Subscribe(ctx); return err }
	for _, name := range sortedNames(cs) {
		expect(t, name+" after Close", cs[name](ctx), broker.ErrClosed)
	}
	m.ev.waitClosed(t)
	if x, ok := m.b.(interface{ Exited() <-chan struct{} }); ok {
		select {
		case <-x.Exited():
		case <-time.After(CallTimeout):
			t.Fatalf("the worker process has not exited %v after Close", CallTimeout)
		}
	}
	deadline := time.Now().Add(CallTimeout)
	for {
		open := 0
		for _, c := range m.env.Gateway.Connections() {
			if !c.Closed {
				open++
			}
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to the gateway still open %v after Close", open, CallTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := m.env.Gateway.Close(); err != nil {
		t.Fatalf("close the gateway: %v", err)
	}
	if err := goleak.Find(before); err != nil {
		t.Fatalf("goroutines left after Close: %v", err)
	}
}
