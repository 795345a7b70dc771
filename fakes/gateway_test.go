package fakes_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

func TestAddrHostPort(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript(), fakes.WithAddr("127.0.0.1:0"))
	if g.Host() != "127.0.0.1" || g.Port() <= 0 || g.Addr() != net.JoinHostPort(g.Host(), strconv.Itoa(g.Port())) {
		t.Fatalf("Addr %q, Host %q, Port %d", g.Addr(), g.Host(), g.Port())
	}
}

func TestNewGatewayErrors(t *testing.T) {
	if _, err := fakes.NewGateway(fakes.Script{ServerVersion: 226}); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("version 226: %v, want ErrInvalidArgument", err)
	}
	for _, v := range []int{99, 226, -1} {
		if _, err := fakes.NewGateway(fakes.Script{}, fakes.WithMaxServerVersion(v)); !errors.Is(err, broker.ErrInvalidArgument) {
			t.Errorf("WithMaxServerVersion(%d): %v, want ErrInvalidArgument", v, err)
		}
	}
	if _, err := fakes.NewGateway(fakes.Script{}, fakes.WithAddr("127.0.0.1:notaport")); err == nil {
		t.Error("bad address: no error")
	}
	g := startGateway(t, fakes.Script{})
	if _, err := fakes.NewGateway(fakes.Script{}, fakes.WithAddr(g.Addr())); err == nil {
		t.Error("address in use: no error")
	}
}

func TestHandshakeAndUnpromptedMessages(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	c := dialRaw(t, g)
	before := time.Now().Truncate(time.Second)
	reply := c.hello(fakes.Handshake{MinVersion: 100, MaxVersion: 193, Options: "+PACEAPI"})
	if len(reply) != 2 || reply[0] != "193" {
		t.Fatalf("handshake reply %q, want [193 time]", reply)
	}
	at, err := time.Parse("20060102 15:04:05 MST", reply[1])
	if err != nil {
		t.Fatalf("connection time %q: %v", reply[1], err)
	}
	if at.Before(before.Add(-24*time.Hour)) || at.After(time.Now().Add(24*time.Hour)) {
		t.Fatalf("connection time %v is not about now", at)
	}
	c.send("71", "2", "42", "")
	c.expect("15", "1", "DU1234567,DU7654321")
	c.expect("9", "1", "1")
	c.expect("4", "2", "-1", "2104", "Market data farm connection is OK:usfarm", "")
	c.expect("4", "2", "-1", "2106", "HMDS data farm connection is OK:ushmds", "")
	c.expect("4", "2", "-1", "2158", "Sec-def data farm connection is OK:secdefnj", "")

	if err := g.WaitConnections(ctxLimit(t), 1); err != nil {
		t.Fatal(err)
	}
	rec := lastConn(t, g)
	want := fakes.ConnRecord{
		Remote: c.nc.LocalAddr().String(), ClientVersionMin: 100, ClientVersionMax: 193, ConnectOptions: "+PACEAPI",
		ClientID: 42, ServerVersion: 193, APIStarted: true,
		Requests: []fakes.Request{{ID: 71, Fields: []string{"71", "2", "42", ""}}},
	}
	if diff := cmp.Diff(want, rec, cmpopts.IgnoreFields(fakes.Request{}, "At")); diff != "" {
		t.Fatalf("record (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{42}, g.LiveClientIDs()); diff != "" {
		t.Fatalf("LiveClientIDs (-want +got):\n%s", diff)
	}
}

func TestVersionNegotiation(t *testing.T) {
	cases := []struct {
		name     string
		script   int
		client   fakes.Handshake
		want     int    // 0: refused
		refusal  string // expected Refused
		clientID string
	}{
		{"scmhub range", 0, fakes.Handshake{MinVersion: 100, MaxVersion: 225}, 225, "", "1"},
		{"stoqey range", 0, fakes.Handshake{MinVersion: 100, MaxVersion: 193}, 193, "", "1"},
		{"ib_async range", 0, fakes.Handshake{MinVersion: 157, MaxVersion: 178}, 178, "", "1"},
		{"older client", 0, fakes.Handshake{MinVersion: 100, MaxVersion: 150}, 150, "", "1"},
		{"single version", 0, fakes.Handshake{MinVersion: 176, MaxVersion: 176}, 176, "", "1"},
		{"older script", 170, fakes.Handshake{MinVersion: 100, MaxVersion: 225}, 170, "", "1"},
		{"protobuf script", 207, fakes.Handshake{MinVersion: 100, MaxVersion: 225}, 207, "", "1"},
		{"client too new", 193, fakes.Handshake{MinVersion: 194, MaxVersion: 225}, 0, "version range excludes 193", ""},
		{"client too old", 0, fakes.Handshake{MinVersion: 38, MaxVersion: 99}, 0, "version range excludes 225", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, fakes.Script{ServerVersion: tc.script})
			c := dialRaw(t, g)
			c.write(fakes.EncodeHandshake(tc.client))
			if tc.want == 0 {
				c.expectClosed()
				if rec := waitClosedRecord(t, g); rec.Refused != tc.refusal || rec.ServerVersion != 0 {
					t.Fatalf("record %+v, want Refused %q", rec, tc.refusal)
				}
				return
			}
			if got := c.read(); got[0] != strconv.Itoa(tc.want) {
				t.Fatalf("server version %q, want %d", got[0], tc.want)
			}
			if rec := lastConn(t, g); rec.ServerVersion != tc.want {
				t.Fatalf("recorded server version %d, want %d", rec.ServerVersion, tc.want)
			}
		})
	}
}

