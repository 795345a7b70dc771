package soak

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/internal/leakcheck"
	"github.com/brokerkit/brokerkit/robust"
	"github.com/brokerkit/brokerkit/transport/goplugin"
	"github.com/brokerkit/brokerkit/transport/stdiojson"
)

var (
	soakDuration = flag.Duration("soak", 0, "how long TestSoak runs (default: a short run, "+shortRun.String()+")")
	soakCalls    = flag.Int64("soak.calls", 0, "stop TestSoak after this many calls in all (0: no limit)")
	soakChaos    = flag.Duration("soak.chaos", 300*time.Millisecond, "mean interval between chaos actions")
)

// shortRun is the run every `go test ./...` makes.
const shortRun = 6 * time.Second

// argGateway makes the re-executed test binary a fake gateway: it prints its
// port, drops every connection on SIGUSR1, and exits when its stdin closes. The
// gateway runs in its own process because it records every request it serves,
// which would otherwise count as this process's growth.
const argGateway = "soak-gateway"

func TestMain(m *testing.M) {
	if len(os.Args) >= 2 && os.Args[1] == argGateway {
		os.Exit(runGateway())
	}
	newAdapter := func() broker.Broker { return ibkr.New() }
	stdiojson.MaybeRunWorker(newAdapter)
	goplugin.MaybeRunWorker(newAdapter)
	// Workers built with -race would sleep 1s at exit (atexit_sleep_ms).
	_ = os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	goleak.VerifyTestMain(m)
}

func runGateway() int {
	standard := conformance.StandardScript()
	g, err := fakes.NewGateway(standard)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak gateway:", err)
		return 1
	}
	defer g.Close()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1, syscall.SIGUSR2)
	r := rand.New(rand.NewPCG(7, 7))
	var restore *time.Timer
	go func() {
		for sig := range usr1 {
			if sig == syscall.SIGUSR2 {
				if restore != nil {
					restore.Stop()
				}
				faulty := standard.Clone()
				faulty.Faults = gatewayFault(r)
				g.SetScript(faulty)
				// Handshake faults would refuse every client while they last:
				// they do for a moment only. Lost answers stay until the next fault.
				if faulty.Faults.ShortHandshake || faulty.Faults.EmptyHandshake {
					restore = time.AfterFunc(200*time.Millisecond, func() { g.SetScript(standard) })
				}
			}
			g.DropConnections()
		}
	}()
	fmt.Printf("%d\n", g.Port())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the test closes our stdin
	return 0
}

// gatewayFault picks the faults of the connections the gateway accepts next
// (SIGUSR2): one lost answer, lost end marker or empty frame at a random
// request, or a short or empty handshake reply.
func gatewayFault(r *rand.Rand) fakes.Faults {
	n := 2 + r.IntN(30) // request 1 is Connect's round trip
	switch r.IntN(5) {
	case 0:
		return fakes.Faults{UnansweredRequest: n}
	case 1:
		return fakes.Faults{NoEndMarkerRequest: n}
	case 2:
		return fakes.Faults{EmptyFrameRequest: n}
	case 3:
		return fakes.Faults{ShortHandshake: true}
	default:
		return fakes.Faults{EmptyHandshake: true}
	}
}

// gatewayProc is the fake gateway child.
type gatewayProc struct {
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	port  int
}

