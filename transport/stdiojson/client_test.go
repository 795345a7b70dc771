package stdiojson

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/internal/leakcheck"
)

// startMem starts the test binary as a worker serving a memBroker with n
// positions, through WithSelf and MaybeRunWorker, and closes it at cleanup.
func startMem(t testing.TB, n int, opts ...Option) (*Client, *syncBuffer) {
	t.Helper()
	log, buf := testLogger(t)
	opts = append([]Option{
		WithSelf(),
		WithEnv(envTestMode+"=mem", envTestPositions+"="+strconv.Itoa(n), EnvLogLevel+"=debug", noRaceExitSleep),
		WithLogger(log),
	}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	c, err := Start(ctx, opts...)
	if err != nil {
		t.Fatalf("Start: %v\nlog:\n%s", err, buf.String())
	}
	t.Cleanup(func() {
		c.Close()
		select {
		case <-c.Exited():
		default:
			t.Error("Close returned before the worker was reaped")
		}
	})
	return c, buf
}

// noRaceExitSleep stops a race-enabled worker from sleeping a second at exit.
const noRaceExitSleep = "GORACE=atexit_sleep_ms=0"

func ctxBound(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), hangBound)
	t.Cleanup(cancel)
	return ctx
}

func TestClientRoundTrip(t *testing.T) {
	c, _ := startMem(t, 50)
	ctx := ctxBound(t)
	want := newMemBroker(50)

	if err := c.Ping(ctx); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("Ping before Connect: %v, want ErrNotConnected", err)
	}
	info, err := c.Connect(ctx, broker.ConnectParams{Port: 4002, ClientID: 7, Timeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if diff := cmp.Diff(broker.ConnectInfo{Accounts: want.accounts(), ServerVersion: 176}, info); diff != "" {
		t.Errorf("ConnectInfo (-want +got):\n%s", diff)
	}
	if _, err := c.Connect(ctx, broker.ConnectParams{}); !errors.Is(err, broker.ErrAlreadyConnected) {
		t.Errorf("second Connect: %v, want ErrAlreadyConnected", err)
	}
	accts, err := c.Accounts(ctx)
	if err != nil || !cmp.Equal(want.accounts(), accts) {
		t.Errorf("Accounts = %v, %v; want %v", accts, err, want.accounts())
	}
	pos, err := c.Positions(ctx)
	if err != nil {
		t.Fatalf("Positions: %v", err)
	}
	if diff := cmp.Diff(want.positions(), pos); diff != "" {
		t.Errorf("Positions (-want +got):\n%s", diff)
	}
	sums, err := c.AccountSummary(ctx, "NetLiquidation", "AccountType")
	if _, err := want.Connect(context.Background(), broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	wantSums, _ := want.AccountSummary(context.Background(), "NetLiquidation", "AccountType")
	if err != nil || !cmp.Equal(wantSums, sums) {
		t.Errorf("AccountSummary = %v, %v; want %v", sums, err, wantSums)
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	_, err = c.AccountSummary(ctx, "ibcode:10148")
	var api *broker.APIError
	if !errors.As(err, &api) || api.Code != 10148 /* cannot cancel: no sentinel */ || broker.ErrorCode(err) != broker.CodeAPIError {
		t.Errorf("gateway error crossed as %v (%T)", err, err)
	}
	if _, err := c.AccountSummary(ctx, "panic"); broker.ErrorCode(err) != broker.CodeInternal {
		t.Errorf("panic in the worker crossed as %v", err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Errorf("Disconnect: %v", err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Errorf("second Disconnect: %v", err)
	}
	_, err = c.Connect(ctx, broker.ConnectParams{ClientID: 326})
	if !errors.Is(err, broker.ErrClientIDInUse) || !errors.As(err, &api) || api.Code != broker.IBCodeClientIDInUse {
		t.Errorf("Connect with a client id in use: %v", err)
	}
	if _, err := c.Connect(ctx, broker.ConnectParams{Port: -1}); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("Connect with a bad port: %v", err)
	}
}

// TestClientErrorsMatchInProcess checks that each sentinel the memBroker can
// produce is matched by errors.Is in-process and across the pipe alike.
func TestClientErrorsMatchInProcess(t *testing.T) {
	c, _ := startMem(t, 0)
	ctx := ctxBound(t)
	local := newMemBroker(0)
	calls := map[string]func(b broker.Broker) error{
		"ping-disconnected": func(b broker.Broker) error { return b.Ping(ctx) },
		"client-id-in-use": func(b broker.Broker) error {
			_, err := b.Connect(ctx, broker.ConnectParams{ClientID: 326})
			return err
		},
		"unreachable": func(b broker.Broker) error {
			_, err := b.Connect(ctx, broker.ConnectParams{ClientID: 502})
			return err
		},
		"invalid": func(b broker.Broker) error {
			_, err := b.Connect(ctx, broker.ConnectParams{Port: 70000})
			return err
		},
	}
	sentinels := []error{broker.ErrNotConnected, broker.ErrClientIDInUse, broker.ErrGatewayUnreachable, broker.ErrInvalidArgument}
	for name, call := range calls {
		in, out := call(local), call(c)
		for _, s := range sentinels {
			if errors.Is(in, s) != errors.Is(out, s) {
				t.Errorf("%s: errors.Is(_, %v) is %v in-process (%v) but %v over stdiojson (%v)", name, s, errors.Is(in, s), in, errors.Is(out, s), out)
			}
		}
		if broker.IBCode(in) != broker.IBCode(out) {
			t.Errorf("%s: IB code %d in-process, %d over stdiojson", name, broker.IBCode(in), broker.IBCode(out))
		}
	}
}

func TestClientOutOfOrderAndExpiry(t *testing.T) {
	c, _ := startMem(t, 10)
	ctx := ctxBound(t)
	if _, err := c.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	// A blocks on gate g; B, C, ... complete meanwhile (out of order).
	aDone := make(chan error, 1)
	go func() {
		_, err := c.AccountSummary(ctx, "wait:g", "NetLiquidation")
		aDone <- err
	}()
	// D's context expires while it is blocked on a gate that never opens.
	dctx, dcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer dcancel()
	if _, err := c.AccountSummary(dctx, "wait:never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired call: %v, want DeadlineExceeded", err)
	}
	// Many calls keep getting their own answers.
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				errs <- c.Ping(ctx)
			case 1:
				accts, err := c.Accounts(ctx)
				if err == nil && len(accts) != 2 {
					err = errors.New("wrong accounts " + strings.Join(accts, ","))
				}
				errs <- err
			case 2:
				pos, err := c.Positions(ctx)
				if err == nil && len(pos) != 10 {
					err = errors.New("wrong positions")
				}
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	select {
	case err := <-aDone:
		t.Fatalf("A returned before its gate opened: %v", err)
	default:
	}
	if _, err := c.AccountSummary(ctx, "release:g"); err != nil {
		t.Fatal(err)
	}
	if err := <-aDone; err != nil {
		t.Errorf("A: %v", err)
	}
	// The expired call was canceled in the worker, not left running: a cancel for
	// its id finds nothing in flight any more.
	var cd cancelData
	if err := c.call(ctx, CommandCancel, &wireRequest{Target: json.RawMessage(`2`)}, &cd); err != nil || cd.Canceled {
		t.Errorf("cancel of the expired call's id: %+v, %v; want nothing left to cancel", cd, err)
	}
}

func TestClientKill9MidCall(t *testing.T) {
	c, _ := startMem(t, 0)
	ctx := ctxBound(t)
	if _, err := c.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.AccountSummary(ctx, "wait:never")
			errs <- err
		}()
	}
	// Make sure the calls are in flight in the worker: a later id'd call that
	// completes was read after them.
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; !errors.Is(err, broker.ErrUnavailable) || !strings.Contains(err.Error(), "killed") {
			t.Errorf("in-flight call: %v, want ErrUnavailable naming the signal", err)
		}
	}
	if err := c.Ping(ctx); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("later call: %v, want ErrUnavailable", err)
	}
	select {
	case e := <-events:
		if e.Kind != broker.EventConnectionLost {
			t.Errorf("event %+v, want connection_lost", e)
		}
	case <-ctx.Done():
		t.Error("no connection_lost event")
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Ping(ctx); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

func TestClientWorkerExitsMidCall(t *testing.T) {
	c, _ := startMem(t, 0)
	ctx := ctxBound(t)
	if _, err := c.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.AccountSummary(ctx, "exit:7")
	if !errors.Is(err, broker.ErrUnavailable) || !strings.Contains(err.Error(), "exit status 7") {
		t.Errorf("call whose worker exits: %v, want ErrUnavailable with the exit status", err)
	}
}

func TestClientStrayStdout(t *testing.T) {
	c, log := startMem(t, 0)
	ctx := ctxBound(t)
	if _, err := c.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	sums, err := c.AccountSummary(ctx, "stdout:STRAY-OUTPUT", "NetLiquidation")
	if err != nil || len(sums) != 2 {
		t.Fatalf("AccountSummary after a stray print: %v, %v", sums, err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping after a stray print: %v", err)
	}
	c.Close() // flushes the stderr forwarding
	for _, want := range []string{"worker: STRAY-OUTPUT:", "worker: STRAY-OUTPUT (fd 1):"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("stray output %q not forwarded to the log:\n%s", want, log.String())
		}
	}
}

func TestClientEvents(t *testing.T) {
	c, _ := startMem(t, 0)
	ctx := ctxBound(t)
	if _, err := c.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AccountSummary(ctx, "event:notice"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e.Kind != broker.EventNotice || e.Code != broker.IBCodeMarketDataFarmOK || e.Message == "" || e.Time.IsZero() {
			t.Errorf("event %+v", e)
		}
	case <-ctx.Done():
		t.Fatal("no event")
	}
	c.Close()
	if _, ok := <-events; ok {
		t.Error("event channel still open after Close")
	}
	if _, err := c.Subscribe(ctx); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
}

func TestClientCloseFailsCallsInFlight(t *testing.T) {
	c, _ := startMem(t, 0)
	ctx := ctxBound(t)
	if _, err := c.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	go func() {
		_, err := c.AccountSummary(ctx, "wait:never")
		errs <- err
	}()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-errs; !errors.Is(err, broker.ErrClosed) {
		t.Errorf("call in flight at Close: %v, want ErrClosed", err)
	}
	if _, err := c.Accounts(ctx); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("call after Close: %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c.cmd.ProcessState == nil || !c.cmd.ProcessState.Success() {
		t.Errorf("worker did not exit cleanly: %v", c.cmd.ProcessState)
	}
}

func TestClientCloseKillsStubbornWorker(t *testing.T) {
	log, _ := testLogger(t)
	c, err := Start(ctxBound(t), WithSelf(), WithEnv(envTestMode+"=stubborn", noRaceExitSleep), WithLogger(log), WithGracePeriod(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-c.Exited():
	default:
		t.Fatal("Close returned before the worker was reaped")
	}
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("stubborn worker ended with %v, want SIGKILL", c.cmd.ProcessState)
	}
}

// TestClientCloseOfFrozenWorkerIsBounded stops the worker with SIGSTOP mid-call:
// Close must return within about the grace period, with the worker killed.
func TestClientCloseOfFrozenWorkerIsBounded(t *testing.T) {
	const grace = 300 * time.Millisecond
	c, _ := startMem(t, 0, WithGracePeriod(grace))
	if _, err := c.Connect(ctxBound(t), broker.ConnectParams{Host: "127.0.0.1", Port: 4002}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(c.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	pid := c.Pid()
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // a failed test leaves no stopped worker
	called := make(chan error, 1)
	go func() { called <- c.Ping(context.Background()) }()
	start := time.Now()
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(hangBound):
		t.Fatal("Close of a frozen worker did not return")
	}
	// The grace period bounds it; the slack only absorbs a loaded machine.
	if took := time.Since(start); took > grace+3*time.Second {
		t.Errorf("Close of a frozen worker took %v, grace %v", took, grace)
	}
	if err := <-called; !errors.Is(err, broker.ErrClosed) && !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("call in flight at Close = %v, want ErrClosed or ErrUnavailable", err)
	}
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("frozen worker ended with %v, want SIGKILL", c.cmd.ProcessState)
	}
}

