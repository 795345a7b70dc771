//go:build !race

// Issue 13 part 2: contract details, symbol search, market data and
// historical bars decoded by scmhub/ibapi at a matrix of server versions. See
// scmhub_test.go for why these tests are left out of -race builds.

package fakes_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scmhub/ibapi"
	"github.com/scmhub/ibapi/protobuf"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// mdRecorder logs the market data callbacks of scmhub, one line each, and
// signals end markers and errors.
type mdRecorder struct {
	ibapi.Wrapper

	mu     sync.Mutex
	log    []string
	protos map[string]bool
	ends   chan string
	errs   chan ibError
	next   chan int64
}

func newMDRecorder() *mdRecorder {
	return &mdRecorder{ends: make(chan string, 64), errs: make(chan ibError, 64), next: make(chan int64, 4),
		protos: map[string]bool{}}
}

func (r *mdRecorder) add(format string, a ...any) {
	r.mu.Lock()
	r.log = append(r.log, fmt.Sprintf(format, a...))
	r.mu.Unlock()
}

func (r *mdRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.log
	r.log = nil
	return l
}

func (r *mdRecorder) saw(name string) {
	r.mu.Lock()
	r.protos[name] = true
	r.mu.Unlock()
}

func (r *mdRecorder) NextValidID(id int64) { put(r.next, id) }
func (r *mdRecorder) Error(reqID, _ int64, code int64, msg, json string) {
	if code != fakes.CodeMarketDataFarmOK && code != fakes.CodeHistDataFarmOK && code != fakes.CodeSecDefDataFarmOK {
		r.add("error %d %d", reqID, code)
		put(r.errs, ibError{ReqID: reqID, Code: code, Msg: msg, JSON: json})
	}
}
func (r *mdRecorder) ContractDetails(reqID int64, cd *ibapi.ContractDetails) {
	r.add("details %d %s pex=%s name=%s tick=%s exchs=%s tz=%s hours=%s liquid=%s", reqID, ctr(&cd.Contract),
		cd.Contract.PrimaryExchange, unbyte(cd.LongName), fl(cd.MinTick), cd.ValidExchanges, cd.TimeZoneID, cd.TradingHours,
		cd.LiquidHours)
}

// unbyte undoes a bug of scmhub's text decoder (decodeStringUnescaped, used for
// CONTRACT_DATA's long name from version 153 until the protobuf form at 205):
// it formats the field's bytes as "[65 80 ...]" before unquoting them.
func unbyte(s string) string {
	inner, ok := strings.CutPrefix(s, "[")
	if inner, ok2 := strings.CutSuffix(inner, "]"); ok && ok2 {
		var b []byte
		for _, f := range strings.Fields(inner) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 0 || n > 255 {
				return s
			}
			b = append(b, byte(n))
		}
		return string(b)
	}
	return s
}

func (r *mdRecorder) ContractDetailsEnd(reqID int64) { put(r.ends, fmt.Sprint("details ", reqID)) }
func (r *mdRecorder) SymbolSamples(reqID int64, ds []ibapi.ContractDescription) {
	for _, d := range ds {
		r.add("sample %d %d %s %s %s %s", reqID, d.Contract.ConID, d.Contract.Symbol, d.Contract.SecType,
			d.Contract.PrimaryExchange, d.Contract.Currency)
	}
	put(r.ends, fmt.Sprint("samples ", reqID))
}
func (r *mdRecorder) TickPrice(reqID int64, tt ibapi.TickType, price float64, _ ibapi.TickAttrib) {
	r.add("price %d %d %s", reqID, tt, fl(price))
}
func (r *mdRecorder) TickSize(reqID int64, tt ibapi.TickType, size ibapi.Decimal) {
	r.add("size %d %d %s", reqID, tt, size.String())
}
func (r *mdRecorder) TickString(reqID int64, tt ibapi.TickType, v string) {
	if _, err := time.Parse("2006", v); err == nil || v == "" {
		r.add("bad string %d %d %q", reqID, tt, v)
		return
	}
	r.add("string %d %d", reqID, tt)
}
func (r *mdRecorder) TickGeneric(reqID int64, tt ibapi.TickType, v float64) {
	r.add("generic %d %d %s", reqID, tt, fl(v))
}
func (r *mdRecorder) MarketDataType(reqID int64, t int64)         { r.add("type %d %d", reqID, t) }
func (r *mdRecorder) TickReqParams(int64, float64, string, int64) {}
func (r *mdRecorder) TickSnapshotEnd(reqID int64)                 { put(r.ends, fmt.Sprint("snapshot ", reqID)) }
func (r *mdRecorder) HistoricalData(reqID int64, b *ibapi.Bar) {
	r.add("bar %d %s o=%s h=%s l=%s c=%s v=%s wap=%s n=%d", reqID, b.Date, fl(b.Open), fl(b.High), fl(b.Low),
		fl(b.Close), b.Volume.String(), b.Wap.String(), b.BarCount)
}
func (r *mdRecorder) HistoricalDataEnd(reqID int64, start, end string) {
	put(r.ends, fmt.Sprint("bars ", reqID))
}
func (r *mdRecorder) CurrentTime(int64) { put(r.ends, "time") }

