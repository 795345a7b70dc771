package ibkr

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scmhub/ibapi"
	"github.com/scmhub/ibapi/protobuf"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// TestSocketLayout pins the two unexported scmhub fields the adapter reaches
// (see socket.go): if an scmhub upgrade changes them, this fails.
func TestSocketLayout(t *testing.T) {
	installLibraryLogger()
	ec := ibapi.NewEClient(nil)
	c := connectionOf(ec)
	if c == nil {
		t.Fatal("connectionOf: scmhub's EClient.conn field is gone or changed type")
	}
	if tc := tcpConnOf(c); tc != nil {
		t.Fatalf("tcpConnOf before Connect = %v, want nil", tc)
	}
	if !setScanner(ec, c, splitFrames(func(rawPosition) {})) {
		t.Fatal("setScanner: scmhub's EClient.scanner field is gone or changed type")
	}

	g, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	a := New()
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Connect(ctx, broker.ConnectParams{Host: g.Host(), Port: g.Port(), ClientID: 3, Timeout: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	s, err := a.live()
	if err != nil {
		t.Fatal(err)
	}
	tc := tcpConnOf(s.conn)
	if tc == nil {
		t.Fatal("tcpConnOf on a connected client = nil: scmhub's Connection.tcpConn field is gone or changed type")
	}
	if got, want := tc.RemoteAddr().String(), g.Addr(); got != want {
		t.Errorf("socket reached through scmhub goes to %s, want the gateway %s", got, want)
	}
}

func TestDecimalFromIB(t *testing.T) {
	for _, tc := range []struct {
		in   string // wire text, through scmhub's parser
		want string // "" means an ErrProtocol error
	}{
		{"100", "100"},
		{"-0.5", "-0.5"},
		{"0.0000001", "0.0000001"},
		{"-12345678901.2345678", "-12345678901.2345678"},
		{"99999999999.9999999", "99999999999.9999999"},
		{"0", "0"},
		{"", ""},                    // unset
		{"2147483647", ""},          // IB's "no value" marker
		{"9223372036854775807", ""}, // likewise
		{"123456789012", ""},        // beyond scmhub's range: NaN
		{"abc", ""},
	} {
		got, err := decimalFromIB(ibapi.StringToDecimal(tc.in))
		if tc.want == "" {
			if !errors.Is(err, broker.ErrProtocol) {
				t.Errorf("decimalFromIB(%q) = %v, %v; want an ErrProtocol error", tc.in, got, err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("decimalFromIB(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

// decimalText generates decimal text within scmhub's exact range: at most 11
// integer digits and 7 fractional ones.
func decimalText(maxFrac int) *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		neg := rapid.Bool().Draw(t, "neg")
		intPart := rapid.StringMatching(`[1-9][0-9]{0,10}|0`).Draw(t, "int")
		frac := rapid.StringMatching(`[0-9]{0,`+strconv.Itoa(maxFrac)+`}`).Draw(t, "frac")
		s := intPart
		if frac != "" {
			s += "." + frac
		}
		if neg {
			s = "-" + s
		}
		return s
	})
}

// TestDecimalFromIBExact: every decimal scmhub can hold comes through exactly.
func TestDecimalFromIBExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := decimalText(7).Draw(t, "s")
		want := broker.MustDecimal(s)
		got, err := decimalFromIB(ibapi.StringToDecimal(s))
		if err != nil || !got.Equal(want) {
			t.Fatalf("decimalFromIB(%q) = %v, %v; want %v", s, got, err, want)
		}
	})
}

// TestDecimalFromFloatExact: a price with at most 15 significant digits
// survives the float64 that scmhub hands over.
func TestDecimalFromFloatExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		digits := rapid.StringMatching(`[1-9][0-9]{0,14}`).Draw(t, "digits")
		point := rapid.IntRange(0, len(digits)).Draw(t, "point")
		s := digits[:len(digits)-point]
		if s == "" {
			s = "0"
		}
		if point > 0 {
			s += "." + digits[len(digits)-point:]
		}
		want := broker.MustDecimal(s)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decimalFromFloat(f)
		if err != nil || !got.Equal(want) {
			t.Fatalf("decimalFromFloat(%v) from %q = %v, %v; want %v", f, s, got, err, want)
		}
	})
}

