//go:build !race

// These tests drive the gateway with the real scmhub/ibapi client, so that every
// field the gateway sends is checked against a decoder that real programs use.
//
// They are left out of -race builds: scmhub/ibapi v0.10.47 races with itself
// whenever a session ends (Disconnect's reset() rewrites c.conn, c.ctx and
// c.watchOnce while its watcher goroutine and Connect's sync.Once still use
// them), so the race detector fails any test that ends an scmhub session. The
// same wire is checked under -race by the raw-client tests in gateway_test.go;
// run `go test ./fakes/` without -race to include these.
//
// A second scmhub quirk shapes connectScmhub: its requester and watcher
// goroutines read c.ctx when they first run, so a session that ends before
// they are scheduled leaves them waiting forever on the fresh context reset()
// installs. connectScmhub therefore waits for NEXT_VALID_ID before returning.

package fakes_test

import (
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

type ibError struct {
	ReqID, Code int64
	Msg, JSON   string
}

// ibContract holds the contract fields POSITION_DATA carries, as scmhub decoded them.
type ibContract struct {
	ConID                                                            int64
	Symbol, SecType, Expiry                                          string
	Strike                                                           float64
	Right, Multiplier, Exchange, Currency, LocalSymbol, TradingClass string
}

type ibPosition struct {
	Account  string
	Contract ibContract
	Position string // Decimal.String()
	AvgCost  float64
}

type ibSummaryRow struct {
	ReqID                         int64
	Account, Tag, Value, Currency string
}

// recorder is an EWrapper that records what the client decoded. Callbacks run
// on scmhub's decoder goroutine; tests read through the channels and mutex.
type recorder struct {
	ibapi.Wrapper

	mu        sync.Mutex
	firstID   int64
	accounts  []string
	positions []ibPosition
	summary   []ibSummaryRow

	managed    chan struct{}
	nextID     chan int64
	positionsE chan struct{}
	summaryE   chan int64
	times      chan int64
	errs       chan ibError
	closed     chan struct{}
}

func newRecorder() *recorder {
	return &recorder{
		managed: make(chan struct{}, 16), nextID: make(chan int64, 16), positionsE: make(chan struct{}, 16),
		summaryE: make(chan int64, 16), times: make(chan int64, 16), errs: make(chan ibError, 64),
		closed: make(chan struct{}, 4),
	}
}

func put[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default: // never block the decoder
	}
}

func (r *recorder) ManagedAccounts(accts []string) {
	r.mu.Lock()
	r.accounts = accts
	r.mu.Unlock()
	put(r.managed, struct{}{})
}
func (r *recorder) NextValidID(id int64) { put(r.nextID, id) }
func (r *recorder) Position(account string, c *ibapi.Contract, pos ibapi.Decimal, avgCost float64) {
	r.mu.Lock()
	k := ibContract{c.ConID, c.Symbol, c.SecType, c.LastTradeDateOrContractMonth, c.Strike, c.Right, c.Multiplier,
		c.Exchange, c.Currency, c.LocalSymbol, c.TradingClass}
	r.positions = append(r.positions, ibPosition{Account: account, Contract: k, Position: pos.String(), AvgCost: avgCost})
	r.mu.Unlock()
}
func (r *recorder) PositionEnd() { put(r.positionsE, struct{}{}) }
func (r *recorder) AccountSummary(reqID int64, account, tag, value, currency string) {
	r.mu.Lock()
	r.summary = append(r.summary, ibSummaryRow{reqID, account, tag, value, currency})
	r.mu.Unlock()
}
func (r *recorder) AccountSummaryEnd(reqID int64) { put(r.summaryE, reqID) }
func (r *recorder) CurrentTime(t int64)           { put(r.times, t) }
func (r *recorder) Error(reqID, _ int64, code int64, msg, json string) {
	put(r.errs, ibError{ReqID: reqID, Code: code, Msg: msg, JSON: json})
}
func (r *recorder) ConnectionClosed() { put(r.closed, struct{}{}) }

