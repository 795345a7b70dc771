package fakes

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
)

// duplicateIDLinger is how long the gateway keeps a refused (326) connection
// open before closing it: scmhub's decoder may drop the last messages before
// EOF, so real clients need the error to arrive well before the close.
const duplicateIDLinger = 300 * time.Millisecond

// malformedToken is what a malformed reply puts where an integer belongs.
const malformedToken = "not-an-int"

var errConnClosed = errors.New("fakes: connection closed")

// conn is one accepted TCP connection and its state.
type conn struct {
	g       *Gateway
	nc      net.Conn
	log     hclog.Logger
	faults  Faults // from the script current at accept; set before serve
	version int    // the highest server version offered at accept; set before serve

	quit      chan struct{} // closed by close
	closeOnce sync.Once

	wmu        sync.Mutex // serialises writes and guards sent
	sent       int
	halfOpen   atomic.Bool
	negotiated atomic.Int64 // server version answered in the handshake

	// Owned by the serve goroutine (Faults.EndlessPositions).
	stream, streamDone chan struct{}
	ordersSeen         int // PLACE_ORDERs read (Faults.DropAfterOrder)

	// Market data (marketdata.go) and pacing (pacing.go); pacing and recent
	// are set before serve and owned by the serve goroutine.
	md     marketState
	pacing *Pacing
	recent []time.Time

	// Replies held by a Stall (see reply). Guarded by hmu.
	hmu      sync.Mutex
	held     []heldReplies // in request order
	flushing bool          // a flushHeld goroutine runs: new replies queue behind held ones

	// Guarded by g.mu.
	recBytes int // bytes of fields in rec.Requests
	rec      ConnRecord
	apiLive  bool // START_API accepted and not closed
}

func newConn(g *Gateway, nc net.Conn) *conn {
	remote := nc.RemoteAddr().String()
	return &conn{
		g:    g,
		nc:   nc,
		log:  g.log.With("remote", remote),
		quit: make(chan struct{}),
		rec:  ConnRecord{Remote: remote},
	}
}

// close closes the socket once; abrupt sends a TCP reset instead of a FIN.
// It must not be called with g.mu held.
func (c *conn) close(abrupt bool) {
	c.closeOnce.Do(func() {
		if tc, ok := c.nc.(*net.TCPConn); ok && abrupt {
			_ = tc.SetLinger(0)
		}
		close(c.quit)
		// The client id is free before the client can see the close, so that
		// it may reconnect with it at once, as with a real Gateway.
		c.g.mu.Lock()
		c.rec.Closed = true
		c.apiLive = false
		c.g.pruneLocked()
		c.g.broadcastLocked()
		c.g.mu.Unlock()
		_ = c.nc.Close()
	})
}

func (c *conn) update(f func(r *ConnRecord)) {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	f(&c.rec)
}

func (c *conn) clientID() int64 {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	return c.rec.ClientID
}

// send writes one message, given as text fields (the id first), in the form
// of the negotiated server version (see encodeMessage).
func (c *conn) send(fields ...string) error { return c.sendMsg(false, fields) }

// sendMsg writes one message unless the connection is closed or half-open,
// and closes the connection once Faults.CloseAfterMessages frames have been
// sent. textOnly keeps the text form (with a raw id from VersionRawIDs) even
// where the version has a protobuf form: malformed replies and SendRaw.
func (c *conn) sendMsg(textOnly bool, fields []string) error {
	frame, err := encodeMessage(int(c.negotiated.Load()), fields, textOnly)
	if err != nil {
		c.log.Error("cannot encode message", "error", err)
		return err
	}
	return c.sendBytes(frame)
}

// sendBytes is send of one ready-made frame.
func (c *conn) sendBytes(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.quit:
		return errConnClosed
	default:
	}
	if c.halfOpen.Load() {
		return errConnClosed
	}
	if _, err := c.nc.Write(frame); err != nil {
		c.close(false)
		return fmt.Errorf("fakes: write: %w", err)
	}
	c.sent++
	if n := c.faults.CloseAfterMessages; n > 0 && c.sent >= n {
		c.log.Debug("fault: closing after messages", "sent", c.sent)
		c.close(false)
	}
	return nil
}

// sendError sends ERR_MSG in the layout of the negotiated server version.
func (c *conn) sendError(id, code int64, msg string) error {
	return c.send(errorFields(int(c.negotiated.Load()), id, code, msg)...)
}

func itoa(i int) string { return strconv.Itoa(i) }

// sleep waits d or until the connection closes; it reports whether d elapsed.
func (c *conn) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.quit:
		return false
	}
}

