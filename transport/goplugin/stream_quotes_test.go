package goplugin

import (
	"context"
	"errors"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/internal/grpclink"
	"github.com/brokerkit/brokerkit/internal/testbroker"
	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

// hangLimit only turns a hang into a failure; it measures nothing.
const hangLimit = 20 * time.Second

// aaplSTK names the AAPL stock of fakes.DefaultInstruments (the testbroker's
// "ticks:AAPL" tags name the same).
var aaplSTK = broker.Contract{Symbol: "AAPL", SecType: "STK", Currency: "USD"}

// recvQuote takes the next value of ch within hangLimit; ok is false once ch is closed.
func recvQuote(t testing.TB, ch <-chan broker.QuoteUpdate) (broker.QuoteUpdate, bool) {
	t.Helper()
	select {
	case u, ok := <-ch:
		return u, ok
	case <-time.After(hangLimit):
		t.Fatal("no quote update in time")
		return broker.QuoteUpdate{}, false
	}
}

// awaitClosed reads ch until it is closed, within hangLimit.
func awaitClosed(t testing.TB, ch <-chan broker.QuoteUpdate) {
	t.Helper()
	for _, ok := recvQuote(t, ch); ok; _, ok = recvQuote(t, ch) {
	}
}

func boundedCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), hangLimit)
	t.Cleanup(cancel)
	return ctx
}

// TestQuoteStreamMatchesInProcess: values, gaps and errors cross gRPC
// exactly, and cancelling the subscriber's context ends the served Broker's
// subscription.
func TestQuoteStreamMatchesInProcess(t *testing.T) {
	mem := newMemBroker()
	c, _ := inProcessPair(t, mem)
	ctx := boundedCtx(t)
	if _, err := c.SubscribeQuotes(ctx, aaplSTK); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("before Connect: %v", err)
	}
	connect(t, c)
	sctx, cancel := context.WithCancel(ctx)
	ch, err := c.SubscribeQuotes(sctx, aaplSTK)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := recvQuote(t, ch)
	want, _ := mem.Snapshot(ctx, aaplSTK)
	want.Time, want.LastTime = first.Quote.Time, first.Quote.LastTime
	if diff := cmp.Diff(broker.QuoteUpdate{Quote: want}, first); diff != "" || first.Quote.Time.IsZero() {
		t.Fatalf("first update (-snapshot +stream):\n%s", diff)
	}

	if _, err := mem.SetQuote(aaplSTK, testbroker.TickQuote(7)); err != nil {
		t.Fatal(err)
	}
	tick, _ := recvQuote(t, ch)
	q := testbroker.TickQuote(7)
	if tick.Quote.Bid.String() != "7.01" || !tick.Quote.Last.Equal(q.Last) || tick.Quote.Volume.String() != "700.5" ||
		tick.Quote.DataType != broker.MarketDataLive || tick.Quote.Contract != aaplSTK || tick.Dropped != 0 {
		t.Fatalf("tick = %+v", tick)
	}
	if _, err := mem.QuoteGap(aaplSTK, "session lost: test"); err != nil {
		t.Fatal(err)
	}
	gap, _ := recvQuote(t, ch)
	if diff := cmp.Diff(broker.QuoteUpdate{Quote: broker.Quote{Contract: aaplSTK}, Gap: "session lost: test"}, gap); diff != "" {
		t.Fatalf("gap marker (-want +got):\n%s", diff)
	}

	if _, err := c.SubscribeQuotes(ctx, broker.Contract{Symbol: "IBM", SecType: "STK"}); !errors.Is(err, broker.ErrNotSubscribed) || broker.IBCode(err) != 10089 {
		t.Errorf("delayed-only: %v", err)
	}
	if _, err := c.SubscribeQuotes(ctx, broker.Contract{}); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("no contract: %v", err)
	}

	cancel()
	awaitClosed(t, ch)
	if err := mem.WaitQuoteStreams(ctx, 0); err != nil {
		t.Fatalf("the served Broker's subscription did not end: %v", err)
	}

	ch, err = c.SubscribeQuotes(ctx, aaplSTK)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, ch)
}

// TestQuoteStreamNeverReadOverChild: a subscriber that never reads while the
// child's Broker ticks 100 000 times slows no other call, the host's memory
// stays bounded, and reading then finds the newest quote with every tick
// counted. Killing the child mid-stream closes the channel.
func TestQuoteStreamNeverReadOverChild(t *testing.T) {
	const ticks = 100_000
	c, _ := startChild(t, "mem")
	connect(t, c)
	ctx := boundedCtx(t)
	ch, err := c.SubscribeQuotes(ctx, aaplSTK)
	if err != nil {
		t.Fatal(err)
	}
	testbroker.UnreadQuotes(t, ctx, c, ch, ticks)

	go func() { _, _ = c.AccountSummary(ctx, "ticks:AAPL:1000000") }() // mid-stream
	if _, ok := recvQuote(t, ch); !ok {
		t.Fatal("closed before the kill")
	}
	if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, ch)
}