func TestDecimalFromFloatRejects(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64} {
		if _, err := decimalFromFloat(f); !errors.Is(err, broker.ErrProtocol) {
			t.Errorf("decimalFromFloat(%v): %v, want an ErrProtocol error", f, err)
		}
	}
}

func FuzzDecimalFromIB(f *testing.F) {
	for _, s := range []string{"100", "-0.5", "0.0000001", "99999999999.9999999", "", "NaN", "1e5", "-", ".", "1.2.3", "12345678901234567890"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := ibapi.StringToDecimal(s)
		got, err := decimalFromIB(d)
		if err != nil {
			if !errors.Is(err, broker.ErrProtocol) {
				t.Fatalf("decimalFromIB(%q): error %v does not match ErrProtocol", s, err)
			}
			return
		}
		// Whatever scmhub made of s, the Decimal is its exact value: going back
		// through scmhub's own parser gives the same fixed-point number.
		if back := ibapi.StringToDecimal(got.String()); back != d {
			t.Fatalf("decimalFromIB(%q) = %v, which scmhub reads back as %v, not %v", s, got, back, d)
		}
	})
}

func FuzzDecimalFromFloat(f *testing.F) {
	for _, v := range []float64{0, 1, -1, 150.25, 1e-7, 1e15, 0.1, math.SmallestNonzeroFloat64, math.MaxFloat64, math.NaN()} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		got, err := decimalFromFloat(v)
		if err != nil {
			if !errors.Is(err, broker.ErrProtocol) {
				t.Fatalf("decimalFromFloat(%v): error %v does not match ErrProtocol", v, err)
			}
			return
		}
		back, perr := strconv.ParseFloat(got.String(), 64)
		if perr != nil || back != v && !(v == 0 && back == 0) {
			t.Fatalf("decimalFromFloat(%v) = %v, which parses back as %v (%v)", v, got, back, perr)
		}
	})
}

