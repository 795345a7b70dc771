package goplugin

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
)

// Re-executing the test binary, in the style of go-plugin's plugin_test.go:
//
//	<test binary> goplugin-test-child MODE   serve a Broker as a go-plugin child
//	<test binary> goplugin-test-host         start a mem child, print its pid and socket, wait to be killed
//
// and, through MaybeRunWorker, WithSelf children serve a memBroker.
const (
	argChild = "goplugin-test-child"
	argHost  = "goplugin-test-host"
)

// envProbe is the variable the "env" child mode requires.
const envProbe = "BROKERKIT_GOPLUGIN_TEST_PROBE"

// childModes are the Brokers a re-executed child can serve.
var childModes = map[string]func() broker.Broker{
	// mem announces each call that starts blocking on its stderr, which the
	// host logs (testbroker.BlockedNote).
	"mem": func() broker.Broker {
		m := newMemBroker()
		m.SetBlockNote(os.Stderr)
		return m
	},
	// ibkr is the real adapter, for the conformance kit.
	"ibkr": func() broker.Broker { return ibkr.New(ibkr.WithLogger(childLogger.Named("ibkr"))) },
	// noisy writes to stdout before go-plugin's handshake, as a careless init would.
	// env serves a memBroker only if the host passed envProbe=yes (WithEnv);
	// otherwise the child exits before the handshake.
	"env": func() broker.Broker {
		if os.Getenv(envProbe) != "yes" {
			fmt.Fprintf(os.Stderr, "%s is %q, want yes\n", envProbe, os.Getenv(envProbe))
			os.Exit(3)
		}
		return newMemBroker()
	},
	"noisy": func() broker.Broker {
		fmt.Println("stray fmt.Println before the handshake")
		_, _ = os.Stdout.WriteString("stray half line before the handshake, then ")
		return newMemBroker()
	},
}

func TestMain(m *testing.M) {
	MaybeRunWorker(func() broker.Broker { return newMemBroker() })
	if len(os.Args) >= 3 && os.Args[1] == argChild {
		newBroker, ok := childModes[os.Args[2]]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child mode %q\n", os.Args[2])
			os.Exit(2)
		}
		if err := RunWorker(context.Background(), newBroker); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) >= 2 && os.Args[1] == argHost {
		os.Exit(runTestHost())
	}
	// Children built with -race would otherwise sleep 1s at exit (the race
	// runtime's atexit_sleep_ms), which is most of a test's time.
	_ = os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	goleak.VerifyTestMain(m)
}

// runTestHost starts a mem child, prints its pid and socket path and blocks
// until killed.
func runTestHost() int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, WithCommand(os.Args[0], argChild, "mem"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 1
	}
	fmt.Printf("%d %s\n", c.Pid(), c.socket)
	select {} // the test kills us
}

// testLogger returns a logger into a buffer that is dumped if the test fails.
func testLogger(t interface {
	Helper()
	Cleanup(func())
	Failed() bool
	Logf(string, ...any)
}) (hclog.Logger, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("host log:\n%s", buf.String())
		}
	})
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Trace, Output: buf}), buf
}

// startChild starts a re-executed child in mode and closes it at cleanup.
func startChild(t *testing.T, mode string, opts ...Option) (*Client, *syncBuffer) {
	t.Helper()
	log, buf := testLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts = append([]Option{WithCommand(os.Args[0], argChild, mode), WithLogger(log)}, opts...)
	c, err := Start(ctx, opts...)
	if err != nil {
		t.Fatalf("Start(%s): %v\nlog:\n%s", mode, err, buf.String())
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, buf
}

// inProcessPair serves b over gRPC on 127.0.0.1:0 and returns a Client for it,
// without go-plugin or a child: the two halves of the transport in one process.
// Cancelling the returned "exit" simulates the child's death.
func inProcessPair(t *testing.T, b broker.Broker) (c *Client, exit context.CancelFunc) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log, _ := testLogger(t)
	srv := newGRPCServer(log)(nil)
	if err := (&Plugin{Broker: b, Logger: log}).GRPCServer(nil, srv); err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	done, exit := context.WithCancel(context.Background())
	c = newClient(conn, done, log)
	c.kill = func() {
		exit()
		_ = conn.Close()
		srv.Stop()
		<-served
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, exit
}

// within fails the test if f does not return within d: a guard against hangs,
// not a timing assertion.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}
