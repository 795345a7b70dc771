package fakes

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
)

// Gateway is a fake IB Gateway: a TCP server on loopback that speaks the TWS
// API wire protocol and serves a Script. It negotiates the highest server
// version inside both the client's range and its own (up to
// DefaultServerVersion, 225, unless the Script or WithMaxServerVersion says
// less) and speaks each version in the form the real Gateway does: text below
// VersionRawIDs (201), raw message ids from it, and protobuf bodies for the
// messages whose version has come (codec.go; docs/adr/0010).
//
// Each accepted connection is served by its own goroutines; Close stops them
// all. A Gateway is safe for concurrent use: tests and chaos drivers may call
// the live-control methods (DropConnections, Notify, SendRaw, SetScript) while
// clients are connected.
type Gateway struct {
	ln   net.Listener
	log  hclog.Logger
	opts options // maxVersion: WithMaxServerVersion, 0 if none
	wg   sync.WaitGroup
	done chan struct{} // closed by Close

	mu       sync.Mutex
	script   Script
	conns    []*conn       // accepted connections, in accept order: the live ones and the latest closed ones
	started  int           // connections that completed START_API, ever
	changed  chan struct{} // closed and replaced when a connection starts or a request arrives
	reqs     requestLog
	closed   bool
	closeErr error
	stalled  chan struct{} // non-nil between Stall and Resume; closed by Resume

	orders *orderBook // the order simulator (orders.go)
	hist   histPacer  // historical requests of all clients (pacing.go)
}

// Option configures NewGateway.
type Option func(*options)

type options struct {
	addr             string
	log              hclog.Logger
	maxVersion       int
	records          RecordLimits
	handshakeTimeout time.Duration
	tickHook         func(TickWrite)
}

// RecordLimits bound what the gateway remembers for Connections, so that a
// long-running gateway (brokerkit gateway, soak) holds flat memory: per
// connection, the latest Requests requests and at most Bytes bytes of their
// fields (older ones are dropped first, and counted in
// ConnRecord.DroppedRequests); and the records of the latest Closed closed
// connections (older closed ones are forgotten; live ones are always kept).
type RecordLimits struct {
	Requests int
	Bytes    int
	Closed   int
}

// DefaultRecordLimits are the limits NewGateway applies unless WithRecordLimits.
var DefaultRecordLimits = RecordLimits{Requests: 1000, Bytes: 1 << 20, Closed: 256}

// DefaultHandshakeTimeout is how long a connection may take, from accept, to
// send its handshake and START_API before the gateway closes it.
const DefaultHandshakeTimeout = 10 * time.Second

// WithRecordLimits sets the record limits; a field below 1 keeps its default.
func WithRecordLimits(l RecordLimits) Option {
	return func(o *options) {
		if l.Requests > 0 {
			o.records.Requests = l.Requests
		}
		if l.Bytes > 0 {
			o.records.Bytes = l.Bytes
		}
		if l.Closed > 0 {
			o.records.Closed = l.Closed
		}
	}
}

// WithHandshakeTimeout sets how long a connection may take to complete the
// handshake and START_API (default DefaultHandshakeTimeout); d <= 0 keeps the
// default. The handshake faults (StallHandshake, ShortHandshake,
// EmptyHandshake) hold their connections regardless: that is their point.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.handshakeTimeout = d
		}
	}
}

// WithMaxServerVersion caps the server version the gateway offers at v,
// whatever its Script says: it answers min(v, Script's version, client's max).
// v must be in MinServerVersion..MaxServerVersion; 0 means no cap.
func WithMaxServerVersion(v int) Option { return func(o *options) { o.maxVersion = v } }

// WithAddr makes the gateway listen on addr (for example "127.0.0.1:4002")
// instead of "127.0.0.1:0".
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// WithLogger sends the gateway's logs to l (default: hclog.NewNullLogger()).
func WithLogger(l hclog.Logger) Option { return func(o *options) { o.log = l } }