func (r *mdRecorder) ContractDataProtoBuf(*protobuf.ContractData)       { r.saw("CONTRACT_DATA") }
func (r *mdRecorder) ContractDataEndProtoBuf(*protobuf.ContractDataEnd) { r.saw("CONTRACT_DATA_END") }
func (r *mdRecorder) TickPriceProtoBuf(*protobuf.TickPrice)             { r.saw("TICK_PRICE") }
func (r *mdRecorder) TickSizeProtoBuf(*protobuf.TickSize)               { r.saw("TICK_SIZE") }
func (r *mdRecorder) TickStringProtoBuf(*protobuf.TickString)           { r.saw("TICK_STRING") }
func (r *mdRecorder) TickGenericProtoBuf(*protobuf.TickGeneric)         { r.saw("TICK_GENERIC") }
func (r *mdRecorder) TickSnapshotEndProtoBuf(*protobuf.TickSnapshotEnd) { r.saw("TICK_SNAPSHOT_END") }
func (r *mdRecorder) MarketDataTypeProtoBuf(*protobuf.MarketDataType)   { r.saw("MARKET_DATA_TYPE") }
func (r *mdRecorder) SymbolSamplesProtoBuf(*protobuf.SymbolSamples)     { r.saw("SYMBOL_SAMPLES") }
func (r *mdRecorder) TickReqParamsProtoBuf(*protobuf.TickReqParams)     { r.saw("TICK_REQ_PARAMS") }
func (r *mdRecorder) HistoricalDataProtoBuf(*protobuf.HistoricalData)   { r.saw("HISTORICAL_DATA") }
func (r *mdRecorder) HistoricalDataEndProtoBuf(*protobuf.HistoricalDataEnd) {
	r.saw("HISTORICAL_DATA_END")
}

func (r *mdRecorder) waitEnd(t *testing.T, want string) {
	t.Helper()
	for {
		select {
		case e := <-r.ends:
			if e == want {
				return
			}
		case err := <-r.errs:
			t.Fatalf("error %+v while waiting for %s", err, want)
		case <-time.After(hangLimit):
			t.Fatalf("timed out waiting for %s", want)
		}
	}
}

func (r *mdRecorder) waitErr(t *testing.T, reqID, code int64) {
	t.Helper()
	e := recv(t, r.errs, fmt.Sprintf("error %d for %d", code, reqID))
	if e.ReqID != reqID || e.Code != code {
		t.Fatalf("error %+v, want %d for request %d", e, code, reqID)
	}
}

func instrument(s fakes.Script, sym string) fakes.Instrument {
	for _, in := range s.Instruments {
		if in.Contract.Symbol == sym && in.Contract.SecType != "OPT" {
			return in
		}
	}
	panic("no instrument " + sym)
}

func stkContract(sym string) *ibapi.Contract {
	c := ibapi.NewContract()
	c.Symbol, c.SecType, c.Exchange, c.Currency = sym, "STK", "SMART", "USD"
	return c
}

func connectMD(t *testing.T, g *fakes.Gateway, r *mdRecorder) *ibapi.EClient {
	t.Helper()
	return connectMDAs(t, g, r, 1)
}

func connectMDAs(t *testing.T, g *fakes.Gateway, r *mdRecorder, clientID int64) *ibapi.EClient {
	t.Helper()
	c := ibapi.NewEClient(r)
	if err := c.Connect(g.Host(), g.Port(), clientID); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect() })
	recv(t, r.next, "NextValidID")
	return c
}

