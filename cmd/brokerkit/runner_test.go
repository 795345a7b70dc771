package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/robust"
)

// TestMain lets the test binary act as the child process the transports spawn
// (`<exe> worker`, `<exe> plugin`), the way the real binary does.
// With envBeMain set, it is the whole command (main), for tests of signals.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "worker" || os.Args[1] == "plugin") {
		os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	if os.Getenv(envBeMain) == "1" {
		os.Args = append(os.Args[:1], os.Args[2:]...) // drop the "--" separator
		main()
	}
	os.Exit(m.Run())
}

const envBeMain = "BROKERKIT_TEST_BE_MAIN"

// signalAfterTicks runs `brokerkit <args>` as a real process, reads two ticks
// whose ok must be wantOK, sends SIGTERM and returns the last tick's worker pid
// and what Wait returned.
func signalAfterTicks(t *testing.T, wantOK bool, args ...string) (pid int, waitErr error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--"}, args...)...)
	cmd.Env = append(os.Environ(), envBeMain+"=1", "GORACE=atexit_sleep_ms=0") // race builds otherwise sleep 1s at exit
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	for i := 0; i < 2 && sc.Scan(); i++ {
		tk := ticksOf(t, sc.Text())
		if len(tk) != 1 || tk[0].OK != wantOK {
			t.Fatalf("tick %q, want ok=%v", sc.Text(), wantOK)
		}
		pid = tk[0].WorkerPID
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		t.Logf("exited %v after SIGTERM: %v", time.Since(start), err)
		return pid, err
	case <-time.After(10 * time.Second): // a bound against hangs, not a speed check
		t.Fatal("run did not exit after SIGTERM")
		return 0, nil
	}
}

// TestRunExitsOnSIGTERM runs `brokerkit run` as a real process, sends SIGTERM after
// its first ticks, and checks it exits 0 leaving no worker behind.
func TestRunExitsOnSIGTERM(t *testing.T) {
	pid, err := signalAfterTicks(t, true, "run", "--transport", "stdiojson", "--interval", "50ms")
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if pid == 0 {
		t.Fatal("no worker pid reported")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("worker %d still exists after run exited", pid)
	}
}

// TestRunSurvivesKill9 runs `brokerkit run` over stdiojson, kills its worker with
// SIGKILL, and checks that the JSON lines show the restart and ok again, and that
// cancellation (what SIGTERM does) ends it cleanly.
func TestRunSurvivesKill9(t *testing.T) {
	for _, transport := range []string{"stdiojson", "goplugin"} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			pr, pw := io.Pipe()
			done := make(chan int, 1)
			go func() {
				code := Main(ctx, []string{"run", "--transport", transport, "--interval", "50ms", "--symbols", "AAPL"}, pw, io.Discard)
				pw.Close()
				done <- code
			}()
			sc := bufio.NewScanner(pr)
			var killed, firstPID int
			deadline := time.After(60 * time.Second) // against hangs only
			for sc.Scan() {
				var tk tick
				if err := json.Unmarshal(sc.Bytes(), &tk); err != nil {
					t.Fatalf("bad line %q: %v", sc.Text(), err)
				}
				select {
				case <-deadline:
					t.Fatal("no restart seen in time")
				default:
				}
				switch {
				case killed == 0 && tk.OK && tk.WorkerPID > 0:
					if len(tk.Positions) != 2 {
						t.Errorf("AAPL positions = %+v, want the 2 of the demo script", tk.Positions)
					}
					firstPID, killed = tk.WorkerPID, 1
					if err := syscall.Kill(firstPID, syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
				case killed == 1 && tk.OK && tk.Restarts >= 1:
					if tk.WorkerPID == firstPID || tk.WorkerPID == 0 {
						t.Errorf("worker pid after restart = %d (was %d)", tk.WorkerPID, firstPID)
					}
					killed = 2
					cancel()
				}
				if killed == 2 {
					break
				}
			}
			go io.Copy(io.Discard, pr)
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("exit %d after cancellation", code)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("run did not stop after cancellation")
			}
			if killed != 2 {
				t.Fatalf("never saw ok after the restart (state %d)", killed)
			}
			if err := syscall.Kill(firstPID, 0); err == nil {
				t.Errorf("killed worker %d still exists (zombie?)", firstPID)
			}
		})
	}
}

// deadPort returns a loopback port nothing listens on.
func deadPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return strconv.Itoa(port)
}

// ticksOf decodes run's output, failing on any line that is not a tick.
func ticksOf(t *testing.T, out string) []tick {
	t.Helper()
	var ticks []tick
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var tk tick
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&tk); err != nil {
			t.Fatalf("not a tick: %q: %v", line, err)
		}
		ticks = append(ticks, tk)
	}
	return ticks
}