// newOptions applies opts over the defaults, for NewGateway, NewRecorder and
// NewReplayer (the last two use only the address and the logger).
func newOptions(opts []Option) options {
	o := options{addr: "127.0.0.1:0", log: hclog.NewNullLogger(), records: DefaultRecordLimits,
		handshakeTimeout: DefaultHandshakeTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = hclog.NewNullLogger()
	}
	return o
}

// NewGateway validates s, listens (on 127.0.0.1:0 unless WithAddr) and starts
// serving at once. Errors wrap broker.ErrInvalidArgument for an invalid script,
// or the listener's error.
func NewGateway(s Script, opts ...Option) (*Gateway, error) {
	o := newOptions(opts)
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if o.maxVersion != 0 && (o.maxVersion < MinServerVersion || o.maxVersion > MaxServerVersion) {
		return nil, fmt.Errorf("%w: max server version %d not 0 or in %d..%d", broker.ErrInvalidArgument,
			o.maxVersion, MinServerVersion, MaxServerVersion)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("fakes: listen on %s: %w", o.addr, err)
	}
	g := &Gateway{
		ln:      ln,
		opts:    o,
		log:     o.log.Named("fakegw"),
		done:    make(chan struct{}),
		script:  s.Clone(),
		changed: make(chan struct{}),
		orders:  newOrderBook(),
	}
	g.log.Debug("listening", "addr", ln.Addr().String())
	g.wg.Add(1)
	go g.acceptLoop()
	return g, nil
}

// Addr returns the listening address, "127.0.0.1:PORT".
func (g *Gateway) Addr() string { return g.ln.Addr().String() }

// Host returns the listening IP address, "127.0.0.1".
func (g *Gateway) Host() string {
	host, _, _ := net.SplitHostPort(g.Addr())
	return host
}

// Port returns the listening TCP port.
func (g *Gateway) Port() int {
	_, port, _ := net.SplitHostPort(g.Addr())
	p, _ := strconv.Atoi(port)
	return p
}

// ConnectParams returns connection parameters for this gateway: its host and
// port, clientID, and broker's defaults for the rest.
func (g *Gateway) ConnectParams(clientID int64) broker.ConnectParams {
	return broker.ConnectParams{Host: g.Host(), Port: g.Port(), ClientID: clientID}
}

// Script returns a copy of the current script.
func (g *Gateway) Script() Script {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.script.Clone()
}

// SetScript replaces the script. Requests read after the call are answered from
// s; connections accepted after the call use its version and faults, while live
// connections keep the version and faults they started with. A script that
// fails Validate is not installed: the gateway logs the error and keeps the old
// one (check s.Validate() first when it matters).
func (g *Gateway) SetScript(s Script) {
	if err := s.Validate(); err != nil {
		g.log.Error("SetScript: invalid script ignored", "error", err)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.script = s.Clone()
}

func (g *Gateway) currentScript() Script {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.script // shared read-only: SetScript replaces, never mutates
}

// Close stops listening, closes every live connection and waits until every
// goroutine of the gateway has returned. It is idempotent.
func (g *Gateway) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		g.wg.Wait()
		return g.closeErr
	}
	g.closed = true
	close(g.done)
	g.broadcastLocked()
	conns := slices.Clone(g.conns)
	g.mu.Unlock()

	err := g.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	for _, c := range conns {
		c.close(false)
	}
	g.wg.Wait()
	g.mu.Lock()
	g.closeErr = err
	g.mu.Unlock()
	g.log.Debug("closed")
	return err
}

func (g *Gateway) acceptLoop() {
	defer g.wg.Done()
	for {
		nc, err := g.ln.Accept()
		if err != nil {
			select {
			case <-g.done:
			default:
				g.log.Error("accept failed; gateway stops accepting", "error", err)
			}
			return
		}
		c := newConn(g, nc)
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			_ = nc.Close()
			return
		}
		c.faults = g.script.Faults
		c.pacing = g.script.Pacing
		c.version = g.script.serverVersion()
		if g.opts.maxVersion != 0 {
			c.version = min(c.version, g.opts.maxVersion)
		}
		g.conns = append(g.conns, c)
		g.broadcastLocked()
		g.mu.Unlock()
		g.wg.Add(1)
		go c.serve()
	}
}