func TestScmhubMarketData(t *testing.T) {
	for _, v := range []int{100, 110, 124, 125, 153, 163, 164, 178, 186, 193, 195, 196, 200, 201, 204, 205, 206, 208, 212, 213, 225} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) { testMarketData(t, v) })
	}
}

// wantSnapshot is what scmhub reports for a snapshot of in: delayed tick
// types when delayed (a TICK_PRICE with a size also yields that size).
func wantSnapshot(reqID int64, in fakes.Instrument, delayed bool, dataType int) []string {
	q := in.Quote
	tt := func(live, del int) int {
		if delayed {
			return del
		}
		return live
	}
	px := func(d broker.Decimal) string { return fl(d.Float64()) }
	w := []string{fmt.Sprintf("type %d %d", reqID, dataType)}
	w = append(w, fmt.Sprintf("price %d %d %s", reqID, tt(1, 66), px(q.Bid)),
		fmt.Sprintf("size %d %d %s", reqID, tt(0, 69), q.BidSize), fmt.Sprintf("size %d %d %s", reqID, tt(0, 69), q.BidSize),
		fmt.Sprintf("price %d %d %s", reqID, tt(2, 67), px(q.Ask)),
		fmt.Sprintf("size %d %d %s", reqID, tt(3, 70), q.AskSize), fmt.Sprintf("size %d %d %s", reqID, tt(3, 70), q.AskSize),
		fmt.Sprintf("price %d %d %s", reqID, tt(4, 68), px(q.Last)),
		fmt.Sprintf("size %d %d %s", reqID, tt(5, 71), q.LastSize), fmt.Sprintf("size %d %d %s", reqID, tt(5, 71), q.LastSize),
		fmt.Sprintf("string %d %d", reqID, tt(45, 88)),
		fmt.Sprintf("size %d %d %s", reqID, tt(8, 74), q.Volume),
		fmt.Sprintf("price %d %d %s", reqID, tt(6, 72), px(q.High)),
		fmt.Sprintf("price %d %d %s", reqID, tt(7, 73), px(q.Low)),
		fmt.Sprintf("price %d %d %s", reqID, tt(9, 75), px(q.Close)),
		fmt.Sprintf("price %d %d %s", reqID, tt(14, 76), px(q.Open)))
	halted := "0"
	if in.Halted {
		halted = "1"
	}
	return append(w, fmt.Sprintf("generic %d %d %s", reqID, tt(49, 90), halted))
}