// ERR_MSG changes shape with the version: no JSON field before 166, no version
// field and a trailing time from 194.
func TestErrorLayoutByVersion(t *testing.T) {
	cases := []struct {
		script, clientMax int
		check             func(t *testing.T, f []string)
	}{
		{193, 225, func(t *testing.T, f []string) {
			if diff := cmp.Diff([]string{"4", "2", "-1", "2104", fakes.NoticeText(2104), ""}, f); diff != "" {
				t.Error(diff)
			}
		}},
		{193, 160, func(t *testing.T, f []string) {
			if diff := cmp.Diff([]string{"4", "2", "-1", "2104", fakes.NoticeText(2104)}, f); diff != "" {
				t.Error(diff)
			}
		}},
		{200, 225, func(t *testing.T, f []string) {
			if len(f) != 6 {
				t.Fatalf("fields %q, want 6", f)
			}
			if diff := cmp.Diff([]string{"4", "-1", "2104", fakes.NoticeText(2104), ""}, f[:5]); diff != "" {
				t.Error(diff)
			}
			ms, err := strconv.ParseInt(f[5], 10, 64)
			if err != nil || ms <= 0 {
				t.Errorf("error time %q is not positive milliseconds", f[5])
			}
		}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d_%d", tc.script, tc.clientMax), func(t *testing.T) {
			g := startGateway(t, fakes.Script{ServerVersion: tc.script})
			c := dialRaw(t, g)
			c.hello(fakes.Handshake{MinVersion: 100, MaxVersion: tc.clientMax})
			c.send("71", "2", "0", "")
			c.read() // MANAGED_ACCTS
			c.read() // NEXT_VALID_ID
			tc.check(t, c.read())
		})
	}
}

// The hex example of POSITION_DATA in the protocol notes, byte for byte.
func TestPositionDataBytes(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	c := connectRaw(t, g, 1)
	c.send("61", "1")
	want := unhex(t, `00 00 00 43 36 31 00 33 00 44 55 31 32 33 34 35 36 37 00 32 36 35 35 39 38 00 41 41 50 4c 00
		53 54 4b 00 00 30 00 00 00 4e 41 53 44 41 51 00 55 53 44 00 41 41 50 4c 00 4e 4d 53 00
		31 30 30 00 31 35 30 2e 32 35 00`)
	got := make([]byte, len(want))
	_ = c.nc.SetReadDeadline(time.Now().Add(hangLimit))
	if _, err := io.ReadFull(c.br, got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("POSITION_DATA\n got % x\nwant % x", got, want)
	}
}

