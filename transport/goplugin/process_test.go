package goplugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/internal/leakcheck"
	"github.com/brokerkit/brokerkit/internal/testbroker"
)

// These tests run the real thing: go-plugin, a child process (the re-executed
// test binary, see TestMain), mutual TLS unless said otherwise.

func TestChildServesTheBroker(t *testing.T) {
	c, _ := startChild(t, "mem")
	if c.Pid() <= 0 {
		t.Errorf("Pid = %d", c.Pid())
	}
	ctx := context.Background()
	ci := connect(t, c)
	if diff := cmp.Diff(broker.ConnectInfo{Accounts: memAccounts, ServerVersion: 193}, ci); diff != "" {
		t.Errorf("ConnectInfo (-want +got):\n%s", diff)
	}
	got, err := c.Positions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(genPositions(3), got); diff != "" {
		t.Errorf("Positions (-want +got):\n%s", diff)
	}
	if _, err := c.AccountSummary(ctx, "err:client_id_in_use:326"); !errors.Is(err, broker.ErrClientIDInUse) || broker.IBCode(err) != broker.IBCodeClientIDInUse {
		t.Errorf("scripted error = %v (ib %d), want ErrClientIDInUse with IB code 326", err, broker.IBCode(err))
	}

	events, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AccountSummary(ctx, "event"); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "event from the child", func() {
		e := <-events
		if e.Kind != broker.EventNotice || e.Code != broker.IBCodeMarketDataFarmOK || e.Time.IsZero() {
			t.Errorf("event = %+v, want a timed notice 2104", e)
		}
	})

	within(t, 20*time.Second, "Close", func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	})
	select {
	case <-c.Exited():
	default:
		t.Error("child still running after Close returned")
	}
	if _, ok := <-events; ok {
		t.Error("event channel still open after Close")
	}
	if err := c.Ping(ctx); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Ping after Close = %v, want ErrClosed", err)
	}
}

func TestWithoutAutoMTLS(t *testing.T) {
	c, _ := startChild(t, "mem", WithoutAutoMTLS())
	connect(t, c)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWithSelf(t *testing.T) {
	log, buf := testLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, WithSelf(), WithLogger(log))
	if err != nil {
		t.Fatalf("Start(WithSelf): %v\n%s", err, buf.String())
	}
	defer c.Close()
	connect(t, c)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStrayStdoutDoesNotBreakTheProtocol(t *testing.T) {
	// "noisy" writes to stdout before the handshake; "print" writes mid-call
	// through fmt.Println, os.Stdout and the raw file descriptor 1.
	c, logs := startChild(t, "noisy")
	connect(t, c)
	ctx := context.Background()
	for range 3 {
		if _, err := c.AccountSummary(ctx, "print", "NetLiquidation"); err != nil {
			t.Fatalf("call that prints to stdout: %v", err)
		}
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("Ping after stray output: %v", err)
		}
	}
	// The stray output is not lost: it reaches the host's logger.
	for _, s := range []string{
		"stray fmt.Println before the handshake",
		"stray half line before the handshake, then",
		"stray fmt.Println mid-call",
		"stray os.Stdout write without newline",
		"stray raw fd 1 write",
	} {
		waitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := logs.WaitContains(waitCtx, s); err != nil {
			t.Errorf("host log lacks %q: %v", s, err)
		}
		cancel()
	}
}

func TestKill9MidCall(t *testing.T) {
	c, logs := startChild(t, "mem")
	connect(t, c)
	errc := make(chan error, 1)
	go func() {
		_, err := c.AccountSummary(context.Background(), "block")
		errc <- err
	}()
	waitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := logs.WaitContains(waitCtx, testbroker.BlockedNote); err != nil { // the call is in flight
		t.Fatal(err)
	}
	if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "in-flight call after kill -9", func() {
		if err := <-errc; !errors.Is(err, broker.ErrUnavailable) {
			t.Errorf("in-flight call = %v, want ErrUnavailable", err)
		}
	})
	within(t, 10*time.Second, "child exit noticed", func() { <-c.Exited() })
	within(t, 10*time.Second, "later calls", func() {
		if err := c.Ping(context.Background()); !errors.Is(err, broker.ErrUnavailable) {
			t.Errorf("later Ping = %v, want ErrUnavailable", err)
		}
		if _, err := c.Subscribe(context.Background()); !errors.Is(err, broker.ErrUnavailable) {
			t.Errorf("later Subscribe = %v, want ErrUnavailable", err)
		}
	})
	within(t, 20*time.Second, "Close of a dead child", func() { _ = c.Close() })
}

func TestContextExpiryOverChild(t *testing.T) {
	c, _ := startChild(t, "mem")
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.AccountSummary(ctx, "block"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked call = %v, want DeadlineExceeded", err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after expiry = %v", err)
	}
}

