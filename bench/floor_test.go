package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/brokerkit/brokerkit/internal/childproc"
	"github.com/brokerkit/brokerkit/internal/grpclink"
)

// The floors each transport is measured against, in the same run (issue 18):
// what a round trip costs without the transport, over the same kind of channel.

// pingLine is the stdiojson request line for ping, exactly as the Client writes it.
var pingLine = []byte(`{"id":1234,"command":"ping"}` + "\n")

// catCommand is the non-Go echo child: cat blocks in read(2) and writes each
// chunk it reads at once, with no runtime to wake.
func catCommand(b *testing.B) *exec.Cmd {
	path, err := exec.LookPath("cat")
	if err != nil {
		b.Fatalf("the cat floor needs cat(1): %v", err)
	}
	return exec.Command(path)
}

// echoChild starts cmd with pipes on stdin and stdout and stops it at cleanup.
func echoChild(b *testing.B, cmd *exec.Cmd) (io.WriteCloser, *bufio.Reader) {
	b.Helper()
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
	return in, bufio.NewReaderSize(out, 64<<10)
}

// pipelinedEcho keeps up to depth lines in flight to an echo child: a writer
// sends as many lines as the window allows in one write, the reader frees a
// slot per line read back. It reports lines per second, as Throughput does.
func pipelinedEcho(b *testing.B, cmd *exec.Cmd, line []byte, depth int) {
	in, r := echoChild(b, cmd)
	slots := make(chan struct{}, depth)
	werr := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() {
		buf := make([]byte, 0, depth*len(line))
		for sent := 0; sent < b.N; {
			slots <- struct{}{}
			buf = append(buf[:0], line...)
			sent++
		more:
			for sent < b.N {
				select {
				case slots <- struct{}{}:
					buf = append(buf, line...)
					sent++
				default:
					break more
				}
			}
			if _, err := in.Write(buf); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	for range b.N {
		if _, err := r.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
		<-slots
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if err := <-werr; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
}

// BenchmarkThroughputFloor is the raw pipe with 64 requests in flight, the
// floor of Throughput's 64 callers: to the Go echo child and to cat.
func BenchmarkThroughputFloor(b *testing.B) {
	b.Run("rawpipe/depth=64", func(b *testing.B) { pipelinedEcho(b, exec.Command(self(), argEcho), pingLine, 64) })
	b.Run("cat/depth=64", func(b *testing.B) { pipelinedEcho(b, catCommand(b), pingLine, 64) })
}

// rawCodec passes messages as raw bytes (*[]byte), so that the bare gRPC echo
// needs no generated code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	p, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return *p, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "bench-raw" }

const echoMethod = "/bench.Echo/Echo"

// echoService is a unary echo defined by hand: grpc.ServiceDesc with rawCodec.
var echoService = grpc.ServiceDesc{
	ServiceName: "bench.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var msg []byte
			if err := dec(&msg); err != nil {
				return nil, err
			}
			return &msg, nil
		},
	}},
}

// envEchoTLS hands the gRPC echo child its TLS material (grpclink.ChildTLS).
const envEchoTLS = "BROKERKIT_BENCH_ECHO_TLS"

