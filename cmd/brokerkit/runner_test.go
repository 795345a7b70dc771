package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
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

// TestRunExitsOnSIGTERM runs `brokerkit run` as a real process, sends SIGTERM after
// its first ticks, and checks it exits 0 leaving no worker behind.
func TestRunExitsOnSIGTERM(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--", "run", "--transport", "stdiojson", "--interval", "50ms")
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
	var pid int
	for i := 0; i < 2 && sc.Scan(); i++ {
		var tk tick
		if err := json.Unmarshal(sc.Bytes(), &tk); err != nil || !tk.OK {
			t.Fatalf("tick %q: %v", sc.Text(), err)
		}
		pid = tk.WorkerPID
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
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		t.Logf("exited %v after SIGTERM", time.Since(start))
	case <-time.After(10 * time.Second): // a bound against hangs, not a speed check
		t.Fatal("run did not exit after SIGTERM")
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
	connected := false
	var tk tick
	for range 3 {
		tk = runTick(t.Context(), rb, broker.ConnectParams{Host: "127.0.0.1", Port: 4002}, &connected, nil, time.Second)
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