func TestStartFailures(t *testing.T) {
	log, _ := testLogger(t)
	ctx := ctxBound(t)
	for name, opts := range map[string][]Option{
		"missing binary": {WithCommand("/nonexistent/brokerkit-worker")},
		"exits at once":  {WithSelf(), WithEnv(envTestMode+"=exit", noRaceExitSleep)},
		"not a worker":   {WithCommand("true")},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Start(ctx, append(opts, WithLogger(log))...)
			if !errors.Is(err, broker.ErrUnavailable) || c != nil {
				t.Errorf("Start = %v, %v; want ErrUnavailable", c, err)
			}
		})
	}
	if _, err := Start(ctx); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("Start without a command: %v", err)
	}
}

// TestWorkerPlanLines pipes the original plan's lines into a worker process, as
// `echo ... | brokerkit worker` would, with a stray print among them, and checks
// that stdout holds exactly the plan's answers.
func TestWorkerPlanLines(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxBound(t)
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), EnvWorker+"=1", envTestMode+"=mem", envTestPositions+"=2", noRaceExitSleep)
	cmd.Stdin = strings.NewReader(strings.Join([]string{
		`{"command": "connect", "host": "127.0.0.1", "port": 4002, "client_id": 1}`,
		`{"command": "get_account_summary", "tags": ["stdout:STRAY"]}`,
		`{"command": "get_accounts"}`,
		`{"command": "ping"}`,
		`{"command": "disconnect"}`,
	}, "\n"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("worker: %v\nstderr:\n%s", err, stderr.String())
	}
	var got []map[string]any
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", sc.Text(), err)
		}
		delete(m, "data") // the data shapes are checked in TestServePlanLines
		got = append(got, m)
	}
	ok := map[string]any{"status": "success"}
	if diff := cmp.Diff([]map[string]any{ok, ok, ok, ok, ok}, got); diff != "" {
		t.Errorf("stdout (-want +got):\n%s\nstderr:\n%s", diff, stderr.String())
	}
	if !strings.Contains(stderr.String(), "STRAY") {
		t.Errorf("stray print not on stderr:\n%s", stderr.String())
	}
}

