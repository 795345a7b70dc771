package fakes

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
)

// Replayer serves a recorded Session to any client: each accepted connection
// replays one recorded connection, answering each request with the frames the
// real server sent after the same request (docs/adr/0009 has the matching
// rules). A request the recording cannot answer gets ERR_MSG 321 naming it, a
// line on the logger at Error level, and an entry in Mismatches.
//
// A Replayer is safe for concurrent use.
type Replayer struct {
	srv *tcpServer

	mu         sync.Mutex
	sess       Session
	used       []bool
	mismatches []string
}

// CodeReplayMismatch is the ERR_MSG code a Replayer sends for a request its
// recording cannot answer (real TWS's "Error validating request").
const CodeReplayMismatch = CodeValidationError

// exchange is one recorded client frame and the server frames that followed it.
type exchange struct {
	request []byte // payload
	replies []Frame
}

// NewReplayer listens (on 127.0.0.1:0 unless WithAddr) and serves s. Options:
// WithAddr, WithLogger (mismatches are logged there at Error level).
func NewReplayer(s Session, opts ...Option) (*Replayer, error) {
	o := newOptions(opts)
	r := &Replayer{sess: s, used: make([]bool, len(s.Connections))}
	srv, err := listenTCP(o.addr, o.log.Named("replay"))
	if err != nil {
		return nil, err
	}
	r.srv = srv
	srv.start(r.serve)
	return r, nil
}

// Mismatches returns a description of every request the recording could not
// answer, and of every connection it had no recorded connection for.
func (r *Replayer) Mismatches() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.mismatches)
}

func (r *Replayer) mismatch(msg string, args ...any) {
	r.srv.log.Error(msg, args...)
	r.mu.Lock()
	r.mismatches = append(r.mismatches, fmt.Sprint(append([]any{msg}, args...)...))
	r.mu.Unlock()
}

// pick chooses the recorded connection for handshake h and marks it used:
// among the unused ones, then (replaying one again) among all, the first with
// the same version string, else the first whose negotiated version lies in
// h's range. It returns -1 if there is none.
func (r *Replayer) pick(h Handshake) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, reuse := range []bool{false, true} {
		best := -1
		for i, c := range r.sess.Connections {
			if (r.used[i] && !reuse) || len(c.Frames) == 0 || c.Frames[0].From != FromServer {
				continue
			}
			if c.Handshake == h.String() {
				best = i
				break
			}
			v, err := strconv.Atoi(c.Frames[0].ID())
			if best < 0 && err == nil && v >= h.MinVersion && v <= h.MaxVersion {
				best = i
			}
		}
		if best >= 0 {
			r.used[best] = true
			return best
		}
	}
	return -1
}

// exchanges splits a recorded connection into its greeting (the server frames
// before the first client frame) and its exchanges.
func exchanges(c SessionConn) (greeting []Frame, ex []exchange) {
	for _, f := range c.Frames {
		switch {
		case f.From == FromClient:
			ex = append(ex, exchange{request: f.Payload()})
		case len(ex) == 0:
			greeting = append(greeting, f)
		default:
			ex[len(ex)-1].replies = append(ex[len(ex)-1].replies, f)
		}
	}
	return greeting, ex
}

func (r *Replayer) serve(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	h, err := ReadHandshake(br)
	if err != nil {
		r.srv.log.Debug("bad handshake", "error", err)
		return
	}
	i := r.pick(h)
	if i < 0 {
		r.mismatch("replay: no recorded connection for client handshake", "handshake", h.String())
		return
	}
	rec := r.sess.Connections[i]
	greeting, ex := exchanges(rec)
	version, _ := strconv.Atoi(greeting[0].ID())
	for _, f := range greeting {
		if _, err := nc.Write(f.Bytes()); err != nil {
			return
		}
	}
	if len(ex) == 0 && rec.ClosedBy == FromServer {
		return // the real server closed the connection after its handshake reply
	}
	consumed := make([]bool, len(ex))
	for {
		p, err := readPayload(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				r.srv.log.Debug("read failed", "error", err)
			}
			return
		}
		k := matchExchange(ex, consumed, p)
		if k < 0 {
			fields, _, err := decodeRequest(version, p)
			if err != nil || len(fields) == 0 {
				fields = []string{Frame{Raw: p}.ID()}
			}
			if id, err := strconv.Atoi(fields[0]); err == nil && cancellations[id] {
				r.srv.log.Debug("replay: unrecorded cancellation, answered with nothing as TWS does", "request", fields)
				continue
			}
			r.mismatch("replay: the recording has no answer for this request", "connection", i,
				"request", fmt.Sprintf("%q", fields))
			id := field(fields, 0)
			msg := "Error validating request.-'" + id + "' : cause - replay: the recording has no answer for message " +
				id + " with these fields"
			frame, err := encodeMessage(version, errorFields(version, requestID(version, fields), CodeReplayMismatch, msg), false)
			if err != nil {
				r.srv.log.Error("replay: cannot encode the error", "error", err)
				continue
			}
			if _, err := nc.Write(frame); err != nil {
				return
			}
			continue
		}
		consumed[k] = true
		for _, f := range ex[k].replies {
			if _, err := nc.Write(f.Bytes()); err != nil {
				return
			}
		}
		if k == len(ex)-1 && rec.ClosedBy == FromServer {
			return // the real server closed the connection here
		}
	}
}

// cancellations are the requests real TWS never answers: a replay answers
// an unrecorded one with nothing too, rather than an error.
var cancellations = map[int]bool{
	inCancelMktData: true, inCancelHistorical: true, inCancelAccountSumm: true, inCancelPositions: true,
	inCancelPositionsMult: true, inCancelAcctUpdsMulti: true, inCancelPnL: true, inCancelPnLSingle: true,
}

// matchExchange returns the first unconsumed exchange whose request is p,
// else the last consumed one (a repeated request gets the same answer), else -1.
func matchExchange(ex []exchange, consumed []bool, p []byte) int {
	last := -1
	for k, e := range ex {
		if !bytes.Equal(e.request, p) {
			continue
		}
		if !consumed[k] {
			return k
		}
		last = k
	}
	return last
}

// Addr returns the listening address, "127.0.0.1:PORT".
func (r *Replayer) Addr() string { return r.srv.Addr() }

// Close stops listening, closes every connection and waits until every
// goroutine of the replayer has returned. It is idempotent.
func (r *Replayer) Close() error { return r.srv.Close() }
