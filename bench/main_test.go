package bench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/internal/childproc"
	"github.com/brokerkit/brokerkit/transport/goplugin"
	"github.com/brokerkit/brokerkit/transport/stdiojson"
)

// The test binary run again is the benchmarks' child process:
//
//	<test binary> bench-worker stdiojson|goplugin mem|ibkr|ibkr-quotes N   a worker serving a Broker
//	<test binary> bench-echo                                    copy each stdin line to stdout
//
// A "mem" worker serves a fakes.Memory holding N positions; an "ibkr" worker serves
// the IBKR adapter, an "ibkr-quotes" one with pacing lifted (quotes_test.go).
// With $BROKERKIT_BENCH_WORKER_PROFILE set to a directory, a
// worker writes its CPU profile there (worker-TRANSPORT-PID.prof) when it
// exits, for `make bench`'s figures to be explained from the worker's side too;
// with $BROKERKIT_BENCH_WORKER_TRACE set to a directory, its execution trace
// (worker-TRANSPORT-PID.trace). `make profile` (scripts/profile.sh) sets both.
//
//	<test binary> bench-grpc-echo SOCKET                        a bare gRPC unary echo on a Unix socket
//	<test binary> bench-netrpc-echo                             an echo over go-plugin's net/rpc protocol
//	<test binary> bench-spin                                    spin one core until stdin closes
//	<test binary> bench-gateway                                 the benchmarks' fake gateway (no positions) on
//	                                                            127.0.0.1:0, its port on stdout, until stdin closes
//
// With $BROKERKIT_BENCH_BUSY=1 (make bench BUSY=1) the benchmarks run beside one
// unrelated process spinning for the whole run, started and ended here; the
// output says which mode ran ("brokerkit-bench-mode: busy" or "idle"), when
// it started and the load average then, for scripts/benchtable.
//
// The Go echo children (bench-echo, bench-grpc-echo, bench-netrpc-echo) run with
// the workers' GOMAXPROCS (1 unless $BROKERKIT_WORKER_GOMAXPROCS says), so that
// a floor differs from its transport by the transport alone: with 2, an idle P
// spins looking for work and a bare gRPC echo cost about a quarter more CPU.
const (
	argWorker     = "bench-worker"
	argEcho       = "bench-echo"
	argGRPCEcho   = "bench-grpc-echo"
	argNetRPCEcho = "bench-netrpc-echo"
	argSpin       = "bench-spin"
	argGateway    = "bench-gateway"

	envWorkerProfile = "BROKERKIT_BENCH_WORKER_PROFILE"
	envWorkerTrace   = "BROKERKIT_BENCH_WORKER_TRACE"
	envBusy          = "BROKERKIT_BENCH_BUSY"
)

func TestMain(m *testing.M) {
	if len(os.Args) >= 2 {
		switch os.Args[1] {
		case argWorker:
			os.Exit(runWorker(os.Args[2:]))
		case argEcho:
			childproc.SetProcs()
			echo(os.Stdin, os.Stdout)
			os.Exit(0)
		case argGRPCEcho:
			if len(os.Args) != 3 {
				fmt.Fprintln(os.Stderr, "usage: bench-grpc-echo SOCKET")
				os.Exit(2)
			}
			if err := serveGRPCEcho(os.Args[2]); err != nil {
				fmt.Fprintln(os.Stderr, "bench-grpc-echo:", err)
				os.Exit(1)
			}
			os.Exit(0)
		case argNetRPCEcho:
			childproc.SetProcs()
			serveNetRPCEcho()
			os.Exit(0)
		case argSpin:
			spin()
			os.Exit(0)
		case argGateway:
			childproc.SetProcs()
			if err := serveGateway(os.Stdin, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, "bench-gateway:", err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	// Workers built with -race would sleep 1s at exit (atexit_sleep_ms).
	_ = os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(runBenchmarks(m))
}

// runBenchmarks runs m, beside a spinning process in busy mode, and checks for
// leaked goroutines as goleak.VerifyTestMain does.
func runBenchmarks(m *testing.M) int {
	flag.Parse()
	mode, stop := "idle", func() {}
	if os.Getenv(envBusy) == "1" {
		s, err := startSpinner()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: busy mode:", err)
			return 1
		}
		mode, stop = "busy", s.stop
	}
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		fmt.Println("brokerkit-bench-mode:", mode)
		fmt.Println("brokerkit-bench-started:", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
		// The 1, 5 and 15 minute load averages: a shared machine's other work.
		if load, err := os.ReadFile("/proc/loadavg"); err == nil {
			if f := strings.Fields(string(load)); len(f) >= 3 {
				fmt.Println("brokerkit-bench-load:", strings.Join(f[:3], " "))
			}
		}
	}
	code := m.Run()
	stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}

// runWorker serves a Broker over a transport until the host ends it.
func runWorker(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: bench-worker stdiojson|goplugin mem|ibkr N")
		return 2
	}
	n, err := strconv.Atoi(args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-worker:", err)
		return 2
	}
	newBroker := func() broker.Broker { return ibkr.New() }
	switch args[1] {
	case "mem":
		newBroker = func() broker.Broker { return newMemBroker(n) }
	case kindQuotes:
		newBroker = func() broker.Broker { return newQuoteAdapter() }
	}
	if dir := os.Getenv(envWorkerProfile); dir != "" {
		f, err := os.Create(filepath.Join(dir, "worker-"+args[0]+"-"+strconv.Itoa(os.Getpid())+".prof"))
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	if dir := os.Getenv(envWorkerTrace); dir != "" {
		f, err := os.Create(filepath.Join(dir, "worker-"+args[0]+"-"+strconv.Itoa(os.Getpid())+".trace"))
		if err == nil && trace.Start(f) == nil {
			defer f.Close()
			defer trace.Stop()
		}
	}
	switch args[0] {
	case "stdiojson":
		if err := stdiojson.RunWorker(context.Background(), newBroker); err != nil {
			fmt.Fprintln(os.Stderr, "bench-worker:", err)
			return 1
		}
	case "goplugin":
		if err := goplugin.RunWorker(context.Background(), newBroker); err != nil {
			fmt.Fprintln(os.Stderr, "bench-worker:", err)
			return 1
		}
	default:
		fmt.Fprintf(os.Stderr, "bench-worker: unknown transport %q\n", args[0])
		return 2
	}
	return 0
}

// echo copies lines from r to w, one write per line: the raw pipe baseline.
func echo(r io.Reader, w io.Writer) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if _, werr := w.Write(line); werr != nil {
				return
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}