func TestPositions(t *testing.T) {
	s := fakes.DefaultScript()
	g := startGateway(t, s)
	c := connectRaw(t, g, 1)
	c.send("61", "1")
	for _, p := range s.Positions {
		k := p.Contract
		c.expect("61", "3", p.Account, strconv.FormatInt(k.ConID, 10), k.Symbol, k.SecType, k.Expiry,
			k.Strike.String(), k.Right, k.Multiplier, k.Exchange, k.Currency, k.LocalSymbol, k.TradingClass,
			p.Quantity.String(), p.AvgCost.String())
	}
	c.expect("62", "1")
	c.send("64", "1") // CANCEL_POSITIONS: no answer
	c.send("49", "1")
	if f := c.read(); f[0] != "49" {
		t.Fatalf("after CANCEL_POSITIONS got %q, want CURRENT_TIME only", f)
	}
}

func TestPositionsDecimalsExact(t *testing.T) {
	s := fakes.Script{Accounts: []string{"DU1"}, Positions: []broker.Position{
		{Account: "DU1", Contract: broker.Contract{ConID: 1, Symbol: "X", SecType: "STK"},
			Quantity: broker.MustDecimal("0.0000001"), AvgCost: broker.MustDecimal("123456789012345678.123456789")},
		{Account: "DU1", Contract: broker.Contract{ConID: 2, Symbol: "Y", SecType: "OPT", Strike: broker.MustDecimal("72.5"), Right: "P"},
			Quantity: broker.MustDecimal("-3"), AvgCost: broker.MustDecimal("0")},
	}}
	g := startGateway(t, s)
	c := connectRaw(t, g, 1)
	c.send("61", "1")
	if f := c.read(); f[7] != "0" || f[14] != "0.0000001" || f[15] != "123456789012345678.123456789" {
		t.Fatalf("strike/quantity/avgCost %q %q %q", f[7], f[14], f[15])
	}
	if f := c.read(); f[7] != "72.5" || f[14] != "-3" || f[15] != "0" {
		t.Fatalf("strike/quantity/avgCost %q %q %q", f[7], f[14], f[15])
	}
	c.expect("62", "1")
}

func TestAccountSummaryTags(t *testing.T) {
	s := fakes.DefaultScript()
	g := startGateway(t, s)
	c := connectRaw(t, g, 1)
	row := func(reqID string, acct, tag string) []string {
		for _, a := range s.Summary {
			if a.Account == acct {
				v := a.Values[tag]
				return []string{"63", "1", reqID, acct, tag, v.Value, v.Currency}
			}
		}
		t.Fatalf("no account %s", acct)
		return nil
	}
	// Requested order, each tag once, unknown tags skipped, every account.
	c.send("62", "1", "7", "All", "NetLiquidation,AccountType,NoSuchTag,NetLiquidation")
	for _, a := range s.Accounts {
		if diff := cmp.Diff(row("7", a, "NetLiquidation"), c.read()); diff != "" {
			t.Fatal(diff)
		}
		if diff := cmp.Diff(row("7", a, "AccountType"), c.read()); diff != "" {
			t.Fatal(diff)
		}
	}
	c.expect("64", "1", "7")

	// "$LEDGER:ALL" stands for every tag, sorted.
	c.send("62", "1", "8", "All", "$LEDGER:ALL")
	for _, a := range s.Summary {
		tags := slices.Sorted(func(yield func(string) bool) {
			for k := range a.Values {
				if !yield(k) {
					return
				}
			}
		})
		for _, tag := range tags {
			if diff := cmp.Diff(row("8", a.Account, tag), c.read()); diff != "" {
				t.Fatal(diff)
			}
		}
	}
	c.expect("64", "1", "8")

	c.send("62", "1", "9", "All", "NoSuchTag")
	c.expect("64", "1", "9")
	c.send("63", "1", "9") // CANCEL_ACCOUNT_SUMMARY: no answer
	c.send("62", "1", "10", "All", "")
	c.expect("64", "1", "10")
}

