package ibkr

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/scmhub/ibapi"
	"github.com/scmhub/ibapi/protobuf"
	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/broker"
)

// session is one scmhub EClient from handshake to end, and the EWrapper that
// receives its callbacks. Callbacks run on scmhub's decoder goroutine (and some
// error callbacks on the goroutine of the request that raised them); they only
// take s.mu briefly and never block, never call into the EClient and never call
// Disconnect, which from a callback deadlocks scmhub.
//
// Exactly one goroutine ever calls EClient.Disconnect: scmhub's own watcher,
// which runs when the session's context ends. The adapter ends a session by
// shutting the socket's read side (shutdownRead), so scmhub's reader sees EOF
// and the watcher tears down; ConnectionClosed then closes s.done.
type session struct {
	ibapi.Wrapper // scmhub's logging defaults for every callback not overridden below

	a    *Adapter
	log  hclog.Logger
	ec   *ibapi.EClient
	conn *ibapi.Connection // captured before Connect; its socket pointer is atomic

	panicsAtStart int64
	abandoned     atomic.Bool    // the handshake watchdog gave up on Connect
	bg            sync.WaitGroup // short goroutines sending cancels

	// reqMu serialises calls into ec, so that the order of queued waiters is the
	// order of requests on the wire.
	reqMu sync.Mutex

	mu            sync.Mutex
	acked         bool            // Connect got through the handshake and START_API
	ctx           context.Context // scmhub's session context, from ConnectAck
	serverVersion int
	accounts      []string
	haveAccounts  bool
	haveNextID    bool
	ready         chan struct{} // closed once accounts and next id have arrived
	refused       *broker.APIError
	refusedCh     chan struct{}
	established   bool  // handed to the Adapter by a successful Connect
	deadErr       error // why the session is over; nil while alive
	dead          chan struct{}
	done          chan struct{} // closed by ConnectionClosed
	doneClosed    bool
	pos           *posCollect
	posCancel     bool // a finished or abandoned REQ_POSITIONS still needs its CANCEL_POSITIONS
	posFence      bool // rows of an earlier REQ_POSITIONS may still be in flight
	summaries     map[int64]*summaryReq
	pings         []*pingWaiter
	raw           []rawPosition // raw fields of POSITION_DATA frames scanned, not yet decoded (raw.go)
}

// posCollect is one REQ_POSITIONS on the wire and the calls sharing it.
type posCollect struct {
	rows    []broker.Position
	size    int           // bytes of text in rows, against the answer bound
	err     error         // first row that could not be converted, or the bound exceeded
	done    chan struct{} // closed at POSITION_END (or the bound); rows and err are final then
	waiters int           // calls waiting for it; at 0 it is abandoned
	open    bool          // its fence has been answered: rows now belong to it
}

type summaryReq struct {
	coll summaryCollector
	err  error
	done chan struct{}
}

// pingWaiter is one REQ_CURRENT_TIME in flight. A fence is the
// REQ_CURRENT_TIME sent just before a REQ_POSITIONS: its answer opens that
// request, since every row the gateway sent before it belongs to an earlier one.
type pingWaiter struct {
	done  chan struct{}
	fence *posCollect
}

func newSession(a *Adapter) *session {
	return &session{
		a:             a,
		log:           a.log,
		panicsAtStart: decoderPanics.Load(),
		ready:         make(chan struct{}),
		refusedCh:     make(chan struct{}),
		dead:          make(chan struct{}),
		done:          make(chan struct{}),
		summaries:     make(map[int64]*summaryReq),
	}
}

func (s *session) isAcked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

func (s *session) isReady() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.haveAccounts && s.haveNextID && s.deadErr == nil
}

func (s *session) refusal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused == nil {
		return nil
	}
	return s.refused
}

func (s *session) info() broker.ConnectInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return broker.ConnectInfo{Accounts: slices.Clone(s.accounts), ServerVersion: s.serverVersion}
}

// establish marks the session as the Adapter's, from which point its loss is
// published as an event. It fails if the session is already over.
func (s *session) establish() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deadErr != nil {
		return s.deadErr
	}
	s.established = true
	return nil
}

func (s *session) deadError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadErr
}

