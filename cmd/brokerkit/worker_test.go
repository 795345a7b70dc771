package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/transport/stdiojson"
)

// startWorker starts the test binary as `brokerkit worker args...` through the
// Go host, closed at the end of the test.
func startWorker(t *testing.T, args ...string) *stdiojson.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := stdiojson.Start(ctx, stdiojson.WithCommand(os.Args[0], append([]string{"worker"}, args...)...),
		stdiojson.WithEnv("GORACE=atexit_sleep_ms=0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newGateway(t *testing.T) *fakes.Gateway {
	t.Helper()
	gw, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	return gw
}

// nextEvent waits for the next event on ch satisfying ok, within d.
func nextEvent(t *testing.T, ch <-chan broker.Event, d time.Duration, ok func(broker.Event) bool) broker.Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, open := <-ch:
			if !open {
				t.Fatal("event stream ended")
			}
			if ok(e) {
				return e
			}
		case <-timer.C:
			t.Fatalf("no such event within %v", d)
		}
	}
}

// TestWorkerRobustReconnectsAfterGatewayDrop drops every gateway connection
// under a connected worker. A plain worker stays disconnected (the host must
// reconnect); a --robust worker reports connection_lost and connection_restored
// (no IB code) as events and serves the next calls from a new session.
func TestWorkerRobustReconnectsAfterGatewayDrop(t *testing.T) {
	for _, robustOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("robust=%v", robustOn), func(t *testing.T) {
			gw := newGateway(t)
			var args []string
			if robustOn {
				args = []string{"--robust", "--health-interval", "200ms"}
			}
			c := startWorker(t, args...)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			events, err := c.Subscribe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Connect(ctx, gw.ConnectParams(31)); err != nil {
				t.Fatal(err)
			}
			if n := gw.DropConnections(); n != 1 {
				t.Fatalf("dropped %d connections, want 1", n)
			}
			lost := nextEvent(t, events, 10*time.Second, func(e broker.Event) bool { return e.Kind == broker.EventConnectionLost })
			if lost.Code != 0 {
				t.Errorf("connection_lost with IB code %d, want none", lost.Code)
			}
			if !robustOn {
				if err := c.Ping(ctx); !errors.Is(err, broker.ErrNotConnected) {
					t.Fatalf("plain worker: ping after the drop = %v, want ErrNotConnected", err)
				}
				return
			}
			restored := nextEvent(t, events, 10*time.Second, func(e broker.Event) bool { return e.Kind == broker.EventConnectionRestored })
			if restored.Code != 0 || !strings.Contains(restored.Message, "restored") {
				t.Errorf("restored event %+v", restored)
			}
			positions, err := c.Positions(ctx)
			if err != nil || len(positions) != len(fakes.DefaultScript().Positions) {
				t.Fatalf("positions after the drop: %d, %v", len(positions), err)
			}
			// IB's own connectivity codes reach the host unchanged.
			gw.Notify(broker.IBCodeConnectivityLost, "Connectivity between IB and Trader Workstation has been lost.")
			if e := nextEvent(t, events, 5*time.Second, func(e broker.Event) bool { return e.Code == broker.IBCodeConnectivityLost }); e.Kind != broker.EventConnectionLost {
				t.Errorf("1100 arrived as %v", e.Kind)
			}
			gw.Notify(broker.IBCodeRestoredDataMaintained, "Connectivity between IB and Trader Workstation has been restored - data maintained.")
			if e := nextEvent(t, events, 5*time.Second, func(e broker.Event) bool { return e.Code == broker.IBCodeRestoredDataMaintained }); e.Kind != broker.EventConnectionRestored {
				t.Errorf("1102 arrived as %v", e.Kind)
			}
		})
	}
}

