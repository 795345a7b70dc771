package fakes_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/fakes"
)

// tapClient is a rawClient that also keeps every byte it received.
type tapClient struct {
	*rawClient
	got bytes.Buffer
}

func dialTap(t *testing.T, addr string) *tapClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, hangLimit)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	c := &tapClient{}
	c.rawClient = &rawClient{t: t, nc: nc, br: bufio.NewReader(io.TeeReader(nc, &c.got))}
	return c
}

// until reads frames until one with message id end, and returns their ids.
func (c *tapClient) until(end string) []string {
	c.t.Helper()
	var ids []string
	for {
		f := c.read()
		ids = append(ids, f[0])
		if f[0] == end {
			return ids
		}
	}
}

// clientSession is a fixed client: a startup sequence on one connection, and
// a refused duplicate client id on a second one. It returns the bytes each
// connection received.
func clientSession(t *testing.T, addr string) (first, dup []byte) {
	t.Helper()
	c := dialTap(t, addr)
	c.hello(fakes.Handshake{MinVersion: 157, MaxVersion: 178})
	c.send("71", "2", "1", "")
	for range 5 {
		c.read()
	}
	c.send("61", "1")
	c.until("62")
	c.send("5", "1")
	c.until("53")
	c.send("99", "0")
	c.until("102")
	c.send("6", "2", "1", "DU1234567")
	c.until("54")
	c.send("7", "3", "7", "0", "", "", "", "", "", "")
	c.until("55")
	c.send("49", "1")
	c.until("49")

	d := dialTap(t, addr)
	d.hello(fakes.Handshake{MinVersion: 157, MaxVersion: 178})
	d.send("71", "2", "1", "")
	if f := d.read(); f[0] != "4" || f[3] != "326" {
		t.Fatalf("duplicate client id: got %q, want error 326", f)
	}
	d.expectClosed()

	c.send("49", "1")
	c.until("49")
	_ = c.nc.Close()
	return c.got.Bytes(), d.got.Bytes()
}

func serverBytes(c fakes.SessionConn) []byte {
	var b []byte
	for _, f := range c.Frames {
		if f.From == fakes.FromServer {
			b = append(b, f.Bytes()...)
		}
	}
	return b
}

func TestRecordReplayRoundTrip(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	rec, err := fakes.NewRecorder(g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rec.Close() })
	first, dup := clientSession(t, rec.Addr())
	waitFor(t, "both recorded connections closed", func() bool {
		s := rec.Session()
		return len(s.Connections) == 2 && s.Connections[0].ClosedBy != "" && s.Connections[1].ClosedBy != ""
	})
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	s := rec.Session()
	if s.Connections[0].ClosedBy != fakes.FromClient || s.Connections[1].ClosedBy != fakes.FromServer {
		t.Fatalf("closed by %q and %q, want client and server", s.Connections[0].ClosedBy, s.Connections[1].ClosedBy)
	}
	// The proxy is transparent and the recording exact: the server frames
	// recorded are the bytes the client received.
	if !bytes.Equal(serverBytes(s.Connections[0]), first) || !bytes.Equal(serverBytes(s.Connections[1]), dup) {
		t.Fatal("recorded server frames differ from the bytes the client received")
	}
	// ... and what the gateway saw is what the client sent.
	var sent [][]string
	for _, f := range s.Connections[0].Frames {
		if f.From == fakes.FromClient {
			sent = append(sent, f.Fields)
		}
	}
	var seen [][]string
	for _, r := range g.Connections()[0].Requests {
		seen = append(seen, r.Fields)
	}
	if diff := cmp.Diff(seen, sent); diff != "" {
		t.Fatalf("client frames (-gateway +recording):\n%s", diff)
	}

	path := filepath.Join(t.TempDir(), "session.json")
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := fakes.LoadSession(path)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := fakes.NewReplayer(loaded)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rp.Close() })
	first2, dup2 := clientSession(t, rp.Addr())
	if !bytes.Equal(first, first2) || !bytes.Equal(dup, dup2) {
		t.Fatalf("replay differs from the recorded session: %d/%d bytes vs %d/%d", len(first2), len(dup2),
			len(first), len(dup))
	}
	if m := rp.Mismatches(); len(m) != 0 {
		t.Fatalf("mismatches: %q", m)
	}
}