// TestRunExitStatus: with --duration, run exits 1 when no tick succeeded and 0
// otherwise; --max-failures stops it early; a failing tick still prints a line.
func TestRunExitStatus(t *testing.T) {
	t.Run("duration, every tick fails", func(t *testing.T) {
		code, out, errs := run(t, "run", "--transport", "inprocess", "--host", "127.0.0.1", "--port", deadPort(t),
			"--interval", "100ms", "--duration", "700ms")
		ticks := ticksOf(t, out)
		if code != 1 || len(ticks) == 0 || !strings.Contains(errs, "no tick succeeded in 700ms") {
			t.Errorf("exit %d, %d ticks, stderr %q", code, len(ticks), errs)
		}
		for _, tk := range ticks {
			if tk.OK || tk.Error == "" || tk.ErrorCode == "" || tk.Positions != nil {
				t.Errorf("failed tick %+v", tk)
			}
		}
	})
	t.Run("duration, ticks succeed", func(t *testing.T) {
		code, out, errs := run(t, "run", "--transport", "inprocess", "--interval", "100ms", "--duration", "700ms")
		ticks := ticksOf(t, out)
		if code != 0 || len(ticks) == 0 || !ticks[0].OK {
			t.Fatalf("exit %d, ticks %+v, stderr %q", code, ticks, errs)
		}
		nl, ok := ticks[0].NetLiquidation["DU7654321"]
		if want := (jsonSummaryValue{Value: "51234.5", Currency: "EUR"}); !ok || nl != want {
			t.Errorf("net_liquidation = %+v, want value and currency apart: %+v", ticks[0].NetLiquidation, want)
		}
	})
	t.Run("max failures", func(t *testing.T) {
		code, out, errs := run(t, "run", "--transport", "inprocess", "--host", "127.0.0.1", "--port", deadPort(t),
			"--interval", "50ms", "--max-failures", "3")
		if ticks := ticksOf(t, out); code != 1 || len(ticks) != 3 || !strings.Contains(errs, "3 consecutive ticks failed (--max-failures)") {
			t.Errorf("exit %d, %d ticks, stderr %q", code, len(ticks), errs)
		}
	})
	t.Run("duration shorter than the handshake timeout", func(t *testing.T) {
		gw := gatewayWith(t, fakes.Faults{StallHandshake: true})
		code, out, errs := run(t, "run", "--transport", "inprocess", "--host", "127.0.0.1", "--port", strconv.Itoa(gw.Port()),
			"--timeout", "10s", "--duration", "500ms")
		ticks := ticksOf(t, out)
		if code != 1 || len(ticks) != 1 || ticks[0].OK || !strings.Contains(ticks[0].Error, "stopped before the tick completed") {
			t.Errorf("exit %d, ticks %+v, stderr %q", code, ticks, errs)
		}
	})
}

// TestRunHandshakeTimeout: against a gateway that accepts but never completes
// the handshake, each tick fails after --timeout with the explanation, and the
// ticks keep coming (the per-tick deadline does not cut the handshake short).
func TestRunHandshakeTimeout(t *testing.T) {
	for _, transport := range []string{"inprocess", "stdiojson"} {
		t.Run(transport, func(t *testing.T) {
			gw := gatewayWith(t, fakes.Faults{StallHandshake: true})
			code, out, errs := run(t, "run", "--transport", transport, "--host", "127.0.0.1", "--port", strconv.Itoa(gw.Port()),
				"--timeout", "300ms", "--interval", "50ms", "--max-failures", "3")
			ticks := ticksOf(t, out)
			if code != 1 || len(ticks) != 3 {
				t.Fatalf("exit %d, %d ticks, stderr %q", code, len(ticks), errs)
			}
			for _, tk := range ticks {
				if tk.ErrorCode != "timeout" || !strings.Contains(tk.Error, "did not complete the API handshake") ||
					strings.Contains(tk.Error, "context deadline exceeded") {
					t.Errorf("tick error %q (%s), want the handshake explanation", tk.Error, tk.ErrorCode)
				}
			}
		})
	}
}

// TestRunSignalAfterFailures: SIGTERM while the ticks fail exits 1.
func TestRunSignalAfterFailures(t *testing.T) {
	_, err := signalAfterTicks(t, false, "run", "--transport", "inprocess", "--host", "127.0.0.1", "--port", deadPort(t), "--interval", "50ms")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit after SIGTERM with failing ticks: %v, want status 1", err)
	}
}

// TestTickStateWhileBreakerOpen: a session whose pings answer but whose calls all
// fail opens the breaker; robust still says connected, but a tick must not.
func TestTickStateWhileBreakerOpen(t *testing.T) {
	failing := func(_ context.Context, op broker.Op, _ []string) error {
		if op == broker.OpPositions {
			return broker.ErrTimeout
		}
		return nil
	}
	rb := robust.New(func(context.Context) (broker.Broker, error) {
		return fakes.NewMemory(fakes.DefaultScript(), fakes.WithHook(failing)), nil
	}, robust.WithMaxAttempts(1), robust.WithBreaker(2, time.Hour), robust.WithHealthCheck(0, time.Second, 1))
	defer rb.Close()
	c := &connFlags{params: broker.ConnectParams{Host: "127.0.0.1", Port: 4002}, callTimeout: time.Second}
	connected := false
	var tk tick
	for range 3 {
		tk = runTick(t.Context(), rb, c, &connected, nil, nil)
	}
	if tk.OK || tk.Breaker != "open" {
		t.Fatalf("third tick = %+v, want a failure with the breaker open", tk)
	}
	if tk.State == robust.StateConnected.String() {
		t.Errorf("tick state %q while the breaker is open and every call fails", tk.State)
	}
	if tk.State != "unavailable" {
		t.Errorf("tick state %q, want unavailable", tk.State)
	}
}