func TestSimpleRequests(t *testing.T) {
	s := fakes.DefaultScript()
	s.NextValidID = 1000
	g := startGateway(t, s)
	c := connectRaw(t, g, 3)
	before := time.Now().Unix()
	c.send("49", "1")
	f := c.read()
	sec, err := strconv.ParseInt(f[2], 10, 64)
	if f[0] != "49" || f[1] != "1" || err != nil || sec < before || sec > time.Now().Unix() {
		t.Fatalf("CURRENT_TIME %q: want now", f)
	}
	c.send("8", "1", "1")
	c.expect("9", "1", "1000")
	c.send("17", "1")
	c.expect("15", "1", "DU1234567,DU7654321")

	// REQ_MARKET_DATA_TYPE and CANCEL_MKT_DATA have no answer, as in real
	// TWS; a message the fake cannot serve gets error 321, never silence.
	c.send("59", "1", "3")
	c.send("2", "2", "5")
	c.send("not-a-number")
	if f := c.read(); f[0] != "4" || f[2] != "-1" || f[3] != "321" || !strings.Contains(f[4], "not-a-number") {
		t.Fatalf("got %q, want ERR_MSG 321 for the unknown message and nothing before it", f)
	}
	c.send("49", "1")
	if f := c.read(); f[0] != "49" {
		t.Fatalf("got %q, want CURRENT_TIME", f)
	}
	waitFor(t, "requests recorded", func() bool { return len(lastConn(t, g).Requests) == 8 })
	var ids []int
	for _, r := range lastConn(t, g).Requests {
		ids = append(ids, r.ID)
	}
	if diff := cmp.Diff([]int{71, 49, 8, 17, 59, 2, -1, 49}, ids); diff != "" {
		t.Fatalf("request ids (-want +got):\n%s", diff)
	}
}

func TestRefusals(t *testing.T) {
	t.Run("no API prefix", func(t *testing.T) {
		g := startGateway(t, fakes.DefaultScript())
		c := dialRaw(t, g)
		c.send("49", "1") // what scmhub's write-retry sends on a re-dialed socket
		c.expectClosed()
		if rec := waitClosedRecord(t, g); rec.Refused != "no API prefix" {
			t.Fatalf("Refused %q", rec.Refused)
		}
	})
	t.Run("bad version string", func(t *testing.T) {
		g := startGateway(t, fakes.DefaultScript())
		c := dialRaw(t, g)
		c.write([]byte("API\x00\x00\x00\x00\x03abc"))
		c.expectClosed()
		if rec := waitClosedRecord(t, g); !strings.HasPrefix(rec.Refused, "bad handshake") {
			t.Fatalf("Refused %q", rec.Refused)
		}
	})
	t.Run("no START_API", func(t *testing.T) {
		g := startGateway(t, fakes.DefaultScript())
		c := dialRaw(t, g)
		c.hello(textRange)
		c.send("49", "1")
		c.expectClosed()
		if rec := waitClosedRecord(t, g); rec.Refused != "expected START_API, got message 49" || rec.APIStarted {
			t.Fatalf("record %+v", rec)
		}
	})
	t.Run("bad client id", func(t *testing.T) {
		g := startGateway(t, fakes.DefaultScript())
		c := dialRaw(t, g)
		c.hello(textRange)
		c.send("71", "2", "x1", "")
		c.expectClosed()
		if rec := waitClosedRecord(t, g); !strings.HasPrefix(rec.Refused, "bad START_API") {
			t.Fatalf("Refused %q", rec.Refused)
		}
	})
	t.Run("empty client id is 0", func(t *testing.T) {
		g := startGateway(t, fakes.DefaultScript())
		c := dialRaw(t, g)
		c.hello(fakes.Handshake{MinVersion: 100, MaxVersion: 193})
		c.send("71", "2", "", "")
		c.expect("15", "1", "DU1234567,DU7654321")
		if diff := cmp.Diff([]int64{0}, g.LiveClientIDs()); diff != "" {
			t.Fatal(diff)
		}
	})
}

