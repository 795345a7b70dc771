package ibkr

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
)

// Sending requests and collecting the answers that carry no request id:
// positions (one request shared by concurrent calls, behind fences) and
// current time (waiters in send order).

// send makes request r unless the session is over. The caller holds s.reqMu.
//
// scmhub's request methods read EClient fields that its teardown (run by its own
// watcher goroutine when the gateway drops the connection) rewrites without
// synchronisation, so a request racing a drop is a data race inside scmhub. So
// send writes r's frame, in the form scmhub itself would use at the negotiated
// server version (see request.frame), straight to the socket (one Write: frames
// never interleave) and never touches the EClient, except for Connect's first
// ping (viaClient), where a panic inside scmhub fails the request with
// broker.ErrProtocol (guard).
func (s *session) send(r request) error {
	s.mu.Lock()
	err, ctx, version := s.deadErr, s.ctx, s.serverVersion
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if ctx == nil || ctx.Err() != nil {
		return s.endedError()
	}
	if !r.paced {
		s.a.pace.take()
	}
	if r.viaClient {
		if err := guard(func() { r.call(s.ec) }); err != nil {
			s.log.Warn("scmhub request panicked", "error", err)
			return fmt.Errorf("ibkr: request: %w", err)
		}
		return nil
	}
	frame, err := r.frame(version)
	if err != nil {
		return err
	}
	tc := tcpConnOf(s.conn)
	if tc == nil {
		return s.endedError()
	}
	if _, err := tc.Write(frame); err != nil {
		return s.endedError()
	}
	return nil
}

// endedError is the error of a request that found the session over: the
// reason it was marked dead with (errClosed when Close ended it, even if the
// write lost the race with the socket's teardown), else lostError.
func (s *session) endedError() error {
	if err := s.deadError(); err != nil {
		return err
	}
	return s.lostError()
}

// request is one request of the adapter in all its forms: its message id and
// text fields (version first), its protobuf message (scmhub's generated type),
// and the scmhub call.
type request struct {
	id        ibapi.OUT
	fields    []string             // after the id
	pb        func() proto.Message // the protobuf form
	call      func(*ibapi.EClient)
	viaClient bool   // always through scmhub (Connect's first ping, see Adapter.Connect)
	paced     bool   // its pacing slot was taken, with the caller's context (pacing.go)
	raw       []byte // the whole frame, built by scmhub (orders_frames.go); fields and pb unused
}

// frame encodes r as one TWS frame in the form scmhub uses at server version
// v (client.go encodeMsgID, useProtoBuf): below 201 (MIN_SERVER_VER_PROTOBUF)
// the id and fields as NUL-terminated text; from 201 the id as a raw 4-byte
// integer, followed by the text fields or, from the version scmhub's
// PROTOBUF_MSG_IDS names for r, by the protobuf body under id+200.
func (r request) frame(v int) ([]byte, error) {
	if r.raw != nil {
		return r.raw, nil
	}
	b := make([]byte, 4, 64) // length, filled in last
	switch since, ok := ibapi.PROTOBUF_MSG_IDS[r.id]; {
	case v < int(ibapi.MIN_SERVER_VER_PROTOBUF):
		b = append(append(b, strconv.FormatInt(int64(r.id), 10)...), 0)
	case ok && v >= int(since):
		b = binary.BigEndian.AppendUint32(b, uint32(int64(r.id)+ibapi.PROTOBUF_MSG_ID))
		var err error
		if b, err = (proto.MarshalOptions{}).MarshalAppend(b, r.pb()); err != nil {
			return nil, fmt.Errorf("ibkr: encode request %d: %w", r.id, err)
		}
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		return b, nil
	default:
		b = binary.BigEndian.AppendUint32(b, uint32(r.id))
	}
	for _, f := range r.fields {
		b = append(append(b, f...), 0)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b, nil
}

// sendLocked is send under s.reqMu.
func (s *session) sendLocked(r request) error {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return s.send(r)
}

// startPositions joins the REQ_POSITIONS in flight or sends a new one. A new
// one that follows an abandoned request (or one past the bound) goes out as
// CANCEL_POSITIONS (if still owed), REQ_CURRENT_TIME (the fence), REQ_POSITIONS:
// the gateway answers in order, so rows and POSITION_END arriving before the
// fence's CURRENT_TIME belong to the earlier request and are dropped. Every
// caller that gets a *posCollect must call leavePositions unless it is done.
func (s *session) startPositions() (*posCollect, error) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.mu.Lock()
	if s.deadErr != nil {
		defer s.mu.Unlock()
		return nil, s.deadErr
	}
	pc := s.pos
	if pc != nil { // join the request in flight
		pc.waiters++
		s.mu.Unlock()
		return pc, nil
	}
	pc = &posCollect{rows: []broker.Position{}, done: make(chan struct{}), waiters: 1}
	s.pos = pc
	cancelFirst, fence := s.posCancel, s.posFence
	s.posCancel, s.posFence = false, false
	var fw *pingWaiter
	if fence {
		fw = &pingWaiter{done: make(chan struct{}), fence: pc}
		s.pings = append(s.pings, fw)
	} else {
		pc.open = true
	}
	s.mu.Unlock()
	err := func() error {
		if cancelFirst {
			if err := s.send(cancelPositions()); err != nil {
				return err
			}
		}
		if fw != nil {
			if err := s.send(reqCurrentTime(false)); err != nil {
				return err
			}
		}
		return s.send(reqPositions())
	}()
	if err != nil { // what did go out is cancelled before the next request
		s.mu.Lock()
		s.abandonLocked(pc)
		s.mu.Unlock()
		return nil, err
	}
	return pc, nil
}

