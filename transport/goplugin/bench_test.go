package goplugin

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// The benchmarks compare, in one run:
//
//	goplugin       Client -> go-plugin child serving the IBKR adapter -> fake gateway
//	inprocess      the IBKR adapter in this process -> the same fake gateway
//	goplugin-mem   Client -> go-plugin child serving an in-memory Broker (transport cost alone)
//	inprocess-mem  the in-memory Broker in this process
//	rawpipe        the same payload bytes through a child that echoes its stdin
//
// goplugin/inprocess is the price of running the adapter out of process;
// goplugin-mem/rawpipe is this transport's overhead over a bare pipe.
// AutoMTLS is on, as by default.

// benchPositions returns n positions with the kind of decimals a gateway sends.
func benchPositions(n int) []broker.Position {
	out := make([]broker.Position, n)
	for i := range out {
		out[i] = broker.Position{
			Account: memAccounts[i%len(memAccounts)],
			Contract: broker.Contract{
				ConID: int64(100000 + i), Symbol: "SYM" + strconv.Itoa(i), SecType: "STK",
				Exchange: "SMART", Currency: "USD", LocalSymbol: "SYM" + strconv.Itoa(i), TradingClass: "NMS",
			},
			Quantity: broker.MustDecimal(strconv.Itoa(i%997-400) + ".5"),
			AvgCost:  broker.MustDecimal(strconv.Itoa(1000+i) + ".125"),
		}
	}
	return out
}

// benchGateway serves a fake gateway holding n positions.
func benchGateway(b *testing.B, n int) broker.ConnectParams {
	b.Helper()
	s := fakes.DefaultScript()
	s.Accounts = memAccounts
	s.Positions = benchPositions(n)
	g, err := fakes.NewGateway(s)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close() })
	return broker.ConnectParams{Host: g.Host(), Port: g.Port(), ClientID: 1, Timeout: 10 * time.Second}
}

func benchConnect(b *testing.B, br broker.Broker, p broker.ConnectParams) {
	b.Helper()
	if _, err := br.Connect(context.Background(), p); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = br.Close() })
}

func benchChild(b *testing.B, mode string) *Client {
	b.Helper()
	log, _ := testLogger(b)
	c, err := Start(context.Background(), WithCommand(os.Args[0], argChild, mode), WithLogger(log))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// echoChild is the raw pipe baseline: a child copying its stdin to its stdout.
type echoChild struct {
	in  io.WriteCloser
	out io.Reader
	buf []byte
}

func startEcho(b *testing.B) *echoChild {
	b.Helper()
	cmd := exec.Command(os.Args[0], argEcho)
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
	return &echoChild{in: in, out: out}
}

// roundTrip writes payload and reads as many bytes back, writing concurrently
// when the payload exceeds what the pipes buffer.
func (e *echoChild) roundTrip(b *testing.B, payload []byte) {
	if cap(e.buf) < len(payload) {
		e.buf = make([]byte, len(payload))
	}
	done := make(chan error, 1)
	go func() { _, err := e.in.Write(payload); done <- err }()
	if _, err := io.ReadFull(e.out, e.buf[:len(payload)]); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkPing(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, br broker.Broker) {
		b.ResetTimer()
		for b.Loop() {
			if err := br.Ping(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("goplugin", func(b *testing.B) {
		p := benchGateway(b, 0)
		c := benchChild(b, "ibkr")
		benchConnect(b, c, p)
		run(b, c)
	})
	b.Run("inprocess", func(b *testing.B) {
		p := benchGateway(b, 0)
		a := ibkr.New()
		benchConnect(b, a, p)
		run(b, a)
	})
	b.Run("goplugin-mem", func(b *testing.B) {
		c := benchChild(b, "mem")
		benchConnect(b, c, broker.ConnectParams{})
		run(b, c)
	})
	b.Run("rawpipe", func(b *testing.B) {
		e := startEcho(b)
		// A gRPC Ping request is a few dozen bytes of HTTP/2 frames; echo as many.
		payload := make([]byte, 64)
		for b.Loop() {
			e.roundTrip(b, payload)
		}
	})
}

func BenchmarkPositions10k(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	run := func(b *testing.B, br broker.Broker) {
		b.ResetTimer()
		for b.Loop() {
			ps, err := br.Positions(ctx)
			if err != nil || len(ps) != n {
				b.Fatalf("Positions: %d, %v", len(ps), err)
			}
		}
	}
	b.Run("goplugin", func(b *testing.B) {
		p := benchGateway(b, n)
		c := benchChild(b, "ibkr")
		benchConnect(b, c, p)
		run(b, c)
	})
	b.Run("inprocess", func(b *testing.B) {
		p := benchGateway(b, n)
		a := ibkr.New()
		benchConnect(b, a, p)
		run(b, a)
	})
	b.Run("goplugin-mem", func(b *testing.B) {
		c := benchChild(b, "mem")
		benchConnect(b, c, broker.ConnectParams{})
		if _, err := c.AccountSummary(ctx, "!positions="+strconv.Itoa(n)); err != nil {
			b.Fatal(err)
		}
		run(b, c)
	})
	b.Run("inprocess-mem", func(b *testing.B) {
		m := newMemBroker()
		m.setPositions(genPositions(n))
		benchConnect(b, m, broker.ConnectParams{})
		run(b, m)
	})
	b.Run("rawpipe", func(b *testing.B) {
		e := startEcho(b)
		payload, err := proto.Marshal(positionsToPB(genPositions(n)))
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			e.roundTrip(b, payload)
		}
	})
}