// markDead records why the session is over (first reason wins) and releases
// every waiter. It reports whether this call was the first.
func (s *session) markDead(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.markDeadLocked(err)
}

func (s *session) markDeadLocked(err error) bool {
	if s.deadErr != nil {
		return false
	}
	s.deadErr = err
	close(s.dead)
	s.pos = nil
	clear(s.summaries)
	s.pings = nil
	return true
}

// lostError is the error of a session the gateway side ended.
func (s *session) lostError() error {
	if decoderPanics.Load() != s.panicsAtStart {
		return fmt.Errorf("ibkr: session ended by a malformed message from the gateway: %w (%w)", broker.ErrNotConnected, broker.ErrProtocol)
	}
	return fmt.Errorf("ibkr: connection to the gateway lost: %w", broker.ErrNotConnected)
}

// onContextDone runs (via context.AfterFunc) when scmhub's session context ends:
// at EOF, at a decoder panic, or after shutdownRead. Waiters fail right away,
// before scmhub's teardown has finished.
func (s *session) onContextDone() {
	s.mu.Lock()
	first := s.markDeadLocked(s.lostError())
	established := s.established
	s.mu.Unlock()
	if first && established {
		s.a.hub.Publish(broker.Event{Kind: broker.EventConnectionLost, Message: "connection to the gateway lost"})
	}
}

// shutdown ends the session on the adapter's initiative: waiters fail with
// reason, and scmhub's reader is made to see EOF.
func (s *session) shutdown(reason error) {
	s.markDead(reason)
	shutdownRead(s.conn)
}

