package stdiojson

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/internal/testbroker"
)

// aaplSTK names the AAPL stock of fakes.DefaultInstruments (the testbroker's
// "ticks:AAPL" tags name the same).
var aaplSTK = broker.Contract{Symbol: "AAPL", SecType: "STK", Currency: "USD"}

// recvQuote takes the next value of ch within hangBound; ok is false once ch is closed.
func recvQuote(t testing.TB, ch <-chan broker.QuoteUpdate) (broker.QuoteUpdate, bool) {
	t.Helper()
	select {
	case u, ok := <-ch:
		return u, ok
	case <-time.After(hangBound):
		t.Fatal("no quote update in time")
		return broker.QuoteUpdate{}, false
	}
}

// awaitClosed reads ch until it is closed, within hangBound.
func awaitClosed(t testing.TB, ch <-chan broker.QuoteUpdate) {
	t.Helper()
	for _, ok := recvQuote(t, ch); ok; _, ok = recvQuote(t, ch) {
	}
}

// connectMem starts a mem worker and connects it.
func connectMem(t *testing.T) *Client {
	t.Helper()
	c, _ := startMem(t, 0)
	if _, err := c.Connect(ctxBound(t), broker.ConnectParams{Port: 4002, ClientID: 7}); err != nil {
		t.Fatal(err)
	}
	return c
}

// steer runs testbroker tags in the worker.
func steer(ctx context.Context, t testing.TB, c *Client, tags ...string) {
	t.Helper()
	if _, err := c.AccountSummary(ctx, tags...); err != nil {
		t.Fatalf("steer %v: %v", tags, err)
	}
}

// TestClientQuoteStream: values, gaps and errors cross the worker exactly,
// and cancelling ends the worker's subscription.
func TestClientQuoteStream(t *testing.T) {
	c := connectMem(t)
	ctx := ctxBound(t)
	want := newMemBroker(0)
	if _, err := want.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	ch, err := c.SubscribeQuotes(sctx, aaplSTK)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := recvQuote(t, ch)
	wq, _ := want.Snapshot(ctx, aaplSTK)
	wq.Time, wq.LastTime = first.Quote.Time, first.Quote.LastTime
	if diff := cmp.Diff(broker.QuoteUpdate{Quote: wq}, first); diff != "" || first.Quote.Time.IsZero() {
		t.Fatalf("first update (-snapshot +stream):\n%s", diff)
	}

	steer(ctx, t, c, "ticks:AAPL:1")
	tick, _ := recvQuote(t, ch)
	q := testbroker.TickQuote(1)
	if !tick.Quote.Bid.Equal(q.Bid) || tick.Quote.Bid.String() != "1.01" || !tick.Quote.Last.Equal(q.Last) ||
		tick.Quote.Volume.String() != "100.5" || tick.Quote.Contract != aaplSTK || tick.Dropped != 0 || tick.Gap != "" {
		t.Fatalf("tick 1 = %+v", tick)
	}

	steer(ctx, t, c, "gap:AAPL:session lost: test")
	gap, _ := recvQuote(t, ch)
	if diff := cmp.Diff(broker.QuoteUpdate{Quote: broker.Quote{Contract: aaplSTK}, Gap: "session lost: test"}, gap); diff != "" {
		t.Fatalf("gap marker (-want +got):\n%s", diff)
	}

	// Errors come back as Snapshot's.
	if _, err := c.SubscribeQuotes(ctx, broker.Contract{Symbol: "IBM", SecType: "STK"}); !errors.Is(err, broker.ErrNotSubscribed) || broker.IBCode(err) != 10089 {
		t.Errorf("delayed-only: %v", err)
	}
	if _, err := c.SubscribeQuotes(ctx, broker.Contract{Symbol: "NOPE", SecType: "STK"}); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}

	steer(ctx, t, c, "quotestreams:1")
	cancel()
	awaitClosed(t, ch)
	steer(ctx, t, c, "quotestreams:0") // the worker's Broker ended its subscription

	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SubscribeQuotes(ctx, aaplSTK); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("without a session: %v", err)
	}
}

