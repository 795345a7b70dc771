package fakes_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"github.com/scmhub/ibapi"
	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/fakes"
)

// hangLimit bounds every wait in these tests; it only guards against hangs.
const hangLimit = 10 * time.Second

func TestMain(m *testing.M) {
	ibapi.SetLogger(zerolog.Nop()) // before any client runs: SetLogger is not synchronised
	goleak.VerifyTestMain(m)
}

// startGateway starts a gateway for s and closes it when the test ends.
func startGateway(t testing.TB, s fakes.Script, opts ...fakes.Option) *fakes.Gateway {
	t.Helper()
	g, err := fakes.NewGateway(s, opts...)
	if err != nil {
		t.Fatalf("NewGateway: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return g
}

// rawClient is a minimal TWS client speaking bytes, to check the wire directly.
type rawClient struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, g *fakes.Gateway) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", g.Addr(), hangLimit)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawClient) send(fields ...string) {
	c.t.Helper()
	c.write(fakes.EncodeFrame(fields...))
}

// readWithin reads one frame, waiting at most d.
func (c *rawClient) readWithin(d time.Duration) ([]string, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	return fakes.ReadFrame(c.br)
}

func (c *rawClient) read() []string {
	c.t.Helper()
	f, err := c.readWithin(hangLimit)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

// expect reads one frame and compares it with want.
func (c *rawClient) expect(want ...string) {
	c.t.Helper()
	if diff := cmp.Diff(want, c.read()); diff != "" {
		c.t.Fatalf("frame mismatch (-want +got):\n%s", diff)
	}
}

// expectClosed waits for the gateway to close the connection.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	f, err := c.readWithin(hangLimit)
	if err == nil {
		c.t.Fatalf("read %q, want the connection closed", f)
	}
	if isTimeout(err) {
		c.t.Fatalf("connection still open after %v", hangLimit)
	}
}

// expectSilence checks that nothing arrives within d while the socket stays open.
func (c *rawClient) expectSilence(d time.Duration) {
	c.t.Helper()
	f, err := c.readWithin(d)
	if err == nil {
		c.t.Fatalf("read %q, want silence", f)
	}
	if !isTimeout(err) {
		c.t.Fatalf("read error %v, want a timeout on an open socket", err)
	}
	// The timed-out read may have consumed part of nothing; reset the deadline.
	_ = c.nc.SetReadDeadline(time.Time{})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// hello sends the handshake and returns the gateway's reply.
func (c *rawClient) hello(h fakes.Handshake) []string {
	c.t.Helper()
	c.write(fakes.EncodeHandshake(h))
	return c.read()
}

// textRange is the range of a client that speaks only the text protocol
// (@stoqey/ib): the raw clients of these tests read text frames.
var textRange = fakes.Handshake{MinVersion: 100, MaxVersion: fakes.TextServerVersion}

// connectRaw performs the whole opening of a text client and consumes the five
// unprompted messages.
func connectRaw(t testing.TB, g *fakes.Gateway, clientID int64) *rawClient {
	t.Helper()
	c := dialRaw(t, g)
	c.hello(textRange)
	c.send("71", "2", strconv.FormatInt(clientID, 10), "")
	for range 5 {
		c.read()
	}
	return c
}

// waitFor polls cond until it holds or hangLimit passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxLimit(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	t.Cleanup(cancel)
	return ctx
}

// lastConn returns the gateway's most recent connection record.
func lastConn(t testing.TB, g *fakes.Gateway) fakes.ConnRecord {
	t.Helper()
	cs := g.Connections()
	if len(cs) == 0 {
		t.Fatal("no connection recorded")
	}
	return cs[len(cs)-1]
}

// waitClosedRecord waits until the last connection is recorded as closed and returns it.
func waitClosedRecord(t testing.TB, g *fakes.Gateway) fakes.ConnRecord {
	t.Helper()
	waitFor(t, "connection record closed", func() bool {
		cs := g.Connections()
		return len(cs) > 0 && cs[len(cs)-1].Closed
	})
	return lastConn(t, g)
}
