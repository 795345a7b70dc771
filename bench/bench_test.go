package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
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

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/robust"
	"github.com/brokerkit/brokerkit/transport/goplugin"
	"github.com/brokerkit/brokerkit/transport/stdiojson"
)

// Benchmark names are read by scripts/benchtable; keep them in step:
//
//	Ping/{stdiojson,goplugin,goplugin-nomtls,rawpipe-stdiojson,rawpipe-goplugin}
//	PingFloor/{cat,rawpipe-blocking,grpc,grpc-tls,netrpc}
//	ThroughputFloor/{rawpipe,cat}/depth=64               (metric ops/s)
//	PingGateway/{inprocess,inprocess-gatewaychild,inprocess-gatewaychild-procs1,stdiojson,goplugin}
//	Throughput/{stdiojson,goplugin}/callers={1,4,8,16,64,256}    (metric ops/s)
//	Positions/n={10,100,1000,10000,100000}/{inprocess,stdiojson,goplugin}
//	Latency/{stdiojson,goplugin,goplugin-nomtls,rawpipe,cat,grpc,grpc-tls}  (metrics ns-p50, ns-p90, ns-p99, ns-p999)
//	ColdStart/{inprocess,stdiojson,goplugin,goplugin-nomtls,goplugin-automtls}
//	KillRecover/{stdiojson,goplugin}                     (metrics ms-median, ms-p95, kills)
//	QuoteTicks, QuoteLatency: see quotes_test.go

// transport starts a worker child serving kind ("mem" with n positions, or
// "ibkr") and returns the host's Broker for it.
type transport struct {
	name  string
	start func(ctx context.Context, kind string, n int) (broker.Broker, error)
}

var transports = []transport{
	{"stdiojson", func(ctx context.Context, kind string, n int) (broker.Broker, error) {
		return stdiojson.Dialer(stdiojson.WithCommand(self(), argWorker, "stdiojson", kind, strconv.Itoa(n)),
			stdiojson.WithLogger(quietLogger()))(ctx)
	}},
	{"goplugin", func(ctx context.Context, kind string, n int) (broker.Broker, error) {
		return goplugin.Dialer(goplugin.WithCommand(self(), argWorker, "goplugin", kind, strconv.Itoa(n)),
			goplugin.WithLogger(quietLogger()))(ctx)
	}},
}

// goplugin without mutual TLS, and with go-plugin's AutoMTLS (P-521
// certificates made on both sides at every start) instead of brokerkit's
// default P-256 pair; measured for the cold start only.
var (
	gopluginNoMTLS   = gopluginWith("goplugin-nomtls", goplugin.WithoutAutoMTLS())
	gopluginAutoMTLS = gopluginWith("goplugin-automtls", goplugin.WithGoPluginAutoMTLS())
)

func gopluginWith(name string, opt goplugin.Option) transport {
	return transport{name, func(ctx context.Context, kind string, n int) (broker.Broker, error) {
		return goplugin.Dialer(goplugin.WithCommand(self(), argWorker, "goplugin", kind, strconv.Itoa(n)),
			goplugin.WithLogger(quietLogger()), opt)(ctx)
	}}
}

func self() string {
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return exe
}

// quietLogger discards: the benchmarks kill workers on purpose, and what goes
// wrong otherwise fails the benchmark with its error.
func quietLogger() hclog.Logger { return hclog.NewNullLogger() }

// startWorker starts a worker for the benchmark and closes it at cleanup.
func startWorker(b *testing.B, tr transport, kind string, n int) broker.Broker {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	br, err := tr.start(ctx, kind, n)
	if err != nil {
		b.Fatalf("start %s worker: %v", tr.name, err)
	}
	b.Cleanup(func() { _ = br.Close() })
	return br
}

// gateway serves a fake gateway holding n positions for the benchmark.
func gateway(b *testing.B, n int) (*fakes.Gateway, fakes.Script) {
	b.Helper()
	s := benchScript(n)
	g, err := fakes.NewGateway(s)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close() })
	return g, s
}