func recv[T any](t *testing.T, ch chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangLimit):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// nextError returns the next error callback whose code is not a farm notice.
func nextError(t *testing.T, r *recorder) ibError {
	t.Helper()
	for {
		e := recv(t, r.errs, "error callback")
		if e.Code != fakes.CodeMarketDataFarmOK && e.Code != fakes.CodeHistDataFarmOK && e.Code != fakes.CodeSecDefDataFarmOK {
			return e
		}
	}
}

// connectScmhub connects a real client, waits until the session is running
// (NEXT_VALID_ID received, recorded as r.firstID) and disconnects it at cleanup.
func connectScmhub(t *testing.T, g *fakes.Gateway, clientID int64) (*ibapi.EClient, *recorder) {
	t.Helper()
	c, r := dialScmhub(t, g, clientID)
	id := recv(t, r.nextID, "NextValidID")
	r.mu.Lock()
	r.firstID = id
	r.mu.Unlock()
	return c, r
}

// dialScmhub connects a real client without waiting for the session to run.
func dialScmhub(t *testing.T, g *fakes.Gateway, clientID int64) (*ibapi.EClient, *recorder) {
	t.Helper()
	r := newRecorder()
	c := ibapi.NewEClient(r)
	if err := c.Connect(g.Host(), g.Port(), clientID); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect() })
	return c, r
}

// serverVersions is the matrix the scmhub tests run at: ib_async's newest
// (178), the newest text version (193), raw ids (201), protobuf accounts and
// positions (207), protobuf START_API/REQ_IDS/REQ_CURRENT_TIME (213) and the
// default, the newest scmhub speaks.
var serverVersions = []int{178, fakes.TextServerVersion, fakes.VersionRawIDs, fakes.VersionProtobufAccounts,
	fakes.VersionProtobufRest3, fakes.DefaultServerVersion}

// TestScmhubSession runs a whole session of the real client at each version of
// the matrix: every answer decodes to the scripted data, and every request
// reaches the gateway in the form scmhub chose at that version (text or
// protobuf, per scmhub's own PROTOBUF_MSG_IDS table).
func TestScmhubSession(t *testing.T) {
	for _, v := range serverVersions {
		t.Run(strconv.Itoa(v), func(t *testing.T) { testScmhubSession(t, v) })
	}
}

