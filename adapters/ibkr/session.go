package ibkr

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/scmhub/ibapi"

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
	posCancel     bool                // a finished or abandoned REQ_POSITIONS still needs its CANCEL_POSITIONS
	posFence      bool                // rows of an earlier REQ_POSITIONS may still be in flight
	byID          map[int64]idRequest // requests answered under their request id (byid.go)
	pings         []*pingWaiter
	raw           []rawPosition      // raw fields of POSITION_DATA frames scanned, not yet decoded (raw.go)
	lists         [numLists]*listReq // the list request of each kind on the wire (lists.go)
	listStale     [numLists]bool     // an earlier request of that kind may still be answering
	stream        *acctStream        // the account updates subscription, if any (stream.go)
	ord           orderBook          // orders and order events (orders.go)
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
		byID:          make(map[int64]idRequest),
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
	s.endQuotesLocked(err)
	clear(s.byID)
	s.pings = nil
	s.lists = [numLists]*listReq{}
	s.endStreamLocked()
	s.endOrdersLocked()
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
