package conformance_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/conformance/internal/mutants"
)

// TestStateMachineAdapter runs the state machine over the in-process adapter.
func TestStateMachineAdapter(t *testing.T) {
	conformance.RunStateMachine(t, newAdapter, conformance.StateMachineFeatures{Checks: 12, Steps: 20})
}

// crossedWires delivers AccountSummary answers to the wrong callers: each
// call returns whatever answer arrived last, as a transport that matches
// responses to requests by arrival order would under concurrency.
type crossedWires struct {
	broker.Broker
	mu   sync.Mutex
	last []broker.AccountSummary
}

func (b *crossedWires) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	s, err := b.Broker.AccountSummary(ctx, tags...)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.last = s
	b.mu.Unlock()
	time.Sleep(time.Millisecond) // let a concurrent answer overtake
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, nil
}

// envBroken names the broken Broker a re-executed test binary runs the state
// machine over (helper-process pattern): "crossed" or a mutant's name.
const envBroken = "CONFORMANCE_TEST_BROKEN"

// stateMachineKills are the mutants the state machine must kill with its
// default number of checks and steps: the order and staleness bugs.
var stateMachineKills = []string{
	"Accounts sorted", "positions sorted by account", "summary sorted by account",
	"summary in managed accounts' order", "positions answered from the first list",
}

// brokenFactory returns the factory of the broken Broker named name.
func brokenFactory(t *testing.T, name string) (conformance.Factory, conformance.StateMachineFeatures) {
	if name == "crossed" {
		return func(t conformance.TB, env conformance.Env) broker.Broker {
			return &crossedWires{Broker: newAdapter(t, env)}
		}, conformance.StateMachineFeatures{Checks: 60, Steps: 30}
	}
	for _, m := range mutants.All() {
		if m.Name == name {
			return func(t conformance.TB, env conformance.Env) broker.Broker {
				return m.Wrap(newAdapter(t, env), mutants.Env{Addr: env.Addr, Done: t.Context().Done()})
			}, conformance.StateMachineFeatures{}
		}
	}
	t.Fatalf("no broken Broker named %q", name)
	return nil, conformance.StateMachineFeatures{}
}

// TestStateMachineCatchesBugs re-executes this test binary to run the state
// machine over deliberately broken Brokers, and requires each run to fail:
// the machine notices answers delivered to the wrong caller, and, with its
// default number of checks, reordered and stale data.
func TestStateMachineCatchesBugs(t *testing.T) {
	if name := os.Getenv(envBroken); name != "" {
		newBroker, f := brokenFactory(t, name)
		conformance.RunStateMachine(t, newBroker, f)
		return
	}
	for _, name := range append([]string{"crossed"}, stateMachineKills...) {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each in its own process
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestStateMachineCatchesBugs$", "-test.count=1",
				"-rapid.nofailfile", "-rapid.shrinktime=1s")
			cmd.Env = append(os.Environ(), envBroken+"="+name, "GORACE=atexit_sleep_ms=0")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the state machine passed the %s Broker:\n%s", name, out)
			}
			// A nondeterministic bug may not reproduce at once: rapid then
			// reports a flaky failure, which is a failure all the same.
			if !strings.Contains(string(out), "[rapid] failed") && !strings.Contains(string(out), "[rapid] flaky") {
				t.Fatalf("the run over the %s Broker failed, but not by a rapid failure (%v):\n%s", name, err, out)
			}
			t.Logf("the %s Broker failed as it should:\n%s", name, tail(string(out), 25))
		})
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