func testScmhubSession(t *testing.T, v int) {
	s := fakes.DefaultScript()
	var opts []fakes.Option
	if v != fakes.DefaultServerVersion {
		opts = append(opts, fakes.WithMaxServerVersion(v))
	}
	g := startGateway(t, s, opts...)
	c, r := connectScmhub(t, g, 1)
	if !c.IsConnected() || int(c.ServerVersion()) != v {
		t.Fatalf("connected %v at version %d, want %d", c.IsConnected(), c.ServerVersion(), v)
	}
	recv(t, r.managed, "ManagedAccounts")
	r.mu.Lock()
	accounts, firstID := r.accounts, r.firstID
	r.mu.Unlock()
	if diff := cmp.Diff(s.Accounts, accounts); diff != "" {
		t.Fatalf("accounts (-want +got):\n%s", diff)
	}
	if firstID != 1 {
		t.Fatalf("NextValidID %d", firstID)
	}
	var farms []ibError
	for range 3 {
		farms = append(farms, recv(t, r.errs, "farm notice"))
	}
	wantFarms := []ibError{{-1, broker.IBCodeMarketDataFarmOK, fakes.NoticeText(2104), ""}, {-1, broker.IBCodeHistDataFarmOK, fakes.NoticeText(2106), ""},
		{-1, broker.IBCodeSecDefDataFarmOK, fakes.NoticeText(2158), ""}}
	if diff := cmp.Diff(wantFarms, farms); diff != "" {
		t.Fatalf("farm notices (-want +got):\n%s", diff)
	}

	c.ReqPositions()
	recv(t, r.positionsE, "PositionEnd")
	var want []ibPosition
	for _, p := range s.Positions {
		k := p.Contract
		want = append(want, ibPosition{Account: p.Account, Contract: ibContract{k.ConID, k.Symbol, k.SecType, k.Expiry,
			k.Strike.Float64(), k.Right, k.Multiplier, k.Exchange, k.Currency, k.LocalSymbol, k.TradingClass},
			Position: p.Quantity.String(), AvgCost: p.AvgCost.Float64()})
	}
	r.mu.Lock()
	got := r.positions
	r.mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("positions (-want +got):\n%s", diff)
	}
	// The decimals survive exactly, fractional and negative ones included.
	for i, p := range got {
		q, err := broker.ParseDecimal(p.Position)
		if err != nil || !q.Equal(s.Positions[i].Quantity) {
			t.Errorf("position %d quantity %q, want %s", i, p.Position, s.Positions[i].Quantity)
		}
	}

	c.ReqAccountSummary(9, "All", "NetLiquidation,TotalCashValue,AccountType")
	if id := recv(t, r.summaryE, "AccountSummaryEnd"); id != 9 {
		t.Fatalf("AccountSummaryEnd(%d)", id)
	}
	var wantRows []ibSummaryRow
	for _, a := range s.Summary {
		for _, tag := range []string{"NetLiquidation", "TotalCashValue", "AccountType"} {
			v := a.Values[tag]
			wantRows = append(wantRows, ibSummaryRow{9, a.Account, tag, v.Value, v.Currency})
		}
	}
	r.mu.Lock()
	rows := r.summary
	r.mu.Unlock()
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Fatalf("account summary (-want +got):\n%s", diff)
	}

	before := time.Now().Unix()
	c.ReqCurrentTime()
	if ts := recv(t, r.times, "CurrentTime"); ts < before || ts > time.Now().Unix() {
		t.Fatalf("CurrentTime %d, want now (%d)", ts, before)
	}
	c.ReqIDs(1)
	if id := recv(t, r.nextID, "NextValidID"); id != 1 {
		t.Fatalf("NextValidID %d", id)
	}
	c.ReqManagedAccts()
	recv(t, r.managed, "ManagedAccounts again")

	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
	recv(t, r.closed, "ConnectionClosed")
	waitClosedRecord(t, g)
	type seen struct {
		ID       int
		Protobuf bool
	}
	var got2, want2 []seen
	for _, req := range lastConn(t, g).Requests {
		got2 = append(got2, seen{req.ID, req.Protobuf})
	}
	for _, id := range []int{71, 61, 62, 49, 8, 17} {
		since, ok := ibapi.PROTOBUF_MSG_IDS[ibapi.OUT(id)]
		want2 = append(want2, seen{id, ok && int(since) <= v})
	}
	if diff := cmp.Diff(want2, got2); diff != "" {
		t.Fatalf("requests seen by the gateway (-want +got):\n%s", diff)
	}
	if rs := lastConn(t, g).Requests; rs[2].Fields[2] != "9" || rs[2].Fields[4] != "NetLiquidation,TotalCashValue,AccountType" {
		t.Fatalf("REQ_ACCOUNT_SUMMARY recorded as %q", rs[2].Fields)
	}
}

func TestScmhubDuplicateClientID(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	connectScmhub(t, g, 5)
	c2, r2 := dialScmhub(t, g, 5) // scmhub's Connect succeeds; the refusal comes after
	e := nextError(t, r2)
	want := ibError{-1, broker.IBCodeClientIDInUse, "Unable to connect as the client id is already in use. Retry with a unique client id.", ""}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Fatalf("error (-want +got):\n%s", diff)
	}
	recv(t, r2.closed, "ConnectionClosed after 326")
	waitFor(t, "second client disconnected", func() bool { return !c2.IsConnected() })
	if diff := cmp.Diff([]int64{5}, g.LiveClientIDs()); diff != "" {
		t.Fatal(diff)
	}
}

func TestScmhubNotices(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.Notices = []fakes.TimedNotice{{After: 10 * time.Millisecond, Code: broker.IBCodeConnectivityLost}, {After: 30 * time.Millisecond, Code: broker.IBCodeRestoredDataMaintained}}
	g := startGateway(t, s)
	c, r := connectScmhub(t, g, 1)
	for _, code := range []int64{1100, 1102} {
		if e := nextError(t, r); e.Code != code || e.ReqID != -1 || e.Msg != fakes.NoticeText(code) {
			t.Fatalf("notice %+v, want %d", e, code)
		}
	}
	if n := g.Notify(broker.IBCodeRestoredDataLost, ""); n != 1 {
		t.Fatalf("Notify reached %d", n)
	}
	if e := nextError(t, r); e.Code != broker.IBCodeRestoredDataLost || e.Msg != fakes.NoticeText(1101) {
		t.Fatalf("notice %+v, want 1101", e)
	}
	if !c.IsConnected() {
		t.Fatal("notices ended the session")
	}
}