func mustConnect(b *testing.B, br broker.Broker, p broker.ConnectParams) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := br.Connect(ctx, p); err != nil {
		b.Fatalf("Connect: %v", err)
	}
}

// memParams are valid ConnectParams; a mem broker connects to nothing.
var memParams = broker.ConnectParams{ClientID: 1}

func pingLoop(b *testing.B, br broker.Broker) {
	ctx := context.Background()
	for b.Loop() {
		if err := br.Ping(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPing is one round trip through each transport to a Broker answering
// from memory, beside a raw pipe echo of the same request bytes.
func BenchmarkPing(b *testing.B) {
	for _, tr := range append(slices.Clone(transports), gopluginNoMTLS) {
		b.Run(tr.name, func(b *testing.B) {
			br := startWorker(b, tr, "mem", 0)
			mustConnect(b, br, memParams)
			pingLoop(b, br)
		})
	}
	b.Run("rawpipe-stdiojson", func(b *testing.B) { rawEcho(b, exec.Command(self(), argEcho), pingLine) })
	// A repeated gRPC unary call with an empty message is about this many bytes
	// of HTTP/2 frames (HEADERS with HPACK-indexed fields, DATA, flow control).
	b.Run("rawpipe-goplugin", func(b *testing.B) {
		line := make([]byte, 64)
		for i := range line {
			line[i] = 'x'
		}
		line[len(line)-1] = '\n'
		rawEcho(b, exec.Command(self(), argEcho), line)
	})
}

// rawEcho times writing line to a child (cmd) that echoes it and reading it back.
func rawEcho(b *testing.B, cmd *exec.Cmd, line []byte) {
	in, r := echoChild(b, cmd)
	for b.Loop() {
		if _, err := in.Write(line); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPingGateway is Ping through the IBKR adapter to the fake gateway: in
// this process, and in a worker behind each transport.
func BenchmarkPingGateway(b *testing.B) {
	b.Run("inprocess", func(b *testing.B) {
		g, _ := gateway(b, 0)
		a := ibkr.New(ibkr.WithLogger(quietLogger()))
		b.Cleanup(func() { _ = a.Close() })
		mustConnect(b, a, g.ConnectParams(1))
		pingLoop(b, a)
	})
	// The floor of a worker's Ping: over a transport the adapter (in the worker)
	// and the gateway (here) are two processes, so its TCP round trip to the
	// gateway crosses processes where the in-process figure's does not. Here
	// the adapter runs in this process and the gateway in a child.
	// -procs1 runs this process with GOMAXPROCS 1 meanwhile, as a worker runs.
	for _, procs := range []int{0, 1} {
		name := "inprocess-gatewaychild"
		if procs > 0 {
			name += "-procs" + strconv.Itoa(procs)
		}
		b.Run(name, func(b *testing.B) {
			a := ibkr.New(ibkr.WithLogger(quietLogger()))
			b.Cleanup(func() { _ = a.Close() })
			mustConnect(b, a, broker.ConnectParams{Host: "127.0.0.1", Port: gatewayChild(b), ClientID: 1})
			if procs > 0 {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			}
			pingLoop(b, a)
		})
	}
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			g, _ := gateway(b, 0)
			br := startWorker(b, tr, "ibkr", 0)
			mustConnect(b, br, g.ConnectParams(1))
			pingLoop(b, br)
		})
	}
}

// benchScript is the fake gateway's script for the benchmarks: their accounts,
// n positions, no account summary.
func benchScript(n int) fakes.Script {
	s := fakes.DefaultScript()
	s.Accounts = slices.Clone(benchAccounts)
	s.Positions = benchPositions(n)
	s.Summary = nil
	return s
}

// serveGateway serves benchScript(0) on 127.0.0.1:0, writes its port as a line
// to out and serves until in reaches its end (the bench-gateway child).
func serveGateway(in io.Reader, out io.Writer) error {
	g, err := fakes.NewGateway(benchScript(0))
	if err != nil {
		return err
	}
	defer g.Close()
	if _, err := fmt.Fprintln(out, g.Port()); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, in)
	return err
}

// gatewayChild starts a bench-gateway child, stops it at cleanup and returns
// its port.
func gatewayChild(b *testing.B) int {
	b.Helper()
	_, r := echoChild(b, exec.Command(self(), argGateway)) // its stdin closes at cleanup
	line, err := r.ReadString('\n')
	if err != nil {
		b.Fatalf("bench-gateway: %v", err)
	}
	port, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		b.Fatalf("bench-gateway: port %q: %v", line, err)
	}
	return port
}