func TestReplayFailsLoudly(t *testing.T) {
	s, err := fakes.LoadSession("testdata/sessions/startup.json")
	if err != nil {
		t.Fatal(err)
	}
	var logBuf lockedBuffer
	rp, err := fakes.NewReplayer(s, fakes.WithLogger(hclog.New(&hclog.LoggerOptions{Output: &logBuf})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rp.Close() })
	c := dialTap(t, rp.Addr())
	c.hello(fakes.Handshake{MinVersion: 157, MaxVersion: 178})
	c.send("71", "2", "1", "")
	for range 5 {
		c.read()
	}
	c.send("62", "1", "9", "All", "NetLiquidation") // never recorded
	f := c.read()
	if f[0] != "4" || f[2] != "9" || f[3] != "321" || !strings.Contains(f[4], "replay") {
		t.Fatalf("got %q, want ERR_MSG 321 for request 9 from the replayer", f)
	}
	if m := rp.Mismatches(); len(m) != 1 || !strings.Contains(m[0], "NetLiquidation") {
		t.Fatalf("mismatches %q", m)
	}
	if !strings.Contains(logBuf.String(), "[ERROR]") || !strings.Contains(logBuf.String(), "no answer") {
		t.Fatalf("log %q, want an error line", logBuf.String())
	}
	// An unrecorded cancellation is answered with nothing, as TWS does, and
	// the session goes on: a recorded request is still answered.
	c.send("63", "1", "9")
	c.send("61", "1")
	if f := c.read(); f[0] != "61" {
		t.Fatalf("got %q after an unrecorded cancel, want POSITION_DATA", f)
	}
	c.until("62")
	if m := rp.Mismatches(); len(m) != 1 {
		t.Fatalf("mismatches %q, want only the summary request", m)
	}

	// Once both recorded connections are used, a third client replays one
	// again; a client whose version range excludes every recorded version is
	// closed and reported.
	d := dialTap(t, rp.Addr())
	d.hello(fakes.Handshake{MinVersion: 100, MaxVersion: 225})
	e := dialTap(t, rp.Addr())
	if f := e.hello(fakes.Handshake{MinVersion: 100, MaxVersion: 225}); f[0] != "178" {
		t.Fatalf("third connection: handshake reply %q", f)
	}
	x := dialTap(t, rp.Addr())
	x.write(fakes.EncodeHandshake(fakes.Handshake{MinVersion: 100, MaxVersion: 150}))
	x.expectClosed()
	waitFor(t, "second mismatch", func() bool { return len(rp.Mismatches()) == 2 })
}

func TestSessionRedact(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	rec, err := fakes.NewRecorder(g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rec.Close() })
	clientSession(t, rec.Addr())
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	raw := rec.Session()
	red := raw.Redact()
	if !red.Redacted || raw.Redacted {
		t.Fatal("Redacted flag")
	}
	for i, c := range red.Connections {
		for j, f := range c.Frames {
			p := string(f.Payload())
			if strings.Contains(p, "DU1234567") || strings.Contains(p, "DU7654321") {
				t.Fatalf("connection %d frame %d still holds an account id: %q", i, j, f.Fields)
			}
			if len(f.Payload()) != len(raw.Connections[i].Frames[j].Payload()) {
				t.Fatalf("connection %d frame %d changed length", i, j)
			}
		}
	}
	if got := red.Connections[0].Frames[2].Fields; got[0] != "15" || got[2] != "DU0000001,DU0000002" {
		t.Fatalf("MANAGED_ACCTS redacted to %q", got)
	}
}

// playRecorded plays the client side of a recorded connection against addr
// and checks that every server frame arrives exactly as recorded, in order.
func playRecorded(t *testing.T, addr string, rc fakes.SessionConn) {
	t.Helper()
	h, err := fakes.ParseHandshake(rc.Handshake)
	if err != nil {
		t.Fatal(err)
	}
	c := dialTap(t, addr)
	c.write(fakes.EncodeHandshake(h))
	for i, f := range rc.Frames {
		if f.From == fakes.FromClient {
			c.write(f.Bytes())
			continue
		}
		want := f.Bytes()
		got := make([]byte, len(want))
		_ = c.nc.SetReadDeadline(time.Now().Add(hangLimit))
		if _, err := io.ReadFull(c.br, got); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %q, want %q", i, got, want)
		}
	}
	if rc.ClosedBy == fakes.FromServer {
		c.expectClosed()
	}
	_ = c.nc.Close()
}

// TestShippedSessions replays each recording in testdata/sessions to its own
// client side: every server frame must come back byte for byte. With -update,
// startup.json is first re-recorded from the fake (redacted).
func TestShippedSessions(t *testing.T) {
	if *update {
		g := startGateway(t, fakes.DefaultScript())
		rec, err := fakes.NewRecorder(g.Addr())
		if err != nil {
			t.Fatal(err)
		}
		clientSession(t, rec.Addr())
		waitFor(t, "recording complete", func() bool {
			s := rec.Session()
			return len(s.Connections) == 2 && s.Connections[0].ClosedBy != "" && s.Connections[1].ClosedBy != ""
		})
		_ = rec.Close()
		s := rec.Session().Redact()
		s.Upstream = "127.0.0.1:4002"
		if err := s.Save("testdata/sessions/startup.json"); err != nil {
			t.Fatal(err)
		}
	}
	paths, err := filepath.Glob("testdata/sessions/*.json")
	if err != nil || len(paths) < 2 {
		t.Fatalf("sessions %v: %v", paths, err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			s, err := fakes.LoadSession(p)
			if err != nil {
				t.Fatal(err)
			}
			rp, err := fakes.NewReplayer(s)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rp.Close() })
			for _, rc := range s.Connections {
				playRecorded(t, rp.Addr(), rc)
			}
			if m := rp.Mismatches(); len(m) != 0 {
				t.Fatalf("mismatches: %q", m)
			}
		})
	}
}

// TestRecorderUpstreamDown: a client of a recorder whose upstream refuses
// connections is closed at once, and the failure is logged.
func TestRecorderUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close() // nothing listens there any more
	var logBuf lockedBuffer
	rec, err := fakes.NewRecorder(dead, fakes.WithLogger(hclog.New(&hclog.LoggerOptions{Output: &logBuf})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rec.Close() })
	c := dialTap(t, rec.Addr())
	c.write(fakes.EncodeHandshake(fakes.Handshake{MinVersion: 100, MaxVersion: 225}))
	c.expectClosed()
	waitFor(t, "an error line", func() bool { return strings.Contains(logBuf.String(), "cannot reach upstream") })
	if n := len(rec.Session().Connections); n != 0 {
		t.Fatalf("%d connections recorded, want 0", n)
	}
}