func TestScmhubGatewayDrop(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	c, r := connectScmhub(t, g, 1)
	if n := g.DropConnections(); n != 1 {
		t.Fatalf("DropConnections = %d", n)
	}
	recv(t, r.closed, "ConnectionClosed after drop")
	waitFor(t, "client disconnected", func() bool { return !c.IsConnected() })
	connectScmhub(t, g, 1) // a new session with the same id is accepted
}

func TestScmhubMalformedEndsSession(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.MalformedAfterRequests = 1
	// A CURRENT_TIME missing its time field: scmhub panics in its decoder and
	// ends the session, without the stdout print a non-integer would cause.
	s.Faults.MalformedFields = []string{"49", "1"}
	g := startGateway(t, s)
	c, r := connectScmhub(t, g, 1)
	c.ReqCurrentTime()
	recv(t, r.closed, "ConnectionClosed after a malformed message")
	waitFor(t, "client disconnected", func() bool { return !c.IsConnected() })
}

func TestScmhubCloseAfterMessages(t *testing.T) {
	s := fakes.DefaultScript()
	// Version reply, the five unprompted messages, and the first answer.
	s.Faults.CloseAfterMessages = 7
	g := startGateway(t, s)
	c, r := connectScmhub(t, g, 1)
	c.ReqCurrentTime() // its answer may be lost: scmhub drops messages that race with EOF
	recv(t, r.closed, "ConnectionClosed")
	waitFor(t, "client disconnected", func() bool { return !c.IsConnected() })
}

// scmhub's Connect returns nil without a session when the gateway closes
// during the handshake; the adapter must check IsConnected.
func TestScmhubCloseBeforeHandshake(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.CloseBeforeHandshake = true
	g := startGateway(t, s)
	func() {
		c := ibapi.NewEClient(newRecorder())
		if err := c.Connect(g.Host(), g.Port(), 1); err != nil {
			t.Logf("Connect returned %v", err)
		}
		if c.IsConnected() {
			t.Fatal("IsConnected after the gateway closed during the handshake")
		}
	}()
	runtime.GC() // scmhub keeps its half-open socket; let the finalizer close it
	waitClosedRecord(t, g)
}

// scmhub's Connect blocks forever on a stalled handshake; closing the gateway
// must release it.
func TestScmhubStalledHandshakeReleasedByClose(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.StallHandshake = true
	g := startGateway(t, s)
	done := make(chan bool, 1)
	go func() {
		c := ibapi.NewEClient(newRecorder())
		_ = c.Connect(g.Host(), g.Port(), 1)
		done <- c.IsConnected()
	}()
	waitFor(t, "handshake read", func() bool {
		cs := g.Connections()
		return len(cs) == 1 && cs[0].ClientVersionMax == 225
	})
	select {
	case <-done:
		t.Fatal("Connect returned while the handshake is stalled")
	default:
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case connected := <-done:
		if connected {
			t.Fatal("connected after a stalled handshake")
		}
	case <-time.After(hangLimit):
		t.Fatal("Connect still blocked after Close")
	}
	runtime.GC()
}

func TestScmhubHalfOpen(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.HalfOpenAfterRequests = 1
	g := startGateway(t, s)
	c, r := connectScmhub(t, g, 1)
	c.ReqCurrentTime()
	recv(t, r.times, "first CurrentTime")
	c.ReqCurrentTime()
	waitFor(t, "second request recorded", func() bool { return len(lastConn(t, g).Requests) == 3 })
	select {
	case ts := <-r.times:
		t.Fatalf("half-open gateway answered: %d", ts)
	case <-time.After(100 * time.Millisecond):
	}
	if !c.IsConnected() {
		t.Fatal("half-open gateway ended the session")
	}
}