// throughputCallers are BenchmarkThroughput's numbers of concurrent callers.
var throughputCallers = []int{1, 4, 8, 16, 64, 256}

// BenchmarkThroughput is Ping from 1 to 256 concurrent callers through each
// transport to the in-memory Broker; it reports calls per second.
func BenchmarkThroughput(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			br := startWorker(b, tr, "mem", 0)
			mustConnect(b, br, memParams)
			for _, callers := range throughputCallers {
				b.Run("callers="+strconv.Itoa(callers), func(b *testing.B) {
					concurrentPings(b, br, callers)
				})
			}
		})
	}
}

func concurrentPings(b *testing.B, br broker.Broker, callers int) {
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := br.Ping(ctx); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
}

// positionCounts are BenchmarkPositions' payload sizes.
var positionCounts = []int{10, 100, 1000, 10000, 100000}

// BenchmarkPositions fetches 10 to 100 000 positions from the fake
// gateway through the IBKR adapter, in this process and behind each transport.
// B/op counts this process's allocations only, not the worker's.
func BenchmarkPositions(b *testing.B) {
	for _, n := range positionCounts {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			b.Run("inprocess", func(b *testing.B) {
				g, s := gateway(b, n)
				a := ibkr.New(ibkr.WithLogger(quietLogger()))
				b.Cleanup(func() { _ = a.Close() })
				mustConnect(b, a, g.ConnectParams(1))
				positionsLoop(b, a, s.Positions)
			})
			for _, tr := range transports {
				b.Run(tr.name, func(b *testing.B) {
					g, s := gateway(b, n)
					br := startWorker(b, tr, "ibkr", 0)
					mustConnect(b, br, g.ConnectParams(1))
					positionsLoop(b, br, s.Positions)
				})
			}
		})
	}
}

// positionsLoop checks the first answer in full and the length of the others.
func positionsLoop(b *testing.B, br broker.Broker, want []broker.Position) {
	ctx := context.Background()
	ps, err := br.Positions(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if diff := cmp.Diff(want, ps); diff != "" {
		b.Fatalf("Positions (-script +got):\n%s", diff)
	}
	for b.Loop() {
		ps, err := br.Positions(ctx)
		if err != nil || len(ps) != len(want) {
			b.Fatalf("Positions: %d of %d, %v", len(ps), len(want), err)
		}
	}
}

// BenchmarkColdStart is what a program waits for before its first answer: start
// the worker (or build the adapter), handshake, Connect, Accounts. Closing is not
// timed.
func BenchmarkColdStart(b *testing.B) {
	coldStart := func(b *testing.B, start func(ctx context.Context) (broker.Broker, error)) {
		g, s := gateway(b, 0)
		ctx := context.Background()
		clientID := int64(0)
		for b.Loop() {
			br, err := start(ctx)
			if err != nil {
				b.Fatal(err)
			}
			// A fresh client id: the gateway may not yet have seen the last one go.
			clientID++
			if _, err := br.Connect(ctx, g.ConnectParams(clientID)); err != nil {
				b.Fatal(err)
			}
			accts, err := br.Accounts(ctx)
			if err != nil || !slices.Equal(accts, s.Accounts) {
				b.Fatalf("Accounts = %v, %v; want %v", accts, err, s.Accounts)
			}
			b.StopTimer()
			_ = br.Close()
			b.StartTimer()
		}
	}
	b.Run("inprocess", func(b *testing.B) {
		coldStart(b, func(context.Context) (broker.Broker, error) {
			return ibkr.New(ibkr.WithLogger(quietLogger())), nil
		})
	})
	for _, tr := range append(slices.Clone(transports), gopluginNoMTLS, gopluginAutoMTLS) {
		b.Run(tr.name, func(b *testing.B) {
			coldStart(b, func(ctx context.Context) (broker.Broker, error) { return tr.start(ctx, "ibkr", 0) })
		})
	}
}

// killsPerOp is how many kills one iteration of BenchmarkKillRecover makes, so
// that each reported median and p95 rests on at least this many.
const killsPerOp = 20

// BenchmarkKillRecover kills the worker under a robust.Broker (default options)
// with SIGKILL and times the next successful call, which robust's retries carry
// over to a new worker. One iteration is killsPerOp kills; ns/op is reported per
// kill, with the median and p95 of the last run.
func BenchmarkKillRecover(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			g, s := gateway(b, 0)
			rb := robust.New(func(ctx context.Context) (broker.Broker, error) { return tr.start(ctx, "ibkr", 0) },
				robust.WithLogger(quietLogger()))
			b.Cleanup(func() { _ = rb.Close() })
			mustConnect(b, rb, g.ConnectParams(1))
			ctx := context.Background()
			var took []time.Duration
			for b.Loop() {
				for range killsPerOp {
					pid := rb.Stats().WorkerPID
					if pid == 0 {
						b.Fatal("robust reports no worker pid")
					}
					start := time.Now()
					if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
						b.Fatalf("kill -9 %d: %v", pid, err)
					}
					cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					accts, err := rb.Accounts(cctx)
					cancel()
					d := time.Since(start)
					if err != nil || !slices.Equal(accts, s.Accounts) {
						b.Fatalf("Accounts after kill -9 = %v, %v; want %v", accts, err, s.Accounts)
					}
					if now := rb.Stats().WorkerPID; now == pid {
						b.Fatalf("worker %d answered after kill -9", pid)
					}
					took = append(took, d)
				}
			}
			b.StopTimer()
			reportDistribution(b, took)
		})
	}
}

