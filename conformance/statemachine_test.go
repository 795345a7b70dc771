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
)

// TestStateMachineAdapter runs the state machine over the in-process adapter.
func TestStateMachineAdapter(t *testing.T) {
	conformance.RunStateMachine(t, newAdapter, conformance.StateMachineFeatures{Checks: 12, Steps: 20})
}

// staleCache answers every Positions call after the first with the first
// call's rows: a cache that never notices that the gateway's data changed.
type staleCache struct {
	broker.Broker
	mu    sync.Mutex
	first []broker.Position
}

func (b *staleCache) Positions(ctx context.Context) ([]broker.Position, error) {
	ps, err := b.Broker.Positions(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.first == nil {
		b.first = ps
	}
	return b.first, nil
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
// machine over (helper-process pattern): "stale" or "crossed".
const envBroken = "CONFORMANCE_TEST_BROKEN"

var broken = map[string]func(broker.Broker) broker.Broker{
	"stale":   func(b broker.Broker) broker.Broker { return &staleCache{Broker: b} },
	"crossed": func(b broker.Broker) broker.Broker { return &crossedWires{Broker: b} },
}

// TestStateMachineCatchesBugs re-executes this test binary to run the state
// machine over deliberately broken Brokers, and requires each run to fail:
// the machine notices stale data and answers delivered to the wrong caller.
func TestStateMachineCatchesBugs(t *testing.T) {
	if name := os.Getenv(envBroken); name != "" {
		conformance.RunStateMachine(t, func(t conformance.TB, env conformance.Env) broker.Broker {
			return broken[name](newAdapter(t, env))
		}, conformance.StateMachineFeatures{Checks: 60, Steps: 30})
		return
	}
	for _, name := range []string{"stale", "crossed"} {
		t.Run(name, func(t *testing.T) {
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