func testMarketData(t *testing.T, v int) {
	s := fakes.DefaultScript()
	s.ServerVersion = v
	g := startGateway(t, s)
	r := newMDRecorder()
	c := connectMD(t, g, r)

	// Contract details: exact lookup by symbol, by con id; not found; malformed.
	aapl, eur := instrument(s, "AAPL"), instrument(s, "EUR")
	detail := func(id int64, in fakes.Instrument) string {
		return fmt.Sprintf("details %d %s pex=%s name=%s tick=%s exchs=%s tz=%s hours=%s liquid=%s", id,
			wantCtr(in.Contract), in.PrimaryExchange, in.LongName, fl(in.MinTick.Float64()), in.ValidExchanges,
			in.TimeZone, in.TradingHours, in.LiquidHours)
	}
	c.ReqContractDetails(1, stkContract("AAPL"))
	r.waitEnd(t, "details 1")
	byID := ibapi.NewContract()
	byID.ConID = eur.Contract.ConID
	c.ReqContractDetails(2, byID)
	r.waitEnd(t, "details 2")
	if diff := cmp.Diff([]string{detail(1, aapl), detail(2, eur)}, r.take()); diff != "" {
		t.Fatalf("contract details (-want +got):\n%s", diff)
	}
	c.ReqContractDetails(3, stkContract("NOPE"))
	r.waitErr(t, 3, fakes.CodeNoSecurityDefinition)
	c.ReqContractDetails(4, ibapi.NewContract())
	r.waitErr(t, 4, fakes.CodeValidationError)
	r.take()

	// Symbol search (scmhub refuses it below 108 itself).
	if v >= 108 {
		c.ReqMatchingSymbols(5, "MS")
		r.waitEnd(t, "samples 5")
		msft := instrument(s, "MSFT")
		if diff := cmp.Diff([]string{fmt.Sprintf("sample 5 %d MSFT STK NASDAQ USD", msft.Contract.ConID)}, r.take()); diff != "" {
			t.Fatalf("symbol samples (-want +got):\n%s", diff)
		}
	}

	// A live snapshot, exact values and decimal sizes.
	c.ReqMktData(6, stkContract("AAPL"), "", true, false, nil)
	r.waitEnd(t, "snapshot 6")
	if diff := cmp.Diff(wantSnapshot(6, aapl, false, 1), r.take()); diff != "" {
		t.Fatalf("AAPL snapshot (-want +got):\n%s", diff)
	}
	// A delayed-only instrument: 10089 for live data, 10167 then delayed ticks for delayed.
	ibm := instrument(s, "IBM")
	c.ReqMktData(7, stkContract("IBM"), "", true, false, nil)
	r.waitErr(t, 7, fakes.CodeDelayedAvailable)
	c.ReqMarketDataType(3)
	c.ReqMktData(8, stkContract("IBM"), "", true, false, nil)
	r.waitErr(t, 8, fakes.CodeDisplayingDelayed)
	r.waitEnd(t, "snapshot 8")
	want := append([]string{"error 7 10089", "error 8 10167"}, wantSnapshot(8, ibm, true, 3)...)
	if diff := cmp.Diff(want, r.take()); diff != "" {
		t.Fatalf("IBM delayed snapshot (-want +got):\n%s", diff)
	}
	c.ReqMarketDataType(1)
	// A halted instrument.
	c.ReqMktData(9, stkContract("GME"), "", true, false, nil)
	r.waitEnd(t, "snapshot 9")
	if got := r.take(); !slices.Contains(got, "generic 9 49 1") {
		t.Fatalf("GME snapshot lacks halted=1: %q", got)
	}

	// A moving stream, cancelled: nothing of it after the next answer.
	c.ReqMktData(10, stkContract("SPY"), "", false, false, nil)
	deadline := time.Now().Add(hangLimit)
	for moved := 0; moved < 3; {
		if time.Now().After(deadline) {
			t.Fatal("SPY stream did not move")
		}
		moved = 0
		r.mu.Lock()
		for _, l := range r.log {
			if strings.HasPrefix(l, "price 10 1 ") || strings.HasPrefix(l, "price 10 2 ") {
				moved++
			}
		}
		r.mu.Unlock()
		time.Sleep(10 * time.Millisecond) // polling the recorder, bounded by deadline
	}
	c.CancelMktData(10)
	c.ReqCurrentTime()
	r.waitEnd(t, "time")
	r.take()
	c.ReqCurrentTime()
	r.waitEnd(t, "time")
	if l := r.take(); len(l) != 0 {
		t.Fatalf("callbacks after CANCEL_MKT_DATA: %q", l)
	}

	// Historical bars: deterministic, RTH only, with their end.
	hist := func(id int64) []string {
		c.ReqHistoricalData(id, stkContract("AAPL"), "20261201 21:00:00 UTC", "1 D", "1 hour", "TRADES", true, 1, false, nil)
		r.waitEnd(t, fmt.Sprint("bars ", id))
		var out []string
		for _, l := range r.take() {
			out = append(out, strings.TrimPrefix(l, fmt.Sprintf("bar %d ", id)))
		}
		return out
	}
	b1 := hist(11)
	if len(b1) != 6 || !strings.HasPrefix(b1[0], "20261201 15:00:00 UTC o=") {
		t.Fatalf("bars: %q, want 6 from 20261201 15:00:00 UTC", b1)
	}
	if diff := cmp.Diff(b1, hist(12)); diff != "" {
		t.Fatalf("bars differ between identical requests (-first +second):\n%s", diff)
	}
	if !c.IsConnected() {
		t.Fatal("session ended")
	}

	wantProto := map[string]bool{}
	for name, since := range map[string]int{"CONTRACT_DATA": 205, "CONTRACT_DATA_END": 205, "TICK_PRICE": 206,
		"TICK_SIZE": 206, "TICK_STRING": 206, "TICK_GENERIC": 206, "TICK_SNAPSHOT_END": 206, "MARKET_DATA_TYPE": 206,
		"HISTORICAL_DATA": 208, "HISTORICAL_DATA_END": 208, "SYMBOL_SAMPLES": 212, "TICK_REQ_PARAMS": 206} {
		if v >= since {
			wantProto[name] = true
		}
	}
	r.mu.Lock()
	got := r.protos
	r.mu.Unlock()
	if diff := cmp.Diff(wantProto, got); diff != "" {
		t.Errorf("answers scmhub decoded as protobuf at %d (-want +got):\n%s", v, diff)
	}
}