// leavePositions is a caller of pc giving up (its ctx ended). When the last one
// leaves, the request is abandoned on the wire too: the adapter stops
// collecting its rows at once and sends CANCEL_POSITIONS; the next call starts
// a fresh request behind a fence.
func (s *session) leavePositions(pc *posCollect) {
	s.mu.Lock()
	pc.waiters--
	if pc.waiters > 0 || s.pos != pc {
		s.mu.Unlock()
		return
	}
	s.abandonLocked(pc)
	s.mu.Unlock()
	s.sendOwedCancel()
}

// abandonLocked forgets pc, the current request: its rows are dropped from now
// on, CANCEL_POSITIONS is owed and the next request needs a fence. s.mu is held.
func (s *session) abandonLocked(pc *posCollect) {
	if s.pos != pc {
		return
	}
	s.pos = nil
	s.dropFenceLocked(pc)
	s.posCancel, s.posFence = true, true
}

// finishPositionsLocked completes pc (POSITION_END, or the bound exceeded) and
// has its subscription cancelled from another goroutine (callbacks never send).
// The cancel is marked owed first, so that whichever of that goroutine and the
// next Positions call runs first sends it, and it always precedes the next
// REQ_POSITIONS on the wire. s.mu is held.
func (s *session) finishPositionsLocked(pc *posCollect) {
	s.pos = nil
	s.dropFenceLocked(pc)
	close(pc.done)
	s.posCancel = true
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.sendOwedCancel()
	}()
}

// sendOwedCancel sends the CANCEL_POSITIONS owed, unless a new request has
// already sent it.
func (s *session) sendOwedCancel() {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.mu.Lock()
	owed := s.posCancel && s.pos == nil
	s.posCancel = false
	s.mu.Unlock()
	if owed {
		_ = s.send(cancelPositions()) // send guards scmhub's encoding
	}
}

// dropFenceLocked removes pc's fence from the ping queue, if it is still there.
func (s *session) dropFenceLocked(pc *posCollect) {
	s.pings = slices.DeleteFunc(s.pings, func(w *pingWaiter) bool { return w.fence == pc })
}

// startPing sends one REQ_CURRENT_TIME and returns its place in the queue;
// viaClient makes it go through scmhub's requester (Connect's first ping).
func (s *session) startPing(viaClient bool) (*pingWaiter, error) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	w := &pingWaiter{done: make(chan struct{})}
	s.mu.Lock()
	if s.deadErr != nil {
		defer s.mu.Unlock()
		return nil, s.deadErr
	}
	s.pings = append(s.pings, w)
	s.mu.Unlock()
	if err := s.send(reqCurrentTime(viaClient)); err != nil {
		return nil, err
	}
	return w, nil
}

// dropPing removes w from the queue: its caller gave up.
func (s *session) dropPing(w *pingWaiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pings = slices.DeleteFunc(s.pings, func(x *pingWaiter) bool { return x == w })
}

// roundTrip makes one REQ_CURRENT_TIME round trip, bounded by ctx.
func (s *session) roundTrip(ctx context.Context) error {
	w, err := s.startPing(false)
	if err != nil {
		return err
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		s.dropPing(w)
		return ctx.Err()
	case <-s.dead:
		return s.deadError()
	}
}

// teeRaw queues the raw fields of a POSITION_DATA frame scmhub's scanner has
// just read (scanner goroutine); Position takes them.
func (s *session) teeRaw(r rawPosition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.raw) >= maxRawQueue {
		s.raw = slices.Delete(s.raw, 0, len(s.raw)-maxRawQueue+1)
	}
	s.raw = append(s.raw, r)
}

// takeRawLocked returns the oldest queued raw fields of this account and
// contract, dropping the entries queued before them (frames that produced no
// callback), or nil if none match. s.mu is held.
func (s *session) takeRawLocked(account string, c *ibapi.Contract) *rawPosition {
	if c == nil {
		return nil
	}
	for i, r := range s.raw {
		if r.account == account && r.conID == c.ConID {
			s.raw = slices.Delete(s.raw, 0, i+1)
			return &r
		}
	}
	return nil
}
