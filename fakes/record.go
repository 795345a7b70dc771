package fakes

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Recorder is a transparent TCP proxy in front of a real TWS or IB Gateway (or
// any server speaking its protocol) that records every frame both ways, with
// timing, as a Session. Each client connection gets its own upstream
// connection; bytes pass through unchanged.
//
// A Recorder is safe for concurrent use.
type Recorder struct {
	ln       net.Listener
	upstream string
	log      hclog.Logger
	dial     time.Duration
	wg       sync.WaitGroup
	done     chan struct{}

	mu     sync.Mutex
	conns  []*recConn
	closed bool
}

type recConn struct {
	start  time.Time
	client net.Conn
	up     net.Conn

	mu  sync.Mutex // guards rec (both pumps append)
	rec SessionConn
}

// NewRecorder listens (on 127.0.0.1:0 unless WithAddr) and proxies each
// connection to upstream ("host:port"). Options: WithAddr, WithLogger.
func NewRecorder(upstream string, opts ...Option) (*Recorder, error) {
	o := options{addr: "127.0.0.1:0", log: hclog.NewNullLogger()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = hclog.NewNullLogger()
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("fakes: listen on %s: %w", o.addr, err)
	}
	r := &Recorder{ln: ln, upstream: upstream, log: o.log.Named("record"), dial: 10 * time.Second,
		done: make(chan struct{})}
	r.wg.Add(1)
	go r.acceptLoop()
	return r, nil
}

// Addr returns the listening address, "127.0.0.1:PORT".
func (r *Recorder) Addr() string { return r.ln.Addr().String() }

func (r *Recorder) acceptLoop() {
	defer r.wg.Done()
	for {
		nc, err := r.ln.Accept()
		if err != nil {
			select {
			case <-r.done:
			default:
				r.log.Error("accept failed; recorder stops accepting", "error", err)
			}
			return
		}
		up, err := net.DialTimeout("tcp", r.upstream, r.dial)
		if err != nil {
			r.log.Error("cannot reach upstream; closing client", "upstream", r.upstream, "error", err)
			_ = nc.Close()
			continue
		}
		c := &recConn{start: time.Now(), client: nc, up: up}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			_ = nc.Close()
			_ = up.Close()
			return
		}
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		r.log.Debug("proxying", "client", nc.RemoteAddr().String(), "upstream", r.upstream)
		r.wg.Add(2)
		go r.pump(c, true)
		go r.pump(c, false)
	}
}

// pump copies one direction frame by frame, recording each frame, until either
// side ends; then it closes both sockets so the other pump ends too.
func (r *Recorder) pump(c *recConn, fromClient bool) {
	defer r.wg.Done()
	src, dst, from := c.up, c.client, FromServer
	if fromClient {
		src, dst, from = c.client, c.up, FromClient
	}
	br := bufio.NewReader(src)
	err := func() error {
		if fromClient {
			raw, h, err := readHandshakeRaw(br)
			if err != nil {
				return err
			}
			c.mu.Lock()
			c.rec.Handshake = h
			c.mu.Unlock()
			if _, err := dst.Write(raw); err != nil {
				return err
			}
		}
		for {
			p, err := readPayload(br)
			if err != nil {
				return err
			}
			c.mu.Lock()
			c.rec.Frames = append(c.rec.Frames, newFrame(from, time.Since(c.start), p))
			c.mu.Unlock()
			if _, err := dst.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)); err != nil {
				return err
			}
		}
	}()
	c.mu.Lock()
	if c.rec.ClosedBy == "" && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		c.rec.ClosedBy = from
		c.rec.ClosedAt = Duration(time.Since(c.start))
	}
	c.mu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		r.log.Debug("proxy direction ended", "from", from, "error", err)
	}
	_ = c.client.Close()
	_ = c.up.Close()
}

// readHandshakeRaw reads the client's "API\0" + length + version string and
// returns those exact bytes and the version string.
func readHandshakeRaw(br *bufio.Reader) ([]byte, string, error) {
	head := make([]byte, 8)
	if _, err := io.ReadFull(br, head); err != nil {
		return nil, "", err
	}
	if string(head[:4]) != apiPrefix {
		return nil, "", fmt.Errorf("%w (got %q)", errNoAPIPrefix, head[:4])
	}
	n := binary.BigEndian.Uint32(head[4:])
	if n > MaxHandshakeLen {
		return nil, "", fmt.Errorf("%w: handshake of %s bytes", ErrFrameTooLarge, strconv.Itoa(int(n)))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, "", err
	}
	return append(head, body...), string(body), nil
}

// Session returns what has been recorded so far, connections in accept order;
// connections that closed before the client's handshake are left out.
func (r *Recorder) Session() Session {
	r.mu.Lock()
	conns := slices.Clone(r.conns)
	r.mu.Unlock()
	s := Session{Format: SessionFormat, Upstream: r.upstream, Connections: []SessionConn{}}
	for _, c := range conns {
		c.mu.Lock()
		rc := c.rec
		rc.Frames = slices.Clone(rc.Frames)
		c.mu.Unlock()
		if rc.Handshake == "" {
			continue // closed before its handshake (a port probe): nothing to replay
		}
		s.Connections = append(s.Connections, rc)
	}
	return s
}

// Close stops listening, closes every proxied connection and waits for the
// proxy's goroutines. It is idempotent. The recording stays readable with Session.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.wg.Wait()
		return nil
	}
	r.closed = true
	close(r.done)
	conns := slices.Clone(r.conns)
	r.mu.Unlock()
	err := r.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	for _, c := range conns {
		_ = c.client.Close()
		_ = c.up.Close()
	}
	r.wg.Wait()
	return err
}