func startGateway(t *testing.T) *gatewayProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, argGateway)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gatewayProc{cmd: cmd, stdin: in}
	t.Cleanup(func() {
		_ = in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err == nil {
		g.port, err = strconv.Atoi(strings.TrimSpace(line))
	}
	if err != nil {
		t.Fatalf("gateway child did not say its port: %q, %v", line, err)
	}
	return g
}

func (g *gatewayProc) drop() { _ = g.cmd.Process.Signal(syscall.SIGUSR1) }

// fault makes the gateway inject a new fault (gatewayFault) on the connections it
// accepts next, and drops the current ones.
func (g *gatewayProc) fault() { _ = g.cmd.Process.Signal(syscall.SIGUSR2) }

// soakLog keeps the end of every log line written during the run; a failing
// run prints it. (Workers are killed on purpose, so their deaths are expected.)
var soakLog = &tailBuffer{max: 256 << 10}

var logger = hclog.New(&hclog.LoggerOptions{Name: "soak", Level: hclog.Info, Output: soakLog})

var transports = []struct {
	name string
	dial robust.Dialer
}{
	{"stdiojson", stdiojson.Dialer(stdiojson.WithSelf(), stdiojson.WithLogger(logger))},
	{"goplugin", goplugin.Dialer(goplugin.WithSelf(), goplugin.WithLogger(logger))},
}

// tailBuffer is an io.Writer that keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// robustOptions: quick backoff and enough attempts to ride out a restart.
func robustOptions() []robust.Option {
	return []robust.Option{
		robust.WithMaxAttempts(100),
		robust.WithBackoff(robust.Backoff{Base: 5 * time.Millisecond, Max: 200 * time.Millisecond}),
		robust.WithAttemptTimeout(5 * time.Second),
		robust.WithHealthCheck(500*time.Millisecond, 2*time.Second, 3),
		robust.WithBreaker(0, 0),
		robust.WithLogger(logger),
	}
}

// callersPerTransport call in a loop through each transport.
const callersPerTransport = 4

// TestSoak calls through robust over every transport while killing workers,
// freezing them (SIGSTOP) and dropping the gateway, and fails on any failed call, any wrong answer, and any
// growth of goroutines, fds, RSS, child processes or CLOSE_WAIT sockets between
// the first window of the run and the last.
func TestSoak(t *testing.T) {
	d := *soakDuration
	if d <= 0 {
		d = shortRun
	}
	script := conformance.StandardScript()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("end of the log:\n%s", soakLog.String())
		}
	})
	gw := startGateway(t)
	params := broker.ConnectParams{Host: "127.0.0.1", Port: gw.port, ClientID: 7, Timeout: 5 * time.Second}

	type target struct {
		name string
		b    *robust.Broker
	}
	var targets []target
	for i, tr := range transports {
		b := robust.New(tr.dial, robustOptions()...)
		t.Cleanup(func() { _ = b.Close() })
		p := params
		p.ClientID += int64(i)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_, err := b.Connect(ctx, p)
		cancel()
		if err != nil {
			t.Fatalf("%s: Connect: %v", tr.name, err)
		}
		targets = append(targets, target{tr.name, b})
	}

	ctx, stop := context.WithTimeout(context.Background(), d)
	defer stop()
	var calls, kills, freezes, drops, faults atomic.Int64
	var mu sync.Mutex
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
		stop()
	}

	// Sampling starts once everything is up, so the first window is steady state.
	interval := max(d/60, 100*time.Millisecond)
	samples := make(chan []sample, 1)
	go func() { samples <- sampleUntil(ctx, interval) }()

	var wg sync.WaitGroup
	for _, tg := range targets {
		for c := range callersPerTransport {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(c), 1))
				for ctx.Err() == nil {
					if n := calls.Add(1); *soakCalls > 0 && n > *soakCalls {
						stop()
						return
					}
					if err := checkedCall(tg.b, r.IntN(4), script); err != nil {
						if ctx.Err() != nil {
							return // the run ended during the call
						}
						fail("%s: %v (stats %+v)", tg.name, err, tg.b.Stats())
						return
					}
				}
			})
		}
	}
	wg.Go(func() {
		r := rand.New(rand.NewPCG(99, 1))
		for {
			wait := time.Duration(float64(*soakChaos) * (0.5 + r.Float64()))
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			switch r.IntN(4) {
			case 0:
				gw.drop()
				drops.Add(1)
				continue
			case 1:
				gw.fault()
				faults.Add(1)
				continue
			}
			tg := targets[r.IntN(len(targets))]
			pid := tg.b.Stats().WorkerPID
			if pid <= 0 {
				continue
			}
			if r.IntN(4) == 0 {
				// Frozen, not dead: robust's health check must notice, and the
				// transport's Close must kill it after its grace period.
				if syscall.Kill(pid, syscall.SIGSTOP) == nil {
					freezes.Add(1)
				}
				continue
			}
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				kills.Add(1)
			}
		}
	})
	wg.Wait()
	ss := <-samples
	for _, f := range failures {
		t.Error(f)
	}
	for _, tg := range targets {
		st := tg.b.Stats()
		t.Logf("%s: %d calls, %d restarts, %d reconnects, %d retries", tg.name, st.Calls, st.Restarts, st.Reconnects, st.Retries)
	}
	t.Logf("%v: %d calls, %d workers killed, %d frozen (SIGSTOP), %d gateway drops, %d gateway faults, %d samples",
		d, calls.Load(), kills.Load(), freezes.Load(), drops.Load(), faults.Load(), len(ss))
	checkGrowth(t, ss, d)

	for _, tg := range targets {
		if err := tg.b.Close(); err != nil {
			t.Errorf("%s: Close: %v", tg.name, err)
		}
	}
	// Every worker is gone once the robust Brokers are closed; only the gateway remains.
	deadline := time.Now().Add(10 * time.Second)
	for {
		kids := leakcheck.Children(0)
		if len(kids) <= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("child processes left after Close: %v (the gateway is %d)", kids, gw.cmd.Process.Pid)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkedCall makes one call and compares its answer with the script.
func checkedCall(b *robust.Broker, kind int, s fakes.Script) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	switch kind {
	case 0:
		got, err := b.Accounts(ctx)
		if err != nil {
			return fmt.Errorf("Accounts: %w", err)
		}
		if diff := cmp.Diff(s.Accounts, got); diff != "" {
			return fmt.Errorf("Accounts: wrong answer (-script +got):\n%s", diff)
		}
	case 1:
		got, err := b.Positions(ctx)
		if err != nil {
			return fmt.Errorf("Positions: %w", err)
		}
		if diff := cmp.Diff(s.Positions, got); diff != "" {
			return fmt.Errorf("Positions: wrong answer (-script +got):\n%s", diff)
		}
	case 2:
		got, err := b.AccountSummary(ctx)
		if err != nil {
			return fmt.Errorf("AccountSummary: %w", err)
		}
		if diff := cmp.Diff(conformance.ExpectedSummary(s), got); diff != "" {
			return fmt.Errorf("AccountSummary: wrong answer (-script +got):\n%s", diff)
		}
	default:
		if err := b.Ping(ctx); err != nil {
			return fmt.Errorf("Ping: %w", err)
		}
	}
	return nil
}

