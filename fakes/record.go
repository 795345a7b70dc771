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
)

// Recorder is a transparent TCP proxy in front of a real TWS or IB Gateway (or
// any server speaking its protocol) that records every frame both ways, with
// timing, as a Session. Each client connection gets its own upstream
// connection; bytes pass through unchanged.
//
// A Recorder is safe for concurrent use.
type Recorder struct {
	srv      *tcpServer
	upstream string
	dial     time.Duration

	mu    sync.Mutex
	conns []*recConn
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
	o := newOptions(opts)
	r := &Recorder{upstream: upstream, dial: 10 * time.Second}
	srv, err := listenTCP(o.addr, o.log.Named("record"))
	if err != nil {
		return nil, err
	}
	r.srv = srv
	srv.start(r.proxy)
	return r, nil
}

// proxy serves one client connection: it dials upstream and pumps both ways.
func (r *Recorder) proxy(nc net.Conn) {
	up, err := net.DialTimeout("tcp", r.upstream, r.dial)
	if err != nil {
		r.srv.log.Error("cannot reach upstream; closing client", "upstream", r.upstream, "error", err)
		_ = nc.Close()
		return
	}
	if !r.srv.track(up) {
		return
	}
	c := &recConn{start: time.Now(), client: nc, up: up}
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	r.srv.log.Debug("proxying", "client", nc.RemoteAddr().String(), "upstream", r.upstream)
	r.srv.goWait(func() { r.pump(c, true) })
	r.pump(c, false)
}

// pump copies one direction frame by frame, recording each frame, until either
// side ends; then it closes both sockets so the other pump ends too.
func (r *Recorder) pump(c *recConn, fromClient bool) {
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
		r.srv.log.Debug("proxy direction ended", "from", from, "error", err)
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

// Addr returns the listening address, "127.0.0.1:PORT".
func (r *Recorder) Addr() string { return r.srv.Addr() }

// Close stops listening, closes every connection and waits until every
// goroutine of the recorder has returned. It is idempotent.
func (r *Recorder) Close() error { return r.srv.Close() }