// TestClientQuoteStreamEnds: the channel is closed when the session ends, on
// Close, and when the worker is killed mid-stream.
func TestClientQuoteStreamEnds(t *testing.T) {
	c := connectMem(t)
	ctx := ctxBound(t)
	ch, err := c.SubscribeQuotes(ctx, aaplSTK)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, ch)

	c = connectMem(t)
	ch, err = c.SubscribeQuotes(ctx, aaplSTK)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = c.AccountSummary(ctx, "ticks:AAPL:1000000") }() // mid-stream
	if _, ok := recvQuote(t, ch); !ok {
		t.Fatal("closed before the kill")
	}
	if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, ch)

	c = connectMem(t)
	ch, err = c.SubscribeQuotes(ctx, aaplSTK)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	awaitClosed(t, ch)
	if _, err := c.SubscribeQuotes(ctx, aaplSTK); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestClientQuoteStreamNeverRead: a subscriber that never reads while the
// worker's Broker ticks 100 000 times slows no other call, the host's memory
// stays bounded, and reading then finds the newest quote, every tick counted
// (taken or Dropped).
func TestClientQuoteStreamNeverRead(t *testing.T) {
	const ticks = 100_000
	c := connectMem(t)
	ctx := ctxBound(t)
	ch, err := c.SubscribeQuotes(ctx, aaplSTK)
	if err != nil {
		t.Fatal(err)
	}
	testbroker.UnreadQuotes(t, ctx, c, ch, ticks)
}

// quoteLine is a quote event line as a host in another language reads it.
type quoteLine struct {
	Event        string         `json:"event"`
	Subscription string         `json:"subscription"`
	Quote        map[string]any `json:"quote"`
	Gap          *string        `json:"gap"`
	Dropped      *int64         `json:"dropped"`
}

// rawHost drives Serve over pipes that it reads only when the test says.
type rawHost struct {
	in   *io.PipeWriter
	out  *bufio.Reader
	done chan error
}

func startRawHost(t *testing.T, b broker.Broker) *rawHost {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h := &rawHost{in: inW, out: bufio.NewReaderSize(outR, 512), done: make(chan error, 1)}
	go func() {
		err := Serve(context.Background(), b, inR, outW)
		outW.Close()
		h.done <- err
	}()
	t.Cleanup(func() {
		drained := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, outR); close(drained) }()
		inW.Close()
		select {
		case <-h.done:
		case <-time.After(hangBound):
			t.Error("Serve did not return after its input closed")
		}
		<-drained
	})
	return h
}

func (h *rawHost) send(t testing.TB, line string) {
	t.Helper()
	wrote := make(chan error, 1)
	go func() { _, err := io.WriteString(h.in, line+"\n"); wrote <- err }()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hangBound):
		t.Fatal("the worker did not take a request")
	}
}

// line reads the next line.
func (h *rawHost) line(t testing.TB) string {
	t.Helper()
	got := make(chan string, 1)
	go func() { l, _ := h.out.ReadString('\n'); got <- l }()
	select {
	case l := <-got:
		if l == "" {
			t.Fatal("worker output ended")
		}
		return l
	case <-time.After(hangBound):
		t.Fatal("no line from the worker")
		return ""
	}
}

func decodeQuoteLine(t testing.TB, l string) quoteLine {
	t.Helper()
	var q quoteLine
	if err := json.Unmarshal([]byte(l), &q); err != nil || q.Event != eventQuote || q.Dropped == nil {
		t.Fatalf("not a quote line (%v): %s", err, l)
	}
	return q
}