func TestDuplicateClientID(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	first := connectRaw(t, g, 7)
	second := dialRaw(t, g)
	second.hello(textRange)
	second.send("71", "2", "7", "")
	second.expect("4", "2", "-1", "326", "Unable to connect as the client id is already in use. Retry with a unique client id.", "")
	second.expectClosed()
	rec := waitClosedRecord(t, g)
	if rec.Refused != "client id in use" || rec.APIStarted || rec.ClientID != 7 {
		t.Fatalf("record %+v", rec)
	}
	if diff := cmp.Diff([]int64{7}, g.LiveClientIDs()); diff != "" {
		t.Fatal(diff)
	}
	// Once the first session ends, the id is free again.
	_ = first.nc.Close()
	waitFor(t, "first session closed", func() bool { return len(g.LiveClientIDs()) == 0 })
	connectRaw(t, g, 7)
	if diff := cmp.Diff([]int64{7}, g.LiveClientIDs()); diff != "" {
		t.Fatal(diff)
	}
}

// lockedBuffer is an io.Writer safe for the gateway's goroutines and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestFrameTooLargeClosesOnlyThatConnection(t *testing.T) {
	var logs lockedBuffer
	g := startGateway(t, fakes.DefaultScript(),
		fakes.WithLogger(hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})))
	other := connectRaw(t, g, 1)
	c := connectRaw(t, g, 2)
	c.write([]byte{0x01, 0x00, 0x00, 0x00})
	c.expectClosed()
	rec := waitClosedRecord(t, g)
	if !strings.Contains(rec.Error, "exceeds") {
		t.Fatalf("record error %q, want frame too large", rec.Error)
	}
	if l := logs.String(); !strings.Contains(l, "[ERROR] fakegw: protocol error; closing connection") {
		t.Fatalf("no error logged for the oversized frame; logs:\n%s", l)
	}
	other.send("49", "1")
	if f := other.read(); f[0] != "49" {
		t.Fatalf("other session got %q", f)
	}
	connectRaw(t, g, 3) // and new clients are still served
}

func TestFaultStallHandshake(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.StallHandshake = true
	g := startGateway(t, s) // Close is idempotent: closed again at cleanup
	c := dialRaw(t, g)
	c.write(fakes.EncodeHandshake(textRange))
	c.expectSilence(200 * time.Millisecond)
	waitFor(t, "handshake recorded", func() bool { return lastConn(t, g).ClientVersionMax == fakes.TextServerVersion })
	if rec := lastConn(t, g); rec.Closed || rec.ServerVersion != 0 {
		t.Fatalf("record %+v, want open and unanswered", rec)
	}
	closed := make(chan error, 1)
	go func() { closed <- g.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hangLimit):
		t.Fatal("Close did not return with a stalled handshake pending")
	}
	c.expectClosed()
}

func TestFaultCloseBeforeHandshake(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.CloseBeforeHandshake = true
	g := startGateway(t, s)
	c := dialRaw(t, g)
	c.write(fakes.EncodeHandshake(textRange))
	c.expectClosed()
	rec := waitClosedRecord(t, g)
	if rec.ClientVersionMax != fakes.TextServerVersion || rec.ServerVersion != 0 || rec.Refused != "" {
		t.Fatalf("record %+v", rec)
	}
}

func TestFaultCloseAfterMessages(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.CloseAfterMessages = 3 // version reply, MANAGED_ACCTS, NEXT_VALID_ID
	g := startGateway(t, s)
	c := dialRaw(t, g)
	c.hello(textRange)
	c.send("71", "2", "1", "")
	c.expect("15", "1", "DU1234567,DU7654321")
	c.expect("9", "1", "1")
	c.expectClosed()
	waitClosedRecord(t, g)
}