// waitDone waits until scmhub has torn the session down (ConnectionClosed) and
// the adapter's helper goroutines have ended. If that takes longer than limit/2
// it closes the socket outright; it gives up after limit or when ctx ends.
func (s *session) waitDone(ctx context.Context, limit time.Duration) error {
	if !s.isAcked() {
		s.cleanupHandshake()
		s.bg.Wait()
		return nil
	}
	soft := time.NewTimer(limit / 2)
	defer soft.Stop()
	hard := time.NewTimer(limit)
	defer hard.Stop()
	for {
		select {
		case <-s.done:
			s.bg.Wait()
			return nil
		case <-soft.C:
			closeSocket(s.conn)
		case <-hard.C:
			return fmt.Errorf("scmhub client did not stop within %v", limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// abortHandshake makes a blocked EClient.Connect return by shutting the read
// side of its socket, retrying in case Connect had not created the socket yet.
// It gives up after two seconds (a dial stuck in the kernel cannot be
// interrupted); the Connect goroutine then cleans up after itself.
func (s *session) abortHandshake(result <-chan error) error {
	s.abandoned.Store(true)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	giveUp := time.NewTimer(2 * time.Second)
	defer giveUp.Stop()
	for {
		shutdownRead(s.conn)
		select {
		case err := <-result:
			return err
		case <-tick.C:
		case <-giveUp.C:
			return fmt.Errorf("scmhub Connect did not return")
		}
	}
}

// cleanupHandshake releases what a Connect that did not reach CONNECTED holds:
// scmhub never closes that socket itself. A Connect that did reach CONNECTED is
// ended through its reader instead.
func (s *session) cleanupHandshake() {
	if s.isAcked() {
		shutdownRead(s.conn)
		return
	}
	closeSocket(s.conn)
}

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
	viaClient bool // always through scmhub (Connect's first ping, see Adapter.Connect)
}

// frame encodes r as one TWS frame in the form scmhub uses at server version
// v (client.go encodeMsgID, useProtoBuf): below 201 (MIN_SERVER_VER_PROTOBUF)
// the id and fields as NUL-terminated text; from 201 the id as a raw 4-byte
// integer, followed by the text fields or, from the version scmhub's
// PROTOBUF_MSG_IDS names for r, by the protobuf body under id+200.
func (r request) frame(v int) ([]byte, error) {
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

// The requests the adapter makes (message ids, versions and protobuf messages
// as in scmhub's client.go and client_utils.go).
func reqPositions() request {
	return request{id: ibapi.REQ_POSITIONS, fields: []string{"1"},
		pb:   func() proto.Message { return &protobuf.PositionsRequest{} },
		call: func(ec *ibapi.EClient) { ec.ReqPositions() }}
}

func cancelPositions() request {
	return request{id: ibapi.CANCEL_POSITIONS, fields: []string{"1"},
		pb:   func() proto.Message { return &protobuf.CancelPositions{} },
		call: func(ec *ibapi.EClient) { ec.CancelPositions() }}
}

func reqAccountSummary(id int64, group, tags string) request {
	return request{id: ibapi.REQ_ACCOUNT_SUMMARY, fields: []string{"1", strconv.FormatInt(id, 10), group, tags},
		pb: func() proto.Message {
			return &protobuf.AccountSummaryRequest{ReqId: proto.Int32(int32(id)), Group: optString(group), Tags: optString(tags)}
		},
		call: func(ec *ibapi.EClient) { ec.ReqAccountSummary(id, group, tags) }}
}

func cancelAccountSummary(id int64) request {
	return request{id: ibapi.CANCEL_ACCOUNT_SUMMARY, fields: []string{"1", strconv.FormatInt(id, 10)},
		pb:   func() proto.Message { return &protobuf.CancelAccountSummary{ReqId: proto.Int32(int32(id))} },
		call: func(ec *ibapi.EClient) { ec.CancelAccountSummary(id) }}
}

func reqCurrentTime(viaClient bool) request {
	return request{id: ibapi.REQ_CURRENT_TIME, fields: []string{"1"},
		pb:        func() proto.Message { return &protobuf.CurrentTimeRequest{} },
		call:      func(ec *ibapi.EClient) { ec.ReqCurrentTime() },
		viaClient: viaClient}
}

// optString is nil for "", as scmhub leaves empty strings out of its protobuf requests.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
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

func (s *session) startSummary(id int64, tags string) (*summaryReq, error) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	r := &summaryReq{done: make(chan struct{})}
	s.mu.Lock()
	if s.deadErr != nil {
		defer s.mu.Unlock()
		return nil, s.deadErr
	}
	s.summaries[id] = r
	s.mu.Unlock()
	if err := s.send(reqAccountSummary(id, "All", tags)); err != nil {
		s.dropSummary(id)
		return nil, err
	}
	return r, nil
}

func (s *session) dropSummary(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.summaries, id)
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

// ---- EWrapper callbacks ----

// ConnectAck runs on the goroutine calling Connect, after START_API and before
// scmhub starts its watcher, so reading the client here races with nothing.
func (s *session) ConnectAck() {
	ctx := s.ec.Ctx()
	v := int(s.ec.ServerVersion())
	s.mu.Lock()
	s.acked = true
	s.ctx = ctx
	s.serverVersion = v
	s.mu.Unlock()
	context.AfterFunc(ctx, s.onContextDone)
}

// ConnectionClosed runs at the end of scmhub's Disconnect, once its goroutines
// have ended.
func (s *session) ConnectionClosed() {
	s.mu.Lock()
	first := s.markDeadLocked(s.lostError())
	established := s.established
	if !s.doneClosed {
		s.doneClosed = true
		close(s.done)
	}
	s.mu.Unlock()
	if first && established {
		s.a.hub.Publish(broker.Event{Kind: broker.EventConnectionLost, Message: "connection to the gateway lost"})
	}
}

// ManagedAccounts records the accounts of MANAGED_ACCTS.
func (s *session) ManagedAccounts(accounts []string) {
	list := make([]string, 0, len(accounts))
	for _, a := range accounts {
		if a != "" {
			list = append(list, a)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts = list
	s.haveAccounts = true
	s.checkReadyLocked()
}

// NextValidID records that NEXT_VALID_ID has arrived.
func (s *session) NextValidID(int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.haveNextID = true
	s.checkReadyLocked()
}

func (s *session) checkReadyLocked() {
	if s.haveAccounts && s.haveNextID {
		select {
		case <-s.ready:
		default:
			close(s.ready)
		}
	}
}

// CurrentTime releases the oldest waiter still queued (callers that gave up
// have left the queue; see Adapter.Ping); a fence opens its positions request.
func (s *session) CurrentTime(int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pings) == 0 {
		return
	}
	w := s.pings[0]
	s.pings = s.pings[1:]
	if w.fence != nil && s.pos == w.fence {
		w.fence.open = true
	}
	close(w.done)
}

// Position adds a row to the open positions request, if any. Rows arriving
// outside one (of a request abandoned or being cancelled, or before the
// current request's fence) are dropped unconverted. A request whose answer
// passes the adapter's bound fails with broker.ErrProtocol and is cancelled.
func (s *session) Position(account string, c *ibapi.Contract, pos ibapi.Decimal, avgCost float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw := s.takeRawLocked(account, c) // taken whether or not the row is kept
	pc := s.pos
	if pc == nil || !pc.open {
		return
	}
	p, err := positionFromIB(account, c, pos, avgCost, raw)
	if err != nil {
		if pc.err == nil {
			pc.err = fmt.Errorf("ibkr: positions: %w", err)
		}
		return
	}
	pc.rows = append(pc.rows, p)
	pc.size += positionSize(p)
	lim := s.a.opts.maxAnswer
	if len(pc.rows) > lim.Rows || pc.size > lim.Bytes {
		pc.rows = nil
		s.posFence = true // the rest of its rows are still coming
		pc.err = fmt.Errorf("ibkr: positions: answer exceeds %d rows or %d bytes: %w", lim.Rows, lim.Bytes, broker.ErrProtocol)
		s.finishPositionsLocked(pc)
	}
}

// PositionEnd completes the open positions request, if any.
func (s *session) PositionEnd() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pc := s.pos; pc != nil && pc.open {
		s.finishPositionsLocked(pc)
	}
}

// AccountSummary adds a row to the summary request with that id, if any; an
// answer past the bound of WithMaxAnswer fails the request with
// broker.ErrProtocol (the caller then cancels it).
func (s *session) AccountSummary(reqID int64, account, tag, value, currency string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.summaries[reqID]
	if !ok {
		return
	}
	r.coll.add(account, tag, value, currency)
	if lim := s.a.opts.maxAnswer; r.coll.rows > lim.Rows || r.coll.size > lim.Bytes {
		delete(s.summaries, reqID)
		r.coll = summaryCollector{}
		r.err = fmt.Errorf("answer exceeds %d rows or %d bytes: %w", lim.Rows, lim.Bytes, broker.ErrProtocol)
		close(r.done)
	}
}

// AccountSummaryEnd completes the summary request with that id.
func (s *session) AccountSummaryEnd(reqID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.summaries[reqID]; ok {
		delete(s.summaries, reqID)
		close(r.done)
	}
}

// Error routes an ERR_MSG: to the summary request it names, to the Connect in
// progress (326), or to subscribers as an event.
func (s *session) Error(reqID int64, _ int64, code int64, msg string, _ string) {
	apiErr := &broker.APIError{ReqID: reqID, Code: code, Message: msg}
	s.mu.Lock()
	if r, ok := s.summaries[reqID]; ok && reqID >= 0 {
		delete(s.summaries, reqID)
		r.err = apiErr
		close(r.done)
		s.mu.Unlock()
		return
	}
	if code == 326 && !s.established {
		if s.refused == nil {
			s.refused = apiErr
			close(s.refusedCh)
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.log.Debug("gateway message", "req_id", reqID, "code", code, "message", msg)
	if e, ok := eventFor(reqID, code, msg); ok {
		s.a.hub.Publish(e)
	}
}

// eventFor maps an ERR_MSG to the event subscribers see, if any.
func eventFor(reqID, code int64, msg string) (broker.Event, bool) {
	switch {
	case reqID == ibapi.NO_VALID_ID && code >= 501 && code <= 599:
		return broker.Event{}, false // raised by scmhub itself, not by the gateway
	case code == 1100:
		return broker.Event{Kind: broker.EventConnectionLost, Code: code, Message: msg}, true
	case code == 1101 || code == 1102:
		return broker.Event{Kind: broker.EventConnectionRestored, Code: code, Message: msg}, true
	default:
		return broker.Event{Kind: broker.EventNotice, Code: code, Message: msg}, true
	}
}