// sample is one reading of the process's resources.
type sample struct {
	at         time.Duration // since sampling began
	goroutines int
	fds        int
	rssKiB     int
	children   int
	closeWait  int
}

// metrics names the fields of a sample with the growth each may show beyond 5 %
// without failing the run: an absolute slack keeps small numbers from flaking
// (a worker being replaced at the moment of a sample has two processes, a few
// goroutines and descriptors in flight; RSS moves by whole spans).
var metrics = []struct {
	name  string
	get   func(sample) int
	slack int
}{
	{"goroutines", func(s sample) int { return s.goroutines }, 20},
	{"open fds", func(s sample) int { return s.fds }, 16},
	{"RSS KiB", func(s sample) int { return s.rssKiB }, 16 << 10}, // the race detector grows RSS by itself
	{"child processes", func(s sample) int { return s.children }, 2},
	{"CLOSE_WAIT sockets", func(s sample) int { return s.closeWait }, 4},
}

func sampleUntil(ctx context.Context, every time.Duration) []sample {
	start := time.Now()
	var out []sample
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		out = append(out, takeSample(time.Since(start)))
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
	}
}

func takeSample(at time.Duration) sample {
	debug.FreeOSMemory() // RSS after a GC and a scavenge: live memory, not garbage
	kids := leakcheck.Children(0)
	return sample{
		at:         at,
		goroutines: runtime.NumGoroutine(),
		fds:        len(leakcheck.FDs(0)),
		rssKiB:     rss(),
		children:   len(kids),
		closeWait:  leakcheck.CloseWait(kids...),
	}
}

// checkGrowth compares the first window of the run (its first minute, or first
// third for runs under three minutes) with the last one: the smallest reading of
// the last window may exceed the largest of the first by at most max(5 %, slack).
func checkGrowth(t *testing.T, ss []sample, d time.Duration) {
	t.Helper()
	if len(ss) < 3 {
		t.Fatalf("only %d samples", len(ss))
	}
	window := min(time.Minute, d/3)
	var first, last []sample
	end := ss[len(ss)-1].at
	for _, s := range ss {
		if s.at <= window {
			first = append(first, s)
		}
		if s.at >= end-window {
			last = append(last, s)
		}
	}
	for _, m := range metrics {
		hi := slices.Max(pick(first, m.get))
		lo := slices.Min(pick(last, m.get))
		allowed := max(hi+hi/20, hi+m.slack)
		t.Logf("%-18s first window max %8d, last window min %8d (allowed %d)", m.name, hi, lo, allowed)
		if lo > allowed {
			t.Errorf("%s grew from %d to %d (more than max(5%%, +%d)): readings %v", m.name, hi, lo, m.slack, pick(ss, m.get))
		}
	}
}

func pick(ss []sample, get func(sample) int) []int {
	out := make([]int, len(ss))
	for i, s := range ss {
		out[i] = get(s)
	}
	return out
}

// rss returns VmRSS of this process in KiB.
func rss() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}