// TestQuoteStreamRawConsumerNeverReads: a gRPC consumer that opens
// SubscribeQuotes and never receives (not our Client, whose pump always
// reads) blocks neither the served Broker nor the connection's other calls;
// the server's memory stays bounded (what is held is the stream's flow
// control window, not every tick), and receiving then reaches the newest
// quote with every tick counted in "dropped".
func TestQuoteStreamRawConsumerNeverReads(t *testing.T) {
	const ticks = 100_000
	mem := newMemBroker()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log, _ := testLogger(t)
	srv := newGRPCServer(log)(nil)
	if err := (&Plugin{Broker: mem, Logger: log}).GRPCServer(nil, srv); err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(),
		append(grpclink.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); srv.Stop(); <-served })
	rpc := pb.NewBrokerClient(conn)
	ctx := boundedCtx(t)
	if _, err := rpc.Connect(ctx, &pb.ConnectRequest{Host: "127.0.0.1", Port: 4002, ClientId: 7}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := rpc.SubscribeQuotes(sctx, contractToPB(aaplSTK))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var slowest time.Duration
	for i := 1; i <= ticks; i++ {
		if _, err := mem.SetQuote(aaplSTK, testbroker.TickQuote(i)); err != nil {
			t.Fatal(err)
		}
		if i%10_000 == 0 {
			start := time.Now()
			if _, err := rpc.Ping(ctx, &pb.Empty{}); err != nil {
				t.Fatal(err)
			}
			slowest = max(slowest, time.Since(start))
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d ticks pushed to a consumer that does not receive: slowest ping %v; heap grew %d KiB", ticks, slowest, grew>>10)
	if slowest > 2*time.Second {
		t.Errorf("a ping took %v while the stream was not received", slowest)
	}
	// Both halves are in this process: the consumer's window (4 MiB,
	// grpclink) holds stale quotes, the server one value and gRPC's write
	// quota. Queueing every tick would take about 30 MiB.
	if grew > 12<<20 {
		t.Errorf("heap grew %d KiB, want bounded by the flow control window", grew>>10)
	}

	newest := testbroker.TickQuote(ticks).Bid.String()
	var seen int64
	msgs := 0
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("after %d messages: %v", msgs, err)
		}
		msgs++
		seen += 1 + m.GetDropped()
		if m.GetQuote().GetBid() == newest {
			break
		}
	}
	t.Logf("the newest quote after %d messages", msgs)
	if seen != ticks+1 { // the first quote and every tick
		t.Errorf("messages plus dropped = %d, want %d", seen, ticks+1)
	}
	cancel()
	if err := mem.WaitQuoteStreams(ctx, 0); err != nil {
		t.Fatalf("the served Broker's subscription did not end: %v", err)
	}
}

// TestQuoteUpdateRoundTrip: whatever QuoteUpdate the child's Broker hands
// over, the host decodes the same from the protobuf bytes, decimals, gap and
// dropped exact.
func TestQuoteUpdateRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		u := testbroker.QuoteUpdates().Draw(t, "update")
		b, err := proto.Marshal(quoteUpdateToPB(u))
		if err != nil {
			t.Fatal(err)
		}
		var m pb.QuoteUpdate
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		got, err := quoteUpdateFromPB(&m)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(u, got); diff != "" {
			t.Fatalf("(-sent +decoded):\n%s", diff)
		}
	})
	for name, m := range map[string]*pb.QuoteUpdate{
		"type 0 without a gap": {Quote: &pb.Quote{Contract: &pb.Contract{}}},
		"type 9":               {Quote: &pb.Quote{Contract: &pb.Contract{}, MarketDataType: 9}, Gap: "x"},
		"negative dropped":     {Quote: &pb.Quote{Contract: &pb.Contract{}, MarketDataType: 1}, Dropped: -1},
		"bad decimal":          {Quote: &pb.Quote{Contract: &pb.Contract{}, MarketDataType: 1, Bid: "1e3"}},
	} {
		if _, err := quoteUpdateFromPB(m); !errors.Is(err, broker.ErrProtocol) {
			t.Errorf("%s: %v, want ErrProtocol", name, err)
		}
	}
}