// TestWorkerRobustClientIDPolicy connects a second worker with a client id that
// a live session holds: a plain worker answers client_id_in_use, a --robust one
// with --client-id-policy next moves to the next id.
func TestWorkerRobustClientIDPolicy(t *testing.T) {
	gw := newGateway(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	holder := startWorker(t)
	if _, err := holder.Connect(ctx, gw.ConnectParams(41)); err != nil {
		t.Fatal(err)
	}
	plain := startWorker(t)
	if _, err := plain.Connect(ctx, gw.ConnectParams(41)); !errors.Is(err, broker.ErrClientIDInUse) {
		t.Fatalf("plain worker, id in use: %v, want ErrClientIDInUse", err)
	}
	next := startWorker(t, "--robust", "--client-id-policy", "next", "--client-id-span", "4")
	if _, err := next.Connect(ctx, gw.ConnectParams(41)); err != nil {
		t.Fatalf("--client-id-policy next: %v", err)
	}
	if ids := gw.LiveClientIDs(); !slices.Contains(ids, 41) || !slices.Contains(ids, 42) {
		t.Errorf("live client ids %v, want 41 and 42", ids)
	}
}

// TestWorkerRobustFlagsAreChecked: a bad policy is a usage error (exit 2).
func TestWorkerRobustFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{
		{"worker", "--robust", "--client-id-policy", "random"},
		{"worker", "--robust", "--client-id-policy", "next", "--client-id-span", "0"},
		{"worker", "--robust", "--health-interval", "-1s"},
	} {
		if code, _, errs := run(t, args...); code != 2 || !strings.Contains(errs, "brokerkit worker") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, errs)
		}
	}
}

// TestWorkerRobustKeepsThePlanLines pipes the original plan's id-less lines into
// `brokerkit worker` and `brokerkit worker --robust`: every success answer is the
// same byte for byte, every error answer has the same status and code; only the
// human-readable error text differs (ADR 0008 records why --robust is therefore
// not the default).
func TestWorkerRobustKeepsThePlanLines(t *testing.T) {
	gw := newGateway(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	outputs := map[bool][]string{}
	for i, robustOn := range []bool{false, true} {
		lines := []string{
			`{"command": "ping"}`,
			fmt.Sprintf(`{"command": "connect", "host": "127.0.0.1", "port": %d, "client_id": 50, "timeout": 2}`, deadPort),
			fmt.Sprintf(`{"command": "connect", "host": "127.0.0.1", "port": %d, "client_id": %d}`, gw.Port(), 51+i),
			`{"command": "get_accounts"}`,
			`{"command": "get_positions"}`,
			`{"command": "get_account_summary", "tags": ["NetLiquidation", "AccountType"]}`,
			`{"command": "ping"}`,
			fmt.Sprintf(`{"command": "connect", "host": "127.0.0.1", "port": %d, "client_id": %d}`, gw.Port(), 51+i),
			`{"command": "launch_rockets"}`,
			`not json`,
			`{"command": "disconnect"}`,
			`{"command": "get_accounts"}`,
			`{"command": "disconnect"}`,
		}
		args := []string{"worker"}
		if robustOn {
			args = append(args, "--robust")
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], args...)
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
		cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if !json.Valid(sc.Bytes()) {
				t.Errorf("%v: stdout line %q is not JSON", args, sc.Text())
			}
			outputs[robustOn] = append(outputs[robustOn], sc.Text())
		}
		if len(outputs[robustOn]) != len(lines) {
			t.Fatalf("%v: %d answers to %d lines:\n%s", args, len(outputs[robustOn]), len(lines), out)
		}
	}
	for i, plain := range outputs[false] {
		rob := outputs[true][i]
		var p, r map[string]any
		if err := errors.Join(json.Unmarshal([]byte(plain), &p), json.Unmarshal([]byte(rob), &r)); err != nil {
			t.Fatal(err)
		}
		if p["status"] == "success" && plain != rob {
			t.Errorf("answer %d: worker %s, worker --robust %s", i, plain, rob)
		}
		delete(p, "error")
		delete(r, "error")
		if diff := cmp.Diff(p, r); diff != "" {
			t.Errorf("answer %d apart from its error text: worker (-) vs worker --robust (+):\n%s", i, diff)
		}
	}
}