// reportDistribution reports the mean as ns/op and the median and p95 in ms.
func reportDistribution(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	b.ReportMetric(float64(sum)/float64(len(d)), "ns/op")
	b.ReportMetric(ms(d[len(d)/2]), "ms-median")
	b.ReportMetric(ms(d[min(len(d)-1, (len(d)*95+99)/100-1)]), "ms-p95")
	b.ReportMetric(float64(len(d)), "kills")
}

// BenchmarkAccountUpdates fetches one account's values and a portfolio of
// about n/len(benchAccounts) marked positions (PORTFOLIO_VALUE rows) through
// the IBKR adapter, in this process and behind each transport.
func BenchmarkAccountUpdates(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			b.Run("inprocess", func(b *testing.B) {
				g, s := gateway(b, n)
				a := ibkr.New(ibkr.WithLogger(quietLogger()))
				b.Cleanup(func() { _ = a.Close() })
				mustConnect(b, a, g.ConnectParams(1))
				accountUpdatesLoop(b, a, s)
			})
			for _, tr := range transports {
				b.Run(tr.name, func(b *testing.B) {
					g, s := gateway(b, n)
					br := startWorker(b, tr, "ibkr", 0)
					mustConnect(b, br, g.ConnectParams(1))
					accountUpdatesLoop(b, br, s)
				})
			}
		})
	}
}

// accountUpdatesLoop checks the first answer in full and the size of the others.
func accountUpdatesLoop(b *testing.B, br broker.Broker, s fakes.Script) {
	ctx := context.Background()
	acct := s.Accounts[0]
	want, _ := s.AccountUpdate(acct)
	u, err := br.AccountUpdates(ctx, acct)
	if err != nil {
		b.Fatal(err)
	}
	want.UpdateTime = u.UpdateTime
	if diff := cmp.Diff(want, u); diff != "" {
		b.Fatalf("AccountUpdates (-script +got):\n%s", diff)
	}
	for b.Loop() {
		u, err := br.AccountUpdates(ctx, acct)
		if err != nil || len(u.Portfolio) != len(want.Portfolio) {
			b.Fatalf("AccountUpdates: %d of %d portfolio rows, %v", len(u.Portfolio), len(want.Portfolio), err)
		}
	}
}
