package stdiojson

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// The benchmarks compare, in one run:
//
//	stdiojson      Client -> worker process serving the IBKR adapter -> fake gateway
//	inprocess      the IBKR adapter in this process -> the same fake gateway
//	stdiojson-mem  Client -> worker process serving an in-memory Broker (transport cost alone)
//	rawpipe        the same request bytes through a child that echoes each line back
//
// so that stdiojson/inprocess is the price of running the adapter out of process
// and stdiojson-mem/rawpipe is this package's overhead over the bare pipe.

// benchPositions returns n positions with the kind of decimals a gateway sends.
func benchPositions(n int) []broker.Position {
	out := make([]broker.Position, n)
	for i := range out {
		out[i] = broker.Position{
			Account: []string{"DU111111", "DU222222"}[i%2],
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
	s.Accounts = []string{"DU111111", "DU222222"}
	s.Positions = benchPositions(n)
	g, err := fakes.NewGateway(s)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	return broker.ConnectParams{Host: g.Host(), Port: g.Port(), ClientID: 1, Timeout: 10 * time.Second}
}

func benchConnect(b *testing.B, br broker.Broker, p broker.ConnectParams) {
	b.Helper()
	if _, err := br.Connect(context.Background(), p); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
}

func benchStdiojson(b *testing.B, mode string, nPositions int) *Client {
	b.Helper()
	log, _ := testLogger(b)
	c, err := Start(context.Background(), WithSelf(), WithLogger(log),
		WithEnv(envTestMode+"="+mode, envTestPositions+"="+strconv.Itoa(nPositions), noRaceExitSleep))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// echoChild is the raw pipe baseline: a child that writes back each line.
type echoChild struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startEcho(b *testing.B) *echoChild {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envTestMode+"=echo", noRaceExitSleep)
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
	e := &echoChild{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 64<<10)}
	b.Cleanup(func() {
		in.Close()
		cmd.Wait()
	})
	return e
}

// roundTrip writes line and reads one line back.
func (e *echoChild) roundTrip(b *testing.B, line []byte) {
	if len(line) > 16<<10 { // larger than the pipe buffers: write while reading
		done := make(chan error, 1)
		go func() { _, err := e.in.Write(line); done <- err }()
		defer func() {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}()
	} else if _, err := e.in.Write(line); err != nil {
		b.Fatal(err)
	}
	for {
		_, err := e.out.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		return
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
	b.Run("stdiojson", func(b *testing.B) {
		p := benchGateway(b, 0)
		c := benchStdiojson(b, "ibkr", 0)
		benchConnect(b, c, p)
		run(b, c)
	})
	b.Run("inprocess", func(b *testing.B) {
		p := benchGateway(b, 0)
		a := ibkr.New()
		benchConnect(b, a, p)
		run(b, a)
	})
	b.Run("stdiojson-mem", func(b *testing.B) {
		c := benchStdiojson(b, "mem", 0)
		benchConnect(b, c, broker.ConnectParams{})
		run(b, c)
	})
	b.Run("rawpipe", func(b *testing.B) {
		e := startEcho(b)
		line, _ := json.Marshal(wireRequest{ID: json.RawMessage("123456"), Command: string(broker.OpPing)})
		line = append(line, '\n')
		for b.Loop() {
			e.roundTrip(b, line)
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
	b.Run("stdiojson", func(b *testing.B) {
		p := benchGateway(b, n)
		c := benchStdiojson(b, "ibkr", 0)
		benchConnect(b, c, p)
		run(b, c)
	})
	b.Run("inprocess", func(b *testing.B) {
		p := benchGateway(b, n)
		a := ibkr.New()
		benchConnect(b, a, p)
		run(b, a)
	})
	b.Run("stdiojson-mem", func(b *testing.B) {
		c := benchStdiojson(b, "mem", n)
		benchConnect(b, c, broker.ConnectParams{})
		run(b, c)
	})
	b.Run("inprocess-mem", func(b *testing.B) {
		m := newMemBroker(n)
		benchConnect(b, m, broker.ConnectParams{})
		run(b, m)
	})
	b.Run("rawpipe", func(b *testing.B) {
		e := startEcho(b)
		line := encodeResponse(json.RawMessage("123456"), positionsData{Positions: toWirePositions(newMemBroker(n).positions())}, nil)
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			e.roundTrip(b, line)
		}
	})
}