func TestConcurrentCallersOverChild(t *testing.T) {
	c, _ := startChild(t, "mem")
	connect(t, c)
	runConcurrentCallers(t, c)
}

func TestPanicInChildIsAnError(t *testing.T) {
	c, _ := startChild(t, "mem")
	connect(t, c)
	if _, err := c.AccountSummary(context.Background(), "panic"); broker.ErrorCode(err) != broker.CodeInternal {
		t.Fatalf("panicking call = %v, want an internal error", err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after panic = %v (the child must survive)", err)
	}
}

func TestStartFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Start(ctx); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("Start() = %v, want ErrInvalidArgument", err)
	}
	// A program that is not a plugin exits without a handshake.
	if _, err := Start(ctx, WithCommand("/bin/sh", "-c", "echo not a plugin")); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Start(not a plugin) = %v, want ErrUnavailable", err)
	}
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := Start(canceled, WithCommand(os.Args[0], argChild, "mem")); !errors.Is(err, context.Canceled) {
		t.Errorf("Start(canceled) = %v, want Canceled", err)
	}
	// A child that never handshakes is killed when ctx ends.
	short, cancel3 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel3()
	within(t, 20*time.Second, "Start of a silent child", func() {
		if _, err := Start(short, WithCommand("/bin/sh", "-c", "exec sleep 30")); err == nil {
			t.Error("Start(silent child) succeeded")
		}
	})
}

func TestRunByHandExplainsItself(t *testing.T) {
	cmd := exec.Command(os.Args[0], argChild, "mem")
	cmd.Env = os.Environ() // no magic cookie
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("child run by hand: err %v, output %q", err, out)
	}
	// It says what it is and how to use it, not go-plugin's generic message.
	for _, want := range []string{"brokerkit go-plugin child", "Broker port", "goplugin.Start", Handshake.MagicCookieKey} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child run by hand says %q, want it to mention %q", out, want)
		}
	}
	if strings.Contains(string(out), "This binary is a plugin") {
		t.Errorf("child run by hand prints go-plugin's generic message: %q", out)
	}
}

// TestChildExitsWhenHostDies starts a host process that starts a child, kills the
// host with SIGKILL and waits for the orphaned child to go away.
func TestChildExitsWhenHostDies(t *testing.T) { testChildExitsWhenHostDies(t, false) }

// TestStoppedChildExitsWhenHostDies is the same with the child stopped (SIGSTOP)
// before its host dies: a stopped process leaves any signal but SIGKILL pending.
func TestStoppedChildExitsWhenHostDies(t *testing.T) { testChildExitsWhenHostDies(t, true) }

func testChildExitsWhenHostDies(t *testing.T, stop bool) {
	host := exec.Command(os.Args[0], argHost)
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
	var socket string
	within(t, 30*time.Second, "host reporting its child", func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil {
			_, err = fmt.Sscanf(line, "%d %s", &pid, &socket)
		}
		if err != nil {
			t.Errorf("reading child pid and socket: %v (%q)", err, line)
		}
	})
	if pid <= 0 || socket == "" {
		t.Fatalf("no child pid or socket")
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // a failed test leaves no child
	if !leakcheck.Alive(pid) {
		t.Fatalf("child %d not running while its host lives", pid)
	}
	if stop {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	if err := host.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for leakcheck.Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still running 15s after its host died", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file %s left behind: %v", socket, err)
	}
}

// TestCloseOfFrozenChildIsBounded stops the child with SIGSTOP: Close must return
// within about the grace period (go-plugin's own Kill waits forever on a frozen
// child), kill the child and leave neither the process nor its socket file.
func TestCloseOfFrozenChildIsBounded(t *testing.T) {
	const grace = 300 * time.Millisecond
	c, _ := startChild(t, "mem", WithGracePeriod(grace), WithoutAutoMTLS())
	connect(t, c)
	pid, socket := c.Pid(), c.socket
	if socket == "" {
		t.Fatal("no socket path known for the child")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // a failed test leaves no stopped child
	start := time.Now()
	within(t, 20*time.Second, "Close of a frozen child", func() { _ = c.Close() })
	// The bound is the grace period plus go-plugin's release of a killed child
	// (killWait at most); the generous slack only absorbs a loaded machine.
	if took := time.Since(start); took > grace+killWait+3*time.Second {
		t.Errorf("Close of a frozen child took %v, grace %v", took, grace)
	} else {
		t.Logf("Close of a frozen child took %v (grace %v)", took, grace)
	}
	select {
	case <-c.Exited():
	default:
		t.Error("child not reaped after Close returned")
	}
	if leakcheck.Alive(pid) {
		t.Errorf("child %d still exists after Close", pid)
	}
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file %s left behind: %v", socket, err)
	}
}
