package conformance

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
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
//   - Crash (with Features.Crash): the worker process is killed; with
//     Features.Reconnects the Broker recovers, else every later call fails
//     at once with broker.ErrUnavailable (and Close succeeds).
//
// After every action the answers must equal the model's (go-cmp, decimals
// exact) or be the typed error the model predicts; the invariant is that the
// gateway holds exactly one live session while the model is connected and
// none otherwise. At the end of each check the gateway's script changes once
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

	script    fakes.Script // what the gateway serves now
	connected bool         // a session is open (or, with Reconnects, wanted)
	accounts  []string     // the session's accounts, from its MANAGED_ACCTS
	slow      bool         // the session's connection delays its replies
	dead      bool         // the worker crashed and nothing restarts it
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

	s := machineScript().Draw(t, "script")
	if rapid.IntRange(0, 3).Draw(t, "startSlow") == 0 {
		s.Faults.ReplyDelay = SlowReplyDelay
	}
	env := newEnv(t, f.Features, s)
	m := &machine{f: f, env: env, script: s}
	m.b = newBroker(t, env)
	m.ev = startEventLog(t, m.b)
	if !rapid.SampledFrom([]bool{false, false, false, false, false, false, false, true}).Draw(t, "startDisconnected") {
		// Most checks start with a session and read everything once, so
		// that every check compares data with the model at least once.
		m.connect(t)
		m.readAll(t)
	}

	actions := map[string]func(*rapid.T){
		"Connect":    m.connect,
		"Disconnect": m.disconnect,
		"Accounts":   m.accountsCall,
		"Positions":  m.positionsCall,
		"Summary":    m.summaryCall,
		"Ping":       m.pingCall,
		"Updates":    m.accountUpdatesCall,
		"Executions": m.executionsCall,
		"Orders":     m.ordersCall,
		"Stream":     m.streamCall,
		"Burst":      m.burst,
		"SetScript":  m.setScript,
		"Slow":       m.toggleSlow,
		"CancelSlow": m.cancelSlow,
		"CancelMid":  m.cancelMidCall,
		"Stall":      m.stall,
		"Refuse":     m.refuse,
		"Drop":       m.drop,
		"Notices":    m.notices,
		"":           m.invariants,
	}
	if f.Crash != nil {
		actions["Crash"] = m.crash
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

// ---- actions ----

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
	m.connected = true
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
	s := machineScript().Draw(t, "newScript")
	s.Faults = m.script.Faults
	if cmp.Equal(s.Positions, m.script.Positions, cmpOpts...) {
		// A change nobody can see proves nothing: make one.
		s.Positions = append(slices.Clone(s.Positions), GenPosition(s.Accounts).Draw(t, "extraPosition"))
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
	expect(t, kind+" with a deadline the slow gateway cannot meet", err, context.DeadlineExceeded)
	// The session goes on; the Ping also lets the gateway finish the abandoned
	// request, so that its answer cannot be taken for a later call's.
	ctx2, cancel2 := m.ctx(t)
	defer cancel2()
	expect(t, "Ping after a call timed out", m.b.Ping(ctx2), nil)
}

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
		t.Fatalf("%s: %v", kind, err)
	}
	cancel()
	select {
	case err := <-done:
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

// withFault serves the script plus fault f for the duration of fn.
func (m *machine) withFault(fault func(*fakes.Faults), fn func()) {
	s := m.script.Clone()
	fault(&s.Faults)
	m.env.Gateway.SetScript(s)
	defer m.env.Gateway.SetScript(m.script)
	fn()
}

func (m *machine) stall(t *rapid.T) {
	if m.connected || m.dead {
		t.Skip("needs no session and a live worker")
	}
	waitGatewayIdle(t, m.env, "before Connect")
	m.withFault(func(f *fakes.Faults) { f.StallHandshake = true }, func() {
		p := m.env.Params
		p.Timeout = StallTimeout
		ctx, cancel := m.ctx(t)
		defer cancel()
		_, err := m.b.Connect(ctx, p)
		expect(t, "Connect to a gateway stalling the handshake", err, broker.ErrTimeout)
	})
	ctx, cancel := m.ctx(t)
	defer cancel()
	expect(t, "Ping after a stalled Connect", m.b.Ping(ctx), broker.ErrNotConnected)
}

func (m *machine) refuse(t *rapid.T) {
	if m.connected || m.dead {
		t.Skip("needs no session and a live worker")
	}
	waitGatewayIdle(t, m.env, "before Connect")
	m.withFault(func(f *fakes.Faults) { f.RefuseClientIDs = []int64{m.env.ClientID} }, func() {
		ctx, cancel := m.ctx(t)
		defer cancel()
		_, err := m.b.Connect(ctx, m.env.Params)
		expect(t, "Connect with a refused client id", err, broker.ErrClientIDInUse)
		if code := broker.IBCode(err); code != broker.IBCodeClientIDInUse {
			t.Fatalf("Connect with a refused client id: IB code %d, want %d (error %v)", code, broker.IBCodeClientIDInUse, err)
		}
	})
	ctx, cancel := m.ctx(t)
	defer cancel()
	expect(t, "Ping after a refused Connect", m.b.Ping(ctx), broker.ErrNotConnected)
}

func (m *machine) drop(t *rapid.T) {
	mark := m.ev.mark()
	n := m.env.Gateway.DropConnections()
	if !m.connected {
		return
	}
	if n < 1 {
		t.Fatalf("the gateway dropped %d connections while the model holds a session", n)
	}
	m.ev.wait(t, mark, "EventConnectionLost after a gateway drop", func(e broker.Event) bool {
		return e.Kind == broker.EventConnectionLost
	})
	if m.f.Reconnects {
		m.awaitRecovery(t, "after a gateway drop")
		return
	}
	ctx, cancel := m.ctx(t)
	defer cancel()
	expect(t, "Ping after a gateway drop", m.b.Ping(ctx), broker.ErrNotConnected)
	m.connected = false
}

// awaitRecovery waits until a reconnecting Broker serves again, on a new
// session of the current script.
func (m *machine) awaitRecovery(t *rapid.T, when string) {
	deadline := time.Now().Add(2 * CallTimeout)
	for {
		ctx, cancel := m.ctx(t)
		err := m.b.Ping(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping %s: still failing after %v: %v", when, 2*CallTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.sessionStarted()
}

func (m *machine) notices(t *rapid.T) {
	restored := rapid.SampledFrom([]int64{broker.IBCodeRestoredDataMaintained, broker.IBCodeRestoredDataLost}).Draw(t, "restoredCode")
	for _, c := range []struct {
		code int64
		kind broker.EventKind
	}{{broker.IBCodeConnectivityLost, broker.EventConnectionLost}, {restored, broker.EventConnectionRestored}} {
		mark := m.ev.mark()
		n := m.env.Gateway.Notify(c.code, "")
		want := 0
		if m.connected {
			want = 1
		}
		if n != want {
			t.Fatalf("notice %d reached %d sessions, want %d", c.code, n, want)
		}
		if n == 0 {
			return
		}
		e := m.ev.wait(t, mark, fmt.Sprintf("event for IB %d", c.code), func(e broker.Event) bool { return e.Code == c.code })
		if e.Kind != c.kind || e.Message != fakes.NoticeText(c.code) {
			t.Fatalf("IB %d: got event %+v, want kind %v with the gateway's text", c.code, e, c.kind)
		}
	}
	ctx, cancel := m.ctx(t)
	defer cancel()
	expect(t, "Ping after notices", m.b.Ping(ctx), nil)
}

func (m *machine) crash(t *rapid.T) {
	if !m.connected {
		t.Skip("needs a session, so that the worker surely runs")
	}
	m.f.Crash(t, m.b)
	if m.f.Reconnects {
		m.awaitRecovery(t, "after the worker crashed")
		return
	}
	m.dead, m.connected = true, false
	// The crash is noticed asynchronously (the pipe or connection closing);
	// from then on every call must fail at once with ErrUnavailable.
	deadline := time.Now().Add(CallTimeout)
	for {
		ctx, cancel := m.ctx(t)
		err := m.b.Ping(ctx)
		cancel()
		if errors.Is(err, broker.ErrUnavailable) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping %v after the worker crashed: %v, want one matching %v", CallTimeout, err, broker.ErrUnavailable)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// invariants: the gateway holds exactly the model's sessions.
func (m *machine) invariants(t *rapid.T) {
	want := 0
	if m.connected {
		want = 1
	}
	deadline := time.Now().Add(CallTimeout)
	for {
		ids := m.env.Gateway.LiveClientIDs()
		if len(ids) == want && (want == 0 || ids[0] == m.env.ClientID) {
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

// ---- events ----

// eventLog records every event of one subscription, so that waiting for one
// never misses it and the subscriber always keeps up.
type eventLog struct {
	mu      sync.Mutex
	events  []broker.Event
	changed chan struct{}
	done    chan struct{}
}

func startEventLog(t TB, b broker.Broker) *eventLog {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	l := &eventLog{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for e := range ch {
			l.mu.Lock()
			l.events = append(l.events, e)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-l.done
	})
	return l
}

// mark returns the position of the next event.
func (l *eventLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// wait returns the first event from position since on that matches ok,
// waiting up to CallTimeout for it.
func (l *eventLog) wait(t TB, since int, what string, ok func(broker.Event) bool) broker.Event {
	t.Helper()
	timer := time.NewTimer(CallTimeout)
	defer timer.Stop()
	for {
		l.mu.Lock()
		evs, changed := l.events[since:], l.changed
		l.mu.Unlock()
		for _, e := range evs {
			if ok(e) {
				return e
			}
		}
		select {
		case <-changed:
		case <-l.done:
			t.Fatalf("waiting for %s: the event channel closed; saw %v", what, evs)
		case <-timer.C:
			t.Fatalf("no %s within %v; saw %v", what, CallTimeout, evs)
		}
	}
}

// waitClosed waits until the subscription has ended (the Broker is closed).
func (l *eventLog) waitClosed(t TB) {
	select {
	case <-l.done:
	case <-time.After(CallTimeout):
		t.Fatalf("the event channel is still open %v after Close", CallTimeout)
	}
}