func TestFaultReplyDelay(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.ReplyDelay = 50 * time.Millisecond
	g := startGateway(t, s)
	c := connectRaw(t, g, 1) // unprompted messages are not delayed... (no bound asserted)
	start := time.Now()
	c.send("49", "1")
	if f := c.read(); f[0] != "49" {
		t.Fatalf("got %q", f)
	}
	if el := time.Since(start); el < s.Faults.ReplyDelay {
		t.Fatalf("reply after %v, want at least %v", el, s.Faults.ReplyDelay)
	}
}

func TestFaultMalformed(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.MalformedAfterRequests = 2
	g := startGateway(t, s)
	c := connectRaw(t, g, 1)
	c.send("49", "1")
	if f := c.read(); f[0] != "49" || f[2] == "not-an-int" {
		t.Fatalf("request 1: %q", f)
	}
	c.send("49", "1")
	c.expect("49", "1", "not-an-int")
	c.send("49", "1") // back to normal
	if f := c.read(); f[2] == "not-an-int" {
		t.Fatalf("request 3: %q", f)
	}

	cases := []struct {
		name    string
		request []string
		want    []string
	}{
		{"positions: conId", []string{"61", "1"}, func() []string {
			f := []string{"61", "3", "DU1234567", "not-an-int", "AAPL", "STK", "", "0", "", "", "NASDAQ", "USD", "AAPL", "NMS", "100", "150.25"}
			return f
		}()},
		{"account summary: reqId", []string{"62", "1", "5", "All", "AccountType"},
			[]string{"63", "1", "not-an-int", "DU1234567", "AccountType", "INDIVIDUAL", ""}},
		{"ids", []string{"8", "1", "1"}, []string{"9", "1", "not-an-int"}},
		{"managed accounts: fallback", []string{"17", "1"}, []string{"49", "1", "not-an-int"}},
		{"cancel: fallback", []string{"64", "1"}, []string{"49", "1", "not-an-int"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := fakes.DefaultScript()
			s.Faults.MalformedAfterRequests = 1
			g := startGateway(t, s)
			c := connectRaw(t, g, 1)
			c.send(tc.request...)
			c.expect(tc.want...)
		})
	}
	t.Run("custom fields", func(t *testing.T) {
		s := fakes.DefaultScript()
		s.Faults.MalformedAfterRequests = 1
		s.Faults.MalformedFields = []string{"49", "1"}
		g := startGateway(t, s)
		c := connectRaw(t, g, 1)
		c.send("61", "1")
		c.expect("49", "1")
	})
}

func TestFaultHalfOpen(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.HalfOpenAfterRequests = 1
	g := startGateway(t, s)
	c := connectRaw(t, g, 1)
	c.send("49", "1")
	if f := c.read(); f[0] != "49" {
		t.Fatalf("request 1: %q", f)
	}
	c.send("49", "1")
	c.send("17", "1")
	if n := g.Notify(broker.IBCodeConnectivityLost, ""); n != 0 {
		t.Fatalf("Notify reached %d connections, want 0 (half-open)", n)
	}
	if n := g.SendRaw("49", "1", "0"); n != 0 {
		t.Fatalf("SendRaw reached %d connections, want 0 (half-open)", n)
	}
	c.expectSilence(200 * time.Millisecond)
	waitFor(t, "unanswered requests recorded", func() bool { return len(lastConn(t, g).Requests) == 4 })
	if rec := lastConn(t, g); rec.Closed {
		t.Fatal("half-open connection recorded as closed")
	}
	if diff := cmp.Diff([]int64{1}, g.LiveClientIDs()); diff != "" {
		t.Fatalf("half-open session is still live (-want +got):\n%s", diff)
	}
}