func TestParseLogRecord(t *testing.T) {
	level, msg, fields := parseLogRecord([]byte(`{"level":"error","panic":"decode int64 parse error","time":"2025-01-02T15:04:05Z","message":"decoder panic, triggering shutdown"}` + "\n"))
	if level != "error" || msg != "decoder panic, triggering shutdown" {
		t.Errorf("parseLogRecord: level %q message %q", level, msg)
	}
	if diff := cmp.Diff([]any{"panic", "decode int64 parse error"}, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	_, msg, fields = parseLogRecord([]byte("not json\n"))
	if msg != "not json" || fields != nil {
		t.Errorf("parseLogRecord(not json) = %q, %v", msg, fields)
	}
}

func FuzzParseLogRecord(f *testing.F) {
	f.Add([]byte(`{"level":"info","message":"hello","n":1}`))
	f.Add([]byte(`{"message":"decoder panic, triggering shutdown"}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, fields := parseLogRecord(b)
		if len(fields)%2 != 0 {
			t.Fatalf("odd number of key/value elements: %v", fields)
		}
		for i := 0; i < len(fields); i += 2 {
			if _, ok := fields[i].(string); !ok {
				t.Fatalf("key %v is not a string", fields[i])
			}
		}
		n, err := libSink{}.Write(b)
		if n != len(b) || err != nil {
			t.Fatalf("libSink.Write = %d, %v", n, err)
		}
	})
}

func TestEventFor(t *testing.T) {
	for _, tc := range []struct {
		reqID, code int64
		kind        broker.EventKind // 0: no event
	}{
		{-1, broker.IBCodeConnectivityLost, broker.EventConnectionLost},
		{-1, broker.IBCodeRestoredDataLost, broker.EventConnectionRestored},
		{-1, broker.IBCodeRestoredDataMaintained, broker.EventConnectionRestored},
		{-1, broker.IBCodeMarketDataFarmOK, broker.EventNotice},
		{-1, broker.IBCodeNotConnected, 0}, // scmhub's own "Not connected"
		{-1, broker.IBCodeConnectFail, 0},
		{-1, 520, 0},
		{12, broker.IBCodeNotConnected, broker.EventNotice}, // about a request nobody waits for
		{12, broker.IBCodeNoSecurityDefinition, broker.EventNotice},
	} {
		e, ok := eventFor(tc.reqID, tc.code, "text")
		if tc.kind == 0 {
			if ok {
				t.Errorf("eventFor(%d, %d) = %+v, want no event", tc.reqID, tc.code, e)
			}
			continue
		}
		if !ok || e.Kind != tc.kind || e.Code != tc.code || e.Message != "text" {
			t.Errorf("eventFor(%d, %d) = %+v, %v; want kind %v", tc.reqID, tc.code, e, ok, tc.kind)
		}
	}
}

func TestSummaryCollectorOrder(t *testing.T) {
	var c summaryCollector
	if got := c.result(); got == nil || len(got) != 0 {
		t.Errorf("empty collector result = %#v, want empty non-nil", got)
	}
	c.add("B", "NetLiquidation", "1", "USD")
	c.add("A", "NetLiquidation", "2", "EUR")
	c.add("B", "AccountType", "INDIVIDUAL", "")
	want := []broker.AccountSummary{
		{Account: "B", Values: map[string]broker.SummaryValue{"NetLiquidation": {Value: "1", Currency: "USD"}, "AccountType": {Value: "INDIVIDUAL"}}},
		{Account: "A", Values: map[string]broker.SummaryValue{"NetLiquidation": {Value: "2", Currency: "EUR"}}},
	}
	if diff := cmp.Diff(want, c.result()); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

// newTestSession returns a session not attached to any client, for driving
// its callbacks directly.
func newTestSession(t *testing.T) *session {
	a := New()
	t.Cleanup(func() { _ = a.Close() })
	return newSession(a)
}

func TestPositionCallbacks(t *testing.T) {
	s := newTestSession(t)
	pc := &posCollect{done: make(chan struct{}), waiters: 1, open: true}
	s.pos = pc
	s.Position("DU1", &ibapi.Contract{ConID: 1, Symbol: "AAPL", SecType: "STK", Strike: 0}, ibapi.StringToDecimal("1.5"), 150.25)
	s.Position("DU1", &ibapi.Contract{ConID: 2, Symbol: "X"}, ibapi.UNSET_DECIMAL, 1)
	s.Position("DU1", nil, ibapi.StringToDecimal("1"), 1)
	s.PositionEnd()
	s.bg.Wait()
	select {
	case <-pc.done:
	default:
		t.Fatal("PositionEnd did not complete the request")
	}
	if !errors.Is(pc.err, broker.ErrProtocol) || !strings.Contains(pc.err.Error(), "DU1/2") {
		t.Errorf("unset quantity: err = %v, want ErrProtocol naming DU1/2", pc.err)
	}
	if len(pc.rows) != 1 || pc.rows[0].Quantity.String() != "1.5" || pc.rows[0].AvgCost.String() != "150.25" {
		t.Errorf("rows = %+v", pc.rows)
	}
	s.Position("DU1", &ibapi.Contract{ConID: 3}, ibapi.StringToDecimal("1"), 1) // no request in flight: dropped
	s.PositionEnd()
}

// TestPingQueue: CURRENT_TIME carries no id; answers release waiters in send
// order, a waiter that gave up leaves the queue (a lost answer costs one Ping),
// and a fence's answer opens its positions request.
func TestPingQueue(t *testing.T) {
	s := newTestSession(t)
	w := []*pingWaiter{{done: make(chan struct{})}, {done: make(chan struct{})}, {done: make(chan struct{})}}
	s.pings = append(s.pings, w...)
	s.CurrentTime(1)
	s.CurrentTime(2)
	for i, want := range []bool{true, true, false} {
		if got := isClosed(w[i].done); got != want {
			t.Errorf("waiter %d released = %v, want %v", i, got, want)
		}
	}
	s.CurrentTime(3)
	s.CurrentTime(4) // unsolicited: ignored
	if !isClosed(w[2].done) || len(s.pings) != 0 {
		t.Errorf("third waiter released %v, queue %d", isClosed(w[2].done), len(s.pings))
	}

	gaveUp, next := &pingWaiter{done: make(chan struct{})}, &pingWaiter{done: make(chan struct{})}
	s.pings = append(s.pings, gaveUp, next)
	s.dropPing(gaveUp)
	s.CurrentTime(5)
	if !isClosed(next.done) || isClosed(gaveUp.done) {
		t.Errorf("after a waiter gave up, the next answer released it %v and the live waiter %v", isClosed(gaveUp.done), isClosed(next.done))
	}

	pc := &posCollect{done: make(chan struct{}), waiters: 1}
	s.pos = pc
	s.pings = append(s.pings, &pingWaiter{done: make(chan struct{}), fence: pc})
	s.Position("DU1", &ibapi.Contract{ConID: 1}, ibapi.StringToDecimal("1"), 1) // before the fence: an older request's
	s.PositionEnd()
	s.CurrentTime(6)
	s.Position("DU1", &ibapi.Contract{ConID: 2}, ibapi.StringToDecimal("2"), 1)
	s.PositionEnd()
	s.bg.Wait()
	if !isClosed(pc.done) || len(pc.rows) != 1 || pc.rows[0].Contract.ConID != 2 {
		t.Errorf("fenced request: done %v, rows %+v; want the one row after the fence", isClosed(pc.done), pc.rows)
	}
}

func TestErrorRouting(t *testing.T) {
	s := newTestSession(t)
	events, err := s.a.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r := &summaryReq{done: make(chan struct{})}
	s.byID[42] = r
	s.Error(42, 0, 321, "Error validating request", "")
	var api *broker.APIError
	if !isClosed(r.done) || !errors.As(r.err, &api) || api.Code != 321 || api.ReqID != 42 {
		t.Errorf("summary error: done %v, err %v", isClosed(r.done), r.err)
	}
	s.Error(-1, 0, broker.IBCodeClientIDInUse, "in use", "")
	if err := s.refusal(); broker.IBCode(err) != broker.IBCodeClientIDInUse || !errors.Is(err, broker.ErrClientIDInUse) {
		t.Errorf("326 during connect: refusal = %v", err)
	}
	s.Error(-1, 0, broker.IBCodeNotConnected, "Not connected", "")
	s.Error(-1, 0, broker.IBCodeConnectivityLost, "lost", "")
	select {
	case e := <-events:
		if e.Kind != broker.EventConnectionLost || e.Code != broker.IBCodeConnectivityLost {
			t.Errorf("event = %+v, want connection lost 1100 (504 must not be published)", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for 1100")
	}
}

// TestRequestFrames: below server version 201 the frames the adapter writes
// itself are the TWS frames of scmhub's requests at 193, byte for byte as the
// fake encodes them (scmhub_frames_test.go compares every version with scmhub).
func TestRequestFrames(t *testing.T) {
	for _, c := range []struct {
		r    request
		want []string
	}{
		{reqPositions(), []string{"61", "1"}},
		{cancelPositions(), []string{"64", "1"}},
		{reqAccountSummary(9, "All", "NetLiquidation,TotalCashValue"), []string{"62", "1", "9", "All", "NetLiquidation,TotalCashValue"}},
		{cancelAccountSummary(9), []string{"63", "1", "9"}},
		{reqCurrentTime(false), []string{"49", "1"}},
	} {
		got, err := c.r.frame(193)
		if want := fakes.EncodeFrame(c.want...); err != nil || !bytes.Equal(got, want) {
			t.Errorf("frame %q = % x, %v; want % x", c.want, got, err, want)
		}
	}
}

// TestSplitFramesTee: the scanner's split hands the raw number fields of each
// POSITION_DATA frame (every version), never of the handshake reply, and
// passes every frame on unchanged.
func TestSplitFramesTee(t *testing.T) {
	frame := textFrame
	var stream []byte
	stream = append(stream, frame("61", "20250102 10:00:00 EST")...) // a handshake reply of version 61
	stream = append(stream, frame("61", "3", "DU1", "1", "A", "OPT", "", "187.5", "C", "100", "X", "USD", "A", "A", "0.00000001", "-42.4242424242424242")...)
	stream = append(stream, frame("61", "2", "DU1", "1", "A", "STK", "", "", "", "", "X", "USD", "A", "A", "5")...)
	stream = append(stream, frame("61", "1", "DU1", "1", "A", "STK", "", "", "", "", "X", "USD", "A", "7")...)
	stream = append(stream, frame("49", "1", "1700000000")...)
	n, got := teeAll(stream)
	want := []rawPosition{
		{account: "DU1", conID: 1, quantity: "0.00000001", avgCost: "-42.4242424242424242", strike: "187.5"},
		{account: "DU1", conID: 1, quantity: "5"},
		{account: "DU1", conID: 1, quantity: "7"},
	}
	if n != 5 || !slices.Equal(got, want) {
		t.Errorf("scanned %d frames, teed %+v; want 5 frames and %+v", n, got, want)
	}
}

// teeAll scans stream with splitFrames and returns the frames it found and
// what it teed.
func teeAll(stream []byte) (frames int, teed []rawPosition) {
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Split(splitFrames(func(r rawPosition) { teed = append(teed, r) }))
	for sc.Scan() {
		frames++
	}
	return frames, teed
}

// TestSplitFramesTeeBinary: from server version 201 the split reads
// POSITION_DATA after its raw id as text, and from 207 as a protobuf Position
// (quantity as text, cost and strike as the schema's doubles); other frames
// and protobuf bodies scmhub cannot parse are not teed.
func TestSplitFramesTeeBinary(t *testing.T) {
	raw := func(id uint32, tail []byte) []byte {
		p := append(binary.BigEndian.AppendUint32(nil, id), tail...)
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)
	}
	text := func(fields ...string) []byte { return []byte(strings.Join(fields, "\x00") + "\x00") }
	pb, err := proto.Marshal(&protobuf.Position{Account: proto.String("DU2"),
		Contract: &protobuf.Contract{ConId: proto.Int32(2), Strike: proto.Float64(187.5)},
		Position: proto.String("922337203685.4775808"), AvgCost: proto.Float64(-42.25)})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"201", "225"} {
		stream := textFrame(v, "20250102 10:00:00 EST")
		stream = append(stream, raw(61, text("3", "DU1", "1", "A", "OPT", "", "187.5", "C", "100", "X", "USD", "A", "A",
			"0.00000001", "-42.4242424242424242"))...)
		stream = append(stream, raw(261, pb)...)
		stream = append(stream, raw(261, []byte{0xff, 0xff})...) // not protobuf: scmhub logs it, no callback
		stream = append(stream, raw(49, text("1", "1700000000"))...)
		n, got := teeAll(stream)
		want := []rawPosition{
			{account: "DU1", conID: 1, quantity: "0.00000001", avgCost: "-42.4242424242424242", strike: "187.5"},
			{account: "DU2", conID: 2, quantity: "922337203685.4775808", avgCost: "-42.25", strike: "187.5"},
		}
		if n != 5 || !slices.Equal(got, want) {
			t.Errorf("at %s: scanned %d frames, teed %+v; want 5 frames and %+v", v, n, got, want)
		}
	}
}

// FuzzSplitFrames: the split function runs on scmhub's scanner goroutine, which
// recovers nothing: whatever bytes arrive, it must not panic, must frame
// exactly as scmhub's scanFields does, and must tee once per POSITION_DATA
// frame after the first.
func FuzzSplitFrames(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x0461\x00\x00"), []byte("61\x003\x00DU1\x00"))
	f.Add([]byte{0, 0, 0, 0}, []byte("61\x00"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, []byte{})
	f.Fuzz(func(t *testing.T, head, payload []byte) {
		stream := append(slices.Clone(head), textFrame()...)
		frame := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
		stream = append(append(stream, frame...), payload...)
		teed := 0
		mine := bufio.NewScanner(bytes.NewReader(stream))
		mine.Buffer(make([]byte, 64), 1<<16)
		mine.Split(splitFrames(func(rawPosition) { teed++ }))
		theirs := bufio.NewScanner(bytes.NewReader(stream))
		theirs.Buffer(make([]byte, 64), 1<<16)
		theirs.Split(scanFieldsLikeScmhub)
		frames, positions, version := 0, 0, 0
		for mine.Scan() {
			if !theirs.Scan() || !bytes.Equal(mine.Bytes(), theirs.Bytes()) {
				t.Fatalf("frame %d differs from scmhub's framing", frames)
			}
			if frames == 0 {
				version = handshakeVersion(mine.Bytes())
			} else if _, ok := positionFrame(version, mine.Bytes()); ok {
				positions++
			}
			frames++
		}
		if theirs.Scan() {
			t.Fatalf("scmhub's framing finds more than %d frames", frames)
		}
		if teed != positions {
			t.Fatalf("teed %d times for %d POSITION_DATA frames", teed, positions)
		}
	})
}

// scanFieldsLikeScmhub is scmhub/ibapi v0.10.47's scanFields (utils.go).
func scanFieldsLikeScmhub(data []byte, atEOF bool) (int, []byte, error) {
	if atEOF {
		return 0, nil, io.EOF
	}
	if len(data) < 4 {
		return 0, nil, nil
	}
	total := int(binary.BigEndian.Uint32(data[:4])) + 4
	if total > len(data) {
		return 0, nil, nil
	}
	return total, data[4:total], nil
}

// TestGuard: a panic becomes an error matching broker.ErrProtocol that names
// it; no panic, no error.
func TestGuard(t *testing.T) {
	if err := guard(func() {}); err != nil {
		t.Errorf("guard of a quiet function: %v", err)
	}
	var fields [][]byte
	err := guard(func() { _ = fields[1] })
	if !errors.Is(err, broker.ErrProtocol) || !strings.Contains(err.Error(), "index out of range") {
		t.Errorf("guard of an index out of range: %v, want ErrProtocol naming the panic", err)
	}
}

// TestRawMatching: a callback takes the raw fields of its own account and
// contract, dropping those of frames that produced no callback; a callback
// with no raw fields queued falls back to scmhub's values.
func TestRawMatching(t *testing.T) {
	s := newTestSession(t)
	pc := &posCollect{done: make(chan struct{}), waiters: 1, open: true}
	s.pos = pc
	s.teeRaw(rawPosition{account: "DU9", conID: 9, quantity: "999"}) // its frame never reached the wrapper
	s.teeRaw(rawPosition{account: "DU1", conID: 1, quantity: "0.00000001", avgCost: "0.1"})
	s.Position("DU1", &ibapi.Contract{ConID: 1}, ibapi.StringToDecimal("0"), 0.1)
	s.Position("DU1", &ibapi.Contract{ConID: 2}, ibapi.StringToDecimal("3"), 2.5)
	if len(s.raw) != 0 {
		t.Errorf("raw queue keeps %+v", s.raw)
	}
	if len(pc.rows) != 2 || pc.rows[0].Quantity.String() != "0.00000001" || pc.rows[1].Quantity.String() != "3" ||
		pc.rows[1].AvgCost.String() != "2.5" {
		t.Errorf("rows %+v", pc.rows)
	}
	if !isPositionData([]byte("061\x003\x00")) || isPositionData([]byte("261\x00")) || isPositionData([]byte("61")) {
		t.Error("isPositionData does not read the id as scmhub does")
	}
	for range maxRawQueue + 10 {
		s.teeRaw(rawPosition{account: "DU9", conID: 9})
	}
	if len(s.raw) != maxRawQueue {
		t.Errorf("raw queue holds %d entries, want the bound %d", len(s.raw), maxRawQueue)
	}
}

// textFrame frames fields as text, NUL after each; no fields make an empty
// frame (four zero bytes).
func textFrame(fields ...string) []byte {
	var payload []byte
	for _, f := range fields {
		payload = append(append(payload, f...), 0)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)
}