// serveGRPCEcho is the bench-grpc-echo child: it serves echoService on the Unix
// socket path with the transport's server options (and mutual TLS if
// envEchoTLS is set), says "ready" on stdout, and exits when stdin closes.
func serveGRPCEcho(path string) error {
	childproc.SetProcs()
	opts := append(grpclink.ServerOptions(), grpc.ForceServerCodec(rawCodec{}))
	if v, ok := os.LookupEnv(envEchoTLS); ok {
		cfg, err := grpclink.ChildTLS(v)
		if err != nil {
			return err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	s := grpc.NewServer(opts...)
	s.RegisterService(&echoService, struct{}{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		s.Stop()
	}()
	fmt.Println("ready")
	return s.Serve(ln)
}

// grpcEcho dials a bench-grpc-echo child over a Unix socket, as go-plugin's
// host dials the child (the transport's dial options, and its mutual TLS if
// withTLS), and returns the connection.
func grpcEcho(b *testing.B, withTLS bool) *grpc.ClientConn {
	b.Helper()
	sock := filepath.Join(b.TempDir(), "echo.sock")
	cmd := exec.Command(self(), argGRPCEcho, sock)
	creds := insecure.NewCredentials()
	if withTLS {
		host, child, err := grpclink.MutualTLS()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Env = append(os.Environ(), envEchoTLS+"="+child)
		creds = credentials.NewTLS(host)
	}
	cmd.Stderr = os.Stderr
	_, r := echoChild(b, cmd)
	ready := make(chan error, 1)
	go func() {
		_, err := r.ReadString('\n')
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			b.Fatalf("gRPC echo child: %v", err)
		}
	case <-time.After(30 * time.Second):
		b.Fatal("gRPC echo child not ready after 30s")
	}
	opts := append(grpclink.DialOptions(), grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	conn, err := grpc.NewClient("unix://"+sock, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return conn
}

// grpcEchoLoop times unary echoes of an empty message, as goplugin's Ping
// sends and receives an empty message.
func grpcEchoLoop(b *testing.B, conn *grpc.ClientConn) {
	ctx := context.Background()
	in, out := []byte{}, []byte{}
	if err := conn.Invoke(ctx, echoMethod, &in, &out); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := conn.Invoke(ctx, echoMethod, &in, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// netRPCHandshake is the go-plugin handshake of the net/rpc echo child.
var netRPCHandshake = plugin.HandshakeConfig{
	ProtocolVersion: 1, MagicCookieKey: "BROKERKIT_BENCH_NETRPC", MagicCookieValue: "echo",
}

// Echo is the net/rpc echo service of the go-plugin net/rpc reference.
type Echo struct{}

// Echo copies in to out.
func (Echo) Echo(in []byte, out *[]byte) error { *out = in; return nil }

// echoRPCPlugin serves Echo over go-plugin's net/rpc protocol (yamux streams
// over the Unix socket).
type echoRPCPlugin struct{}

func (echoRPCPlugin) Server(*plugin.MuxBroker) (any, error) { return Echo{}, nil }

func (echoRPCPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (any, error) { return c, nil }

func serveNetRPCEcho() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: netRPCHandshake,
		Plugins:         map[string]plugin.Plugin{"echo": echoRPCPlugin{}},
		Logger:          quietLogger(),
	})
}

// netRPCEcho starts the net/rpc echo child through go-plugin and returns its client.
func netRPCEcho(b *testing.B) *rpc.Client {
	b.Helper()
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  netRPCHandshake,
		Plugins:          map[string]plugin.Plugin{"echo": echoRPCPlugin{}},
		Cmd:              exec.Command(self(), argNetRPCEcho),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC},
		Logger:           quietLogger(),
		StartTimeout:     30 * time.Second,
	})
	b.Cleanup(pc.Kill)
	cp, err := pc.Client()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := cp.Dispense("echo")
	if err != nil {
		b.Fatal(err)
	}
	c, ok := raw.(*rpc.Client)
	if !ok {
		b.Fatalf("dispensed %T", raw)
	}
	return c
}

// blockingEcho times the Go raw pipe echo with the host's side of the pipes
// blocking too: plain pipe(2) descriptors, written and read with write(2) and
// read(2) on a locked OS thread, with no netpoller (the echo child already
// blocks in read(2): its stdin is a blocking pipe). Issue 18 asks whether such
// a reader is worth adopting; this is the floor it would bring.
func blockingEcho(b *testing.B, line []byte) {
	var toChild, fromChild [2]int
	if err := syscall.Pipe2(toChild[:], syscall.O_CLOEXEC); err != nil {
		b.Fatal(err)
	}
	if err := syscall.Pipe2(fromChild[:], syscall.O_CLOEXEC); err != nil {
		b.Fatal(err)
	}
	childIn, childOut := os.NewFile(uintptr(toChild[0]), "echo-stdin"), os.NewFile(uintptr(fromChild[1]), "echo-stdout")
	cmd := exec.Command(self(), argEcho)
	cmd.Stdin, cmd.Stdout = childIn, childOut
	err := cmd.Start()
	_ = childIn.Close()
	_ = childOut.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = syscall.Close(toChild[1])
		_ = syscall.Close(fromChild[0])
		_ = cmd.Wait()
	})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 4096)
	for b.Loop() {
		if _, err := syscall.Write(toChild[1], line); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < len(line); {
			n, err := syscall.Read(fromChild[0], buf)
			if err != nil || n == 0 {
				b.Fatalf("read: %d, %v", n, err)
			}
			got += n
		}
	}
}

