package conformance_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/conformance/internal/mutants"
)

// envShard names the share of the mutants a re-executed test binary runs:
// "i/n" runs the mutants whose index is i modulo n.
const envShard = "CONFORMANCE_MUTANT_SHARD"

// mutantShards is how many processes TestMutants spreads the mutants over:
// the cases mostly wait (for deadlines, the gateway, goroutines to end), and
// they must not share a process (their leak checks are process-wide).
const mutantShards = 4

// TestMutants runs, for every mutant, each case the table says kills it,
// through conformance.Record, and fails unless each of them fails: every
// sentence of the contract is checked by Run's cases, deterministically.
// It re-executes the test binary mutantShards times in parallel, each running
// its share of the mutants one after the other; -run 'TestMutants/<name>'
// picks mutants as usual.
func TestMutants(t *testing.T) {
	shard, shards := 0, 1
	if v := os.Getenv(envShard); v != "" {
		if _, err := fmt.Sscanf(v, "%d/%d", &shard, &shards); err != nil || shards < 1 {
			t.Fatalf("bad %s=%q", envShard, v)
		}
	} else {
		runShards(t)
		return
	}
	cases := map[string]conformance.Case{}
	for _, c := range conformance.Cases() {
		cases[c.Name] = c
	}
	for i, m := range mutants.All() {
		if i%shards != shard {
			continue
		}
		t.Run(m.Name, func(t *testing.T) {
			for _, name := range m.Kills {
				c, ok := cases[name]
				if !ok {
					t.Fatalf("mutant %q names case %q, which Cases does not list", m.Name, name)
				}
				done := make(chan struct{})
				var mu sync.Mutex
				var held []io.Closer
				hold := func(c io.Closer) { mu.Lock(); held = append(held, c); mu.Unlock() }
				res := conformance.Record(c, func(tb conformance.TB, env conformance.Env) broker.Broker {
					return m.Wrap(newAdapter(tb, env), mutants.Env{Addr: env.Addr, Done: done, Hold: hold})
				}, conformance.Features{})
				close(done)
				mu.Lock()
				for _, c := range held {
					_ = c.Close()
				}
				mu.Unlock()
				switch {
				case res.Skipped:
					t.Errorf("case %s skipped the %q mutant: %s", name, m.Name, res.Reason)
				case !res.Failed():
					t.Errorf("case %s passed the %q mutant (breaks %q)", name, m.Name, m.Sentence)
				case res.Hung:
					t.Errorf("case %s killed the %q mutant only by hanging for %v", name, m.Name, res.Elapsed)
				default:
					t.Logf("%s killed it in %v: %.300s", name, res.Elapsed.Round(1e6), res.Failures[0])
				}
			}
		})
	}
}

// runShards runs TestMutants in mutantShards child processes at once.
func runShards(t *testing.T) {
	run := "^TestMutants$"
	if f := flag.Lookup("test.run"); f != nil && strings.HasPrefix(f.Value.String(), "TestMutants/") {
		run = f.Value.String()
	}
	var wg sync.WaitGroup
	for i := range mutantShards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run="+run, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d/%d", envShard, i, mutantShards), "GORACE=atexit_sleep_ms=0")
			out, err := cmd.CombinedOutput()
			var killed []string
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "killed it in") {
					killed = append(killed, strings.TrimSpace(line))
				}
			}
			if err != nil {
				t.Errorf("shard %d/%d: %v:\n%s", i, mutantShards, err, out)
				return
			}
			t.Logf("shard %d/%d:\n%s", i, mutantShards, strings.Join(killed, "\n"))
		}()
	}
	wg.Wait()
}

// TestMutantTable: every sentence of the contract has a mutant, every mutant
// names a sentence and at least one case, and conformance/CONTRACT.md lists
// every sentence and every mutant.
func TestMutantTable(t *testing.T) {
	doc, err := os.ReadFile("CONTRACT.md")
	if err != nil {
		t.Fatal(err)
	}
	table := string(doc)
	ids := map[string]int{}
	for _, s := range mutants.Sentences {
		ids[s.ID] = 0
		if !regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(s.ID) + "` \\|").MatchString(table) {
			t.Errorf("CONTRACT.md has no row for sentence %q", s.ID)
		}
	}
	names := map[string]bool{}
	for _, m := range mutants.All() {
		if _, ok := ids[m.Sentence]; !ok {
			t.Errorf("mutant %q breaks unknown sentence %q", m.Name, m.Sentence)
		}
		ids[m.Sentence]++
		if len(m.Kills) == 0 {
			t.Errorf("mutant %q names no case", m.Name)
		}
		if names[m.Name] {
			t.Errorf("two mutants are named %q", m.Name)
		}
		names[m.Name] = true
		if !strings.Contains(table, m.Name) {
			t.Errorf("CONTRACT.md does not list mutant %q", m.Name)
		}
	}
	for _, s := range mutants.Sentences {
		if ids[s.ID] == 0 {
			t.Errorf("no mutant breaks sentence %q (%s)", s.ID, s.Text)
		}
	}
	for _, c := range conformance.Cases() {
		if !slices.ContainsFunc(mutants.All(), func(m mutants.Mutant) bool { return slices.Contains(m.Kills, c.Name) }) && c.Name != "ChildCrash" {
			t.Logf("no mutant needs case %s", c.Name)
		}
	}
}