func TestFaultTimedNotices(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.Notices = []fakes.TimedNotice{
		{After: 40 * time.Millisecond, Code: broker.IBCodeRestoredDataMaintained},
		{After: 10 * time.Millisecond, Code: broker.IBCodeConnectivityLost, Message: "lost!"},
	}
	g := startGateway(t, s)
	c := connectRaw(t, g, 1)
	c.expect("4", "2", "-1", "1100", "lost!", "")
	c.expect("4", "2", "-1", "1102", fakes.NoticeText(1102), "")
}

func TestFaultRefuseClientIDs(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.RefuseClientIDs = []int64{9}
	g := startGateway(t, s)
	c := dialRaw(t, g)
	c.hello(textRange)
	c.send("71", "2", "9", "")
	c.expect("4", "2", "-1", "326", fakes.NoticeText(326), "")
	c.expectClosed()
	connectRaw(t, g, 10)
}

func TestNotifyAndSendRaw(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	a := connectRaw(t, g, 1)
	b := connectRaw(t, g, 2)
	pending := dialRaw(t, g) // handshake not done: not an API connection
	pending.write([]byte("API\x00"))
	waitFor(t, "three connections", func() bool { return len(g.Connections()) == 3 })

	if n := g.Notify(broker.IBCodeConnectivityLost, ""); n != 2 {
		t.Fatalf("Notify reached %d, want 2", n)
	}
	if n := g.SendRaw("49", "1", "x"); n != 2 {
		t.Fatalf("SendRaw reached %d, want 2", n)
	}
	if n := g.SendRaw("a\x00b"); n != 0 {
		t.Fatalf("SendRaw of an unframeable field reached %d, want 0", n)
	}
	for _, c := range []*rawClient{a, b} {
		c.expect("4", "2", "-1", "1100", "Connectivity between IB and Trader Workstation has been lost.", "")
		c.expect("49", "1", "x")
	}
}

func TestDropConnections(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	a := connectRaw(t, g, 1)
	b := connectRaw(t, g, 2)
	if n := g.DropConnections(); n != 2 {
		t.Fatalf("DropConnections = %d, want 2", n)
	}
	a.expectClosed()
	b.expectClosed()
	for _, r := range g.Connections() {
		if !r.Closed {
			t.Fatalf("record %+v not closed", r)
		}
	}
	if ids := g.LiveClientIDs(); len(ids) != 0 {
		t.Fatalf("LiveClientIDs %v after drop", ids)
	}
	if n := g.DropConnections(); n != 0 {
		t.Fatalf("second DropConnections = %d, want 0", n)
	}
	connectRaw(t, g, 1) // clients reconnect, same id
	if err := g.WaitConnections(ctxLimit(t), 3); err != nil {
		t.Fatal(err)
	}
}

func TestSetScript(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	c := connectRaw(t, g, 1)
	s := g.Script()
	s.Accounts = []string{"DU999"}
	g.SetScript(s)
	c.send("17", "1")
	c.expect("15", "1", "DU999")

	// Invalid scripts are ignored.
	g.SetScript(fakes.Script{Accounts: []string{"a,b"}})
	c.send("17", "1")
	c.expect("15", "1", "DU999")

	// Script returns a copy.
	got := g.Script()
	got.Accounts[0] = "mutated"
	got.Summary[0].Values["NetLiquidation"] = broker.SummaryValue{Value: "0"}
	if diff := cmp.Diff(s, g.Script()); diff != "" {
		t.Fatalf("Script is not a copy (-want +got):\n%s", diff)
	}

	// Faults and version apply to new connections only.
	s.Faults.CloseBeforeHandshake = true
	g.SetScript(s)
	c.send("49", "1")
	if f := c.read(); f[0] != "49" {
		t.Fatal(f)
	}
	n := dialRaw(t, g)
	n.write(fakes.EncodeHandshake(textRange))
	n.expectClosed()
}