// BenchmarkPingFloor holds the floors of BenchmarkPing: a cat echo of the
// stdiojson ping line; the Go raw pipe echo with blocking reads on the host's
// side too; a bare gRPC unary echo to a child over a Unix socket, with and
// without the transport's mutual TLS; go-plugin's net/rpc protocol.
func BenchmarkPingFloor(b *testing.B) {
	b.Run("cat", func(b *testing.B) { rawEcho(b, catCommand(b), pingLine) })
	b.Run("rawpipe-blocking", func(b *testing.B) { blockingEcho(b, pingLine) })
	b.Run("grpc", func(b *testing.B) { grpcEchoLoop(b, grpcEcho(b, false)) })
	b.Run("grpc-tls", func(b *testing.B) { grpcEchoLoop(b, grpcEcho(b, true)) })
	b.Run("netrpc", func(b *testing.B) {
		c := netRPCEcho(b)
		var out []byte
		for b.Loop() {
			if err := c.Call("Plugin.Echo", []byte{}, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// spinner is one unrelated process spinning for the whole run (busy mode).
type spinner struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	once sync.Once
}

// startSpinner starts the bench-spin child, which spins one core until its stdin closes.
func startSpinner() (*spinner, error) {
	cmd := exec.Command(self(), argSpin)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &spinner{cmd: cmd, in: in}, nil
}

// stop ends the spinner and waits for it.
func (s *spinner) stop() {
	s.once.Do(func() {
		_ = s.in.Close()
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
	})
}

// spin burns one core until stdin closes.
func spin() {
	var stop sync.WaitGroup
	stop.Go(func() { _, _ = io.Copy(io.Discard, os.Stdin) })
	done := make(chan struct{})
	go func() { stop.Wait(); close(done) }()
	for x := uint64(1); ; x = x*6364136223846793005 + 1 {
		if x&0xfffff == 0 {
			select {
			case <-done:
				return
			default:
			}
		}
	}
}

// BenchmarkLatency is the distribution of one caller's round trips through each
// transport and over each floor, for the report's latency plot: ns/op is the
// mean (timing each call costs tens of ns more than BenchmarkPing's loop) and
// ns-p50 … ns-p999 the percentiles.
func BenchmarkLatency(b *testing.B) {
	timed := func(b *testing.B, call func() error) {
		d := make([]time.Duration, 0, 1<<16)
		for b.Loop() {
			start := time.Now()
			if err := call(); err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(start))
		}
		b.StopTimer()
		reportPercentiles(b, d)
	}
	ctx := context.Background()
	for _, tr := range append(slices.Clone(transports), gopluginNoMTLS) {
		b.Run(tr.name, func(b *testing.B) {
			br := startWorker(b, tr, "mem", 0)
			mustConnect(b, br, memParams)
			timed(b, func() error { return br.Ping(ctx) })
		})
	}
	lineEcho := func(cmd *exec.Cmd) func(b *testing.B) {
		return func(b *testing.B) {
			in, r := echoChild(b, cmd)
			timed(b, func() error {
				if _, err := in.Write(pingLine); err != nil {
					return err
				}
				_, err := r.ReadSlice('\n')
				return err
			})
		}
	}
	b.Run("rawpipe", func(b *testing.B) { lineEcho(exec.Command(self(), argEcho))(b) })
	b.Run("cat", func(b *testing.B) { lineEcho(catCommand(b))(b) })
	for _, withTLS := range []bool{false, true} {
		name := map[bool]string{false: "grpc", true: "grpc-tls"}[withTLS]
		b.Run(name, func(b *testing.B) {
			conn := grpcEcho(b, withTLS)
			in, out := []byte{}, []byte{}
			timed(b, func() error { return conn.Invoke(ctx, echoMethod, &in, &out) })
		})
	}
}

// reportPercentiles reports d's percentiles 50, 90, 99 and 99.9 in ns.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	for _, p := range []struct {
		unit string
		q    float64
	}{{"ns-p50", 0.50}, {"ns-p90", 0.90}, {"ns-p99", 0.99}, {"ns-p999", 0.999}} {
		i := min(len(d)-1, int(p.q*float64(len(d))))
		b.ReportMetric(float64(d[i]), p.unit)
	}
}