// TestServeQuoteStreamHostNeverReads: while the host reads nothing, the
// worker's Broker ticks 100 000 times on each of two streams without ever
// blocking and the worker's heap stays bounded; a request sent meanwhile is
// answered behind at most about quoteBacklog bytes of quotes once the host
// reads; the newest quotes then arrive with the exact decimal text, the gap,
// and "dropped" counts that account for every tick.
func TestServeQuoteStreamHostNeverReads(t *testing.T) {
	const ticks = 100_000
	b := newMemBroker(0)
	h := startRawHost(t, b)
	h.send(t, `{"id":1,"command":"connect"}`)
	if l := h.line(t); !strings.Contains(l, `"connected":true`) {
		t.Fatalf("connect: %s", l)
	}
	msft := broker.Contract{Symbol: "MSFT", SecType: "STK"}
	h.send(t, `{"id":2,"command":"subscribe_quotes","subscription":"s1","contract":{"symbol":"AAPL","sec_type":"STK"}}`)
	if l := h.line(t); l != `{"id":2,"status":"success","data":{"subscription":"s1"}}`+"\n" {
		t.Fatalf("subscribe_quotes answered %s", l)
	}
	first := decodeQuoteLine(t, h.line(t))
	if first.Subscription != "s1" || first.Quote["bid"] != "189.49" || first.Quote["volume"] != "45210034.5" ||
		first.Quote["market_data_type"] != "live" || *first.Dropped != 0 || first.Gap != nil {
		t.Fatalf("first quote line %+v", first)
	}
	h.send(t, `{"id":3,"command":"subscribe_quotes","subscription":"s2","contract":{"symbol":"MSFT","sec_type":"STK"}}`)
	h.line(t)
	if q := decodeQuoteLine(t, h.line(t)); q.Subscription != "s2" || q.Quote["bid"] != "415.2" {
		t.Fatalf("first MSFT line %+v", q)
	}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := 1; i <= ticks; i++ {
		if i == ticks/2 {
			if _, err := b.QuoteGap(aaplSTK, "test gap"); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []broker.Contract{aaplSTK, msft} {
			if _, err := b.SetQuote(c, testbroker.TickQuote(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	pushed := time.Since(start)
	h.send(t, `{"id":4,"command":"ping"}`) // taken while the output is stuck
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("2×%d ticks pushed in %v with the host not reading; worker heap grew %d KiB", ticks, pushed, grew>>10)
	if grew > 4<<20 {
		t.Errorf("heap grew %d KiB with the output stuck, want bounded", grew>>10)
	}

	start = time.Now()
	ahead := 0
	seen := map[string]int64{}
	last := map[string]quoteLine{}
	gapSeen := false
	for answered := false; !answered || last["s1"].Quote["bid"] != "100000.01" || last["s2"].Quote["bid"] != "100000.01"; {
		l := h.line(t)
		if strings.HasPrefix(l, `{"id":4,`) {
			answered = true
			t.Logf("ping answered %v after the host read again, behind %d bytes of quotes", time.Since(start), ahead)
			continue
		}
		q := decodeQuoteLine(t, l)
		if !answered {
			ahead += len(l)
		}
		seen[q.Subscription] += 1 + *q.Dropped
		last[q.Subscription] = q
		gapSeen = gapSeen || (q.Gap != nil && *q.Gap == "test gap" && q.Subscription == "s1")
	}
	if ahead > quoteBacklog+4<<10 {
		t.Errorf("the ping's answer came behind %d bytes of quotes, want at most about %d", ahead, quoteBacklog)
	}
	for sub, want := range map[string]int64{"s1": ticks + 1, "s2": ticks} { // s1 had a gap too
		if seen[sub] != want {
			t.Errorf("%s: quote lines plus dropped after the first = %d, want %d", sub, seen[sub], want)
		}
	}
	if !gapSeen {
		t.Error("the gap marker was conflated away")
	}
	want := map[string]any{"bid": "100000.01", "ask": "100000.02", "last": "100000.015", "bid_size": "100000",
		"ask_size": "100000", "last_size": "100000", "volume": "10000000.5", "market_data_type": "live"}
	for k, v := range want {
		if last["s1"].Quote[k] != v {
			t.Errorf("newest quote %s = %v, want %q", k, last["s1"].Quote[k], v)
		}
	}

	h.send(t, `{"id":5,"command":"unsubscribe","subscription":"s1"}`)
	for got := map[string]bool{}; !got["answer"] || !got["end"]; {
		l := h.line(t)
		switch {
		case l == `{"id":5,"status":"success","data":{"unsubscribed":true}}`+"\n":
			got["answer"] = true
		case strings.HasPrefix(l, `{"event":"subscription_end","subscription":"s1"`):
			got["end"] = true
		case strings.HasPrefix(l, `{"event":"quote"`):
		default:
			t.Fatalf("unexpected line %s", l)
		}
	}
	if err := b.WaitQuoteStreams(ctxBound(t), 1); err != nil {
		t.Fatal(err)
	}
}

// TestServeQuoteStreamBadRequests: subscribe_quotes needs a name and a
// contract; a live name is refused.
func TestServeQuoteStreamBadRequests(t *testing.T) {
	b := newMemBroker(0)
	h := startRawHost(t, b)
	h.send(t, `{"id":1,"command":"connect"}`)
	h.line(t)
	for i, req := range []string{
		`"contract":{"symbol":"AAPL","sec_type":"STK"}`,
		`"subscription":"x"`,
		`"subscription":"x","contract":{"symbol":"AAPL","strike":"1e3"}`,
	} {
		h.send(t, fmt.Sprintf(`{"id":%d,"command":"subscribe_quotes",%s}`, 10+i, req))
		if l := h.line(t); !strings.Contains(l, `"code":"invalid_argument"`) {
			t.Errorf("%s: %s", req, l)
		}
	}
	h.send(t, `{"id":20,"command":"subscribe_quotes","subscription":"x","contract":{"symbol":"AAPL","sec_type":"STK"}}`)
	h.line(t)
	h.line(t) // the first quote
	h.send(t, `{"id":21,"command":"subscribe_quotes","subscription":"x","contract":{"symbol":"MSFT","sec_type":"STK"}}`)
	if l := h.line(t); !strings.Contains(l, `"code":"invalid_argument"`) || !strings.Contains(l, "is live") {
		t.Errorf("a live name: %s", l)
	}
}

// TestQuoteEventRoundTrip: whatever QuoteUpdate the worker's Broker hands
// over, the host decodes the same, decimals, gap and dropped exact.
func TestQuoteEventRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		u := testbroker.QuoteUpdates().Draw(t, "update")
		line, err := json.Marshal(wireQuoteEvent{Event: eventQuote, Subscription: "q1", Quote: toWireQuote(u.Quote),
			Gap: u.Gap, Dropped: u.Dropped})
		if err != nil {
			t.Fatal(err)
		}
		in, err := parseInbound(line)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeQuoteEvent(in)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if diff := cmp.Diff(u, got); diff != "" {
			t.Fatalf("%s (-sent +decoded):\n%s", line, diff)
		}
	})
	for _, bad := range []string{
		`{"event":"quote","subscription":"q1","quote":{"bid":"1e3","market_data_type":"live","time":"2026-01-01T00:00:00Z"},"dropped":0}`,
		`{"event":"quote","subscription":"q1","quote":{"market_data_type":"","time":"2026-01-01T00:00:00Z"},"dropped":0}`,
		`{"event":"quote","subscription":"q1","quote":{"market_data_type":"live","time":"2026-01-01T00:00:00Z"},"dropped":-1}`,
		`{"event":"quote","subscription":"q1","quote":[],"dropped":0}`,
	} {
		in, err := parseInbound([]byte(bad))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeQuoteEvent(in); !errors.Is(err, broker.ErrProtocol) {
			t.Errorf("%s: %v, want ErrProtocol", bad, err)
		}
	}
}