func TestWaitConnections(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := g.WaitConnections(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitConnections with nobody: %v, want DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	go func() { done <- g.WaitConnections(context.Background(), 2) }()
	connectRaw(t, g, 1)
	connectRaw(t, g, 2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() { done <- g.WaitConnections(context.Background(), 3) }()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("WaitConnections across Close: %v, want ErrClosed", err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", g.Addr(), time.Second); err == nil {
		t.Fatal("dial succeeded after Close")
	}
}

// Many clients at once, each with its own id, all served in parallel.
func TestConcurrentClients(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	const n = 16
	clients := make([]*rawClient, n)
	for i := range clients {
		clients[i] = connectRaw(t, g, int64(100+i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, c := range clients {
		wg.Go(func() {
			for range 5 {
				if _, err := c.nc.Write(fakes.EncodeFrame("61", "1")); err != nil {
					errs <- err
					return
				}
				for {
					f, err := c.readWithin(hangLimit)
					if err != nil {
						errs <- err
						return
					}
					if f[0] == "62" {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ids := g.LiveClientIDs()
	slices.Sort(ids)
	if len(ids) != n || ids[0] != 100 || ids[n-1] != 100+n-1 {
		t.Fatalf("LiveClientIDs %v", ids)
	}
}

// FuzzGatewayConn: whatever bytes a client sends, the gateway neither crashes
// nor hangs: it closes the connection once the client stops sending, records
// no internal error, and keeps serving new clients.
func FuzzGatewayConn(f *testing.F) {
	hello := fakes.EncodeHandshake(textRange)
	start := fakes.EncodeFrame("71", "2", "1", "")
	join := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	f.Add([]byte{})
	f.Add([]byte("API\x00"))
	f.Add(hello)
	f.Add(join(hello, start))
	f.Add(join(hello, start, fakes.EncodeFrame("61", "1"), fakes.EncodeFrame("62", "1", "9", "All", "$LEDGER")))
	f.Add(join(hello, start, fakes.EncodeFrame("49", "1"), []byte{0, 0, 0, 0}))
	f.Add(join(hello, start, []byte{0x01, 0, 0, 0}))
	f.Add(join(hello, fakes.EncodeFrame("71")))
	f.Add(join(hello, start, fakes.EncodeFrame("62")))
	f.Add(fakes.EncodeFrame("49", "1"))
	g, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		f.Fatal(err)
	}
	defer g.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		nc, err := net.DialTimeout("tcp", g.Addr(), hangLimit)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(hangLimit))
		_, _ = nc.Write(data)
		_ = nc.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, nc); isTimeout(err) {
			t.Fatalf("gateway did not close the connection after input %q", data)
		}
		for _, r := range g.Connections() {
			if strings.HasPrefix(r.Error, "internal error") {
				t.Fatalf("internal error on input %q: %s", data, r.Error)
			}
		}
	})
}

func BenchmarkCurrentTimeRoundTrip(b *testing.B) {
	g := startGateway(b, fakes.DefaultScript())
	c := connectRaw(b, g, 1)
	req := fakes.EncodeFrame("49", "1")
	b.ReportAllocs()
	for b.Loop() {
		c.write(req)
		c.read()
	}
}

func BenchmarkPositions(b *testing.B) {
	g := startGateway(b, fakes.DefaultScript())
	c := connectRaw(b, g, 1)
	req := fakes.EncodeFrame("61", "1")
	n := len(g.Script().Positions) + 1
	b.ReportAllocs()
	for b.Loop() {
		c.write(req)
		for range n {
			c.read()
		}
	}
}

func BenchmarkConnect(b *testing.B) {
	g := startGateway(b, fakes.DefaultScript())
	b.ReportAllocs()
	for b.Loop() {
		c := connectRaw(b, g, 1)
		_ = c.nc.Close()
		// wait until the id is free again for the next iteration
		for len(g.LiveClientIDs()) != 0 {
			runtime.Gosched()
		}
	}
}

func TestConnectParams(t *testing.T) {
	g := startGateway(t, fakes.Script{})
	p := g.ConnectParams(12)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Addr() != g.Addr() || p.ClientID != 12 {
		t.Fatalf("ConnectParams %+v for %s", p, g.Addr())
	}
}