func (c *conn) serve() {
	defer c.g.wg.Done()
	defer c.stopStream()
	defer c.close(false)
	defer func() {
		if r := recover(); r != nil { // never let one connection take the gateway down
			c.log.Error("internal error serving connection", "panic", r)
			c.update(func(rec *ConnRecord) { rec.Error = fmt.Sprint("internal error: ", r) })
		}
	}()
	br := bufio.NewReader(c.nc)
	_ = c.nc.SetReadDeadline(time.Now().Add(c.g.opts.handshakeTimeout))
	if !c.handshake(br) {
		return
	}
	if !c.startAPI(br) {
		return
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	for n := 1; ; n++ {
		fields, err := c.readRequest(br)
		if err != nil {
			c.readFailed(err)
			return
		}
		select {
		case <-c.quit: // closed by a fault or DropConnections: what was buffered behind is never served
			return
		default:
		}
		if c.halfOpen.Load() {
			continue
		}
		sc := c.g.currentScript()
		replies := c.paced(sc, int(c.negotiated.Load()), fields) // pacing.go, then orders.go's answer
		if len(replies) > 0 && !c.sleep(c.faults.ReplyDelay) {
			return
		}
		textOnly := false
		if c.faults.EndlessPositions {
			switch fields[0] {
			case itoa(inReqPositions):
				c.stopStream()
				c.startStream(sc.Positions)
				replies = nil
			case itoa(inCancelPositions):
				c.stopStream()
			}
		}
		switch {
		case n == c.faults.MalformedAfterRequests:
			c.log.Debug("fault: malformed reply", "request", n)
			replies = [][]string{malformed(c.faults.MalformedFields, replies)}
			textOnly = true // a protobuf body scmhub cannot parse is only logged
		case n == c.faults.UnansweredRequest:
			c.log.Debug("fault: request not answered", "request", n)
			replies = nil
		case n == c.faults.EmptyFrameRequest:
			c.log.Debug("fault: empty frame", "request", n)
			if c.sendBytes([]byte{0, 0, 0, 0}) != nil {
				return
			}
			replies = nil
		case n == c.faults.NoEndMarkerRequest && len(replies) > 0 && isEndMarker(replies[len(replies)-1]):
			c.log.Debug("fault: end marker dropped", "request", n)
			replies = replies[:len(replies)-1]
		case len(replies) == 0:
			c.log.Debug("request not answered", "fields", fields)
		}
		if len(replies) > 0 && !c.reply(textOnly, replies) {
			return
		}
		if h := c.faults.HalfOpenAfterRequests; h > 0 && n >= h {
			c.log.Debug("fault: half-open", "after", n)
			c.halfOpen.Store(true)
		}
	}
}

func (c *conn) readFailed(err error) {
	select {
	case <-c.quit: // we closed it
		return
	default:
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		c.log.Debug("client closed the connection")
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) { // only set before START_API
		c.log.Warn("refusing client", "reason", "handshake timeout")
		c.update(func(r *ConnRecord) { r.Refused = "handshake timeout" })
		return
	}
	if errors.Is(err, broker.ErrProtocol) {
		c.log.Error("protocol error; closing connection", "error", err)
		c.update(func(r *ConnRecord) { r.Error = err.Error() })
		return
	}
	c.log.Debug("read failed", "error", err)
}

// readRequest reads one request in the form of the negotiated version and
// records it.
func (c *conn) readRequest(br *bufio.Reader) ([]string, error) {
	payload, err := readPayload(br)
	if err != nil {
		return nil, err
	}
	fields, isProto, err := decodeRequest(int(c.negotiated.Load()), payload)
	if err != nil {
		return nil, err
	}
	c.record(fields, isProto)
	return fields, nil
}

func (c *conn) record(fields []string, isProto bool) {
	id, err := strconv.Atoi(fields[0])
	if err != nil {
		id = -1
	}
	req := Request{ID: id, Fields: fields, Protobuf: isProto, At: time.Now()}
	size := fieldsSize(fields)
	lim := c.g.opts.records
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	r := &c.rec
	r.Requests = append(r.Requests, req)
	c.g.noteRequestLocked(req)
	c.recBytes += size
	drop := 0
	for drop < len(r.Requests) && (len(r.Requests)-drop > lim.Requests || c.recBytes > lim.Bytes) {
		c.recBytes -= fieldsSize(r.Requests[drop].Fields)
		drop++
	}
	if drop > 0 {
		// Clear the dropped frames, so that their fields can be freed, and
		// reslice: append's next growth copies only the kept ones. Copying the
		// kept ones here (up to Requests of them) on every request past the
		// limit cost 61 KiB and most of the gateway's CPU per request (ADR 0018).
		clear(r.Requests[:drop])
		r.Requests = r.Requests[drop:]
		r.DroppedRequests += drop
	}
}

// fieldsSize is the byte size of a frame's fields, for RecordLimits.Bytes.
func fieldsSize(fields []string) int {
	n := 0
	for _, f := range fields {
		n += len(f) + 1
	}
	return n
}