// pruneLocked forgets the oldest closed connections beyond RecordLimits.Closed;
// g.mu must be held.
func (g *Gateway) pruneLocked() {
	closed := 0
	for _, c := range g.conns {
		if c.rec.Closed {
			closed++
		}
	}
	extra := closed - g.opts.records.Closed
	if extra <= 0 {
		return
	}
	g.conns = slices.DeleteFunc(g.conns, func(c *conn) bool {
		if extra > 0 && c.rec.Closed {
			extra--
			return true
		}
		return false
	})
}

// broadcastLocked wakes every WaitConnections; g.mu must be held.
func (g *Gateway) broadcastLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// live returns the connections that are open and, if apiOnly, have completed START_API.
func (g *Gateway) live(apiOnly bool) []*conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*conn
	for _, c := range g.conns {
		if !c.rec.Closed && (!apiOnly || c.apiLive) {
			out = append(out, c)
		}
	}
	return out
}

// DropConnections closes every open client socket abruptly (with a TCP reset),
// as a crashing gateway would, and returns how many it closed. The gateway
// keeps listening: clients may reconnect.
func (g *Gateway) DropConnections() int {
	cs := g.live(false)
	for _, c := range cs {
		c.close(true)
	}
	if len(cs) > 0 {
		g.log.Info("dropped connections", "count", len(cs))
	}
	return len(cs)
}

// Notify sends ERR_MSG with id -1, code and msg ("" means NoticeText(code)) to
// every live API connection (START_API done, not half-open) and returns how many
// it reached. 1101 ("connectivity restored, data lost") also makes each
// connection forget its market data streams, as IB does: nothing of them is
// sent after the notice, and the client must subscribe again (1102, "data
// maintained", keeps them).
func (g *Gateway) Notify(code int64, msg string) int {
	if msg == "" {
		msg = NoticeText(code)
	}
	n := 0
	for _, c := range g.live(true) {
		if c.notify(code, msg) == nil {
			n++
		}
	}
	return n
}

// SendRaw sends one message of exactly these text fields to every live API
// connection (START_API done, not half-open) and returns how many it reached.
// On a connection at VersionRawIDs or above, the first field (the message id,
// which must then be an integer in 0..199) goes out as a raw 4-byte id and the
// rest as text, never as protobuf. Fields that cannot be framed (NUL inside,
// none at all, too long) reach nobody: SendRaw logs the error and returns 0.
func (g *Gateway) SendRaw(fields ...string) int {
	if _, err := AppendFrame(nil, fields...); err != nil {
		g.log.Error("SendRaw: cannot frame", "error", err)
		return 0
	}
	n := 0
	for _, c := range g.live(true) {
		if c.sendMsg(true, fields) == nil {
			n++
		}
	}
	return n
}

// Stall makes the gateway hold its replies to requests read from now on, on
// every connection, until Resume (or until the connection or the Gateway
// closes): a gateway that stops answering mid-session. The replies are taken
// from the script current when the request is read; a request without reply
// (a cancel) is not held. Requests are still read and recorded (Connections),
// also behind a held reply, so a test can wait for a request to arrive before,
// say, cancelling its caller; a connection notices its client closing at once.
// Handshakes, notices, Notify and SendRaw are not held.
func (g *Gateway) Stall() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stalled == nil {
		g.stalled = make(chan struct{})
	}
}

// Resume ends a Stall: held replies go out, in order, each connection's before
// any reply to a request it reads later.
func (g *Gateway) Resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stalled != nil {
		close(g.stalled)
		g.stalled = nil
	}
}

// isStalled reports whether the gateway is between Stall and Resume.
func (g *Gateway) isStalled() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stalled != nil
}

// waitResumed waits while the gateway is stalled; it reports false if quit
// closed first.
func (g *Gateway) waitResumed(quit <-chan struct{}) bool {
	g.mu.Lock()
	ch := g.stalled
	g.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-quit:
		return false
	case <-g.done:
		return false
	}
}
