package conformance

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// Result is what one case reported when run through Record.
type Result struct {
	Case     string        // the case's name
	Failures []string      // every Errorf and Fatalf, in order
	Logs     []string      // every Logf
	Skipped  bool          // the case skipped itself (see Reason)
	Reason   string        // why it skipped; never empty when Skipped
	Hung     bool          // the case did not return within CaseTimeout
	Stacks   string        // every goroutine's stack when the case hung
	Elapsed  time.Duration // how long the case ran (up to the hang)
}

// Failed reports whether the case failed, hanging included.
func (r Result) Failed() bool { return r.Hung || len(r.Failures) > 0 }

// Record runs one case against Brokers from newBroker, as Run does, and
// returns what it reported instead of failing a test: a third party's harness
// (or the kit's own mutation tests) decides what a failure means. The case runs
// on its own goroutine; Fatalf and Skipf end that goroutine with
// runtime.Goexit, as testing does. A case that has not returned within
// CaseTimeout is recorded as Hung with every goroutine's stack, its context
// is cancelled and its cleanups run (which usually closes whatever it was
// blocked on); Record then returns without waiting for it any longer.
// Features.CaseTimeout, if set, replaces CaseTimeout. Nothing
// panics. Record must not run in parallel with other cases or tests of the
// same process (see the package doc).
func Record(c Case, newBroker Factory, f Features) Result {
	return runCase(nil, "", c, newBroker, f)
}

// recorder is the TB of a case run by Record or Run. With t set, failures and
// logs also go to t as they happen (t.Errorf and t.Logf are safe from any
// goroutine); Fatalf and Skipf end the case's own goroutine, never t's.
type recorder struct {
	t      *testing.T // optional sink, guarded by mu; nil once runCase returned
	name   string
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	res      Result
	cleanups []func()
	ran      bool // cleanups have run
}

var _ TB = (*recorder)(nil)

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Failures = append(r.res.Failures, msg)
	if r.t != nil {
		r.t.Error(msg)
	}
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.res.Skipped, r.res.Reason = true, fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Logs = append(r.res.Logs, msg)
	if r.t != nil {
		r.t.Log(msg)
	}
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.res.Failures) > 0
}

func (r *recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *recorder) Context() context.Context { return r.ctx }
func (r *recorder) Name() string             { return r.name }

// runCleanups cancels the context, then runs the cleanups last first, once.
func (r *recorder) runCleanups() {
	r.cancel()
	r.mu.Lock()
	cs := r.cleanups
	r.cleanups, r.ran = nil, true
	r.mu.Unlock()
	for _, f := range slices.Backward(cs) {
		f()
	}
}

// runCase runs c under the CaseTimeout watchdog; t, if not nil, sees failures
// and logs as they happen.
func runCase(t *testing.T, name string, c Case, newBroker Factory, f Features) Result {
	if name == "" {
		name = "conformance/" + c.Name
	}
	r := &recorder{t: t, name: name}
	r.res.Case = c.Name
	r.ctx, r.cancel = context.WithCancel(context.Background())
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.runCleanups()
		c.Test(r, newBroker, f)
	}()
	timer := time.NewTimer(f.caseTimeout())
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		r.Errorf("conformance: case %s hung for %v; goroutines:\n%s", c.Name, f.caseTimeout(), buf)
		r.mu.Lock()
		r.res.Hung, r.res.Stacks = true, string(buf)
		r.mu.Unlock()
		// Closing the Broker and the gateway usually releases the case; give
		// it a moment to finish, then leave it.
		cleaned := make(chan struct{})
		go func() { defer close(cleaned); r.runCleanups() }()
		select {
		case <-done:
		case <-cleaned:
		case <-time.After(CallTimeout):
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t = nil // a case left hanging must not report to a finished test
	res := r.res
	res.Failures = slices.Clone(res.Failures)
	res.Logs = slices.Clone(res.Logs)
	res.Elapsed = time.Since(start)
	return res
}

// Run runs every case of Cases as a subtest of t, each against a fresh gateway
// and fresh Brokers from newBroker, under the CaseTimeout watchdog: a case
// that hangs fails its subtest with every goroutine's stack instead of
// panicking. A case that does not apply to the Broker (TestChildCrash without
// Features.Crash) is skipped with the reason. Run must not run in parallel
// with other tests of the same process (see the package doc).
func Run(t *testing.T, newBroker Factory, f Features) {
	t.Helper()
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			res := runCase(t, t.Name(), c, newBroker, f)
			if res.Skipped {
				t.Skip(res.Reason)
			}
		})
	}
}