// TestStoppedWorkerExitsWhenHostDies stops the worker (SIGSTOP), kills its host
// with SIGKILL and waits for the worker to go away. A stopped process leaves any
// signal but SIGKILL pending; the worker still goes because it leads its own
// process group (sysProcAttr), which the host's death orphans, and the kernel
// sends SIGHUP and SIGCONT to an orphaned group with a stopped member.
func TestStoppedWorkerExitsWhenHostDies(t *testing.T) {
	host := exec.Command(os.Args[0])
	host.Env = append(os.Environ(), envTestMode+"=host", noRaceExitSleep)
	host.Stderr = os.Stderr
	stdout, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = host.Process.Kill(); _ = host.Wait() }()
	var pid int
	done := make(chan error, 1)
	go func() {
		_, err := fmt.Fscanf(stdout, "%d\n", &pid)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil || pid <= 0 {
			t.Fatalf("reading the worker's pid: %v", err)
		}
	case <-time.After(hangBound):
		t.Fatal("host did not report its worker")
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // a failed test leaves no worker
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := host.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if !leakcheck.Alive(pid) {
			return // gone (reaped by init), or dead and awaiting its reaper
		}
		if time.Now().After(deadline) {
			_, stat, _ := leakcheck.ProcState(pid)
			t.Fatalf("worker %d still running 15s after its host died: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
