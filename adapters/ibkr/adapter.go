package ibkr

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
)

// Option configures an Adapter.
type Option func(*options)

type options struct {
	logger         hclog.Logger
	ownLogger      bool
	connectOptions string
	summarySlots   int
	teardownWait   time.Duration
	maxAnswer      answerLimit
	pacing         Pacing
}

// answerLimit bounds one list answer (Positions, AccountSummary).
type answerLimit struct{ Rows, Bytes int }

// The default bound of one list answer. A gateway sending more rows than
// DefaultMaxAnswerRows, or more than DefaultMaxAnswerBytes of text, in answer
// to one Positions or AccountSummary call fails that call with
// broker.ErrProtocol (and the request is cancelled on the wire); the session
// lives on. Real accounts hold a few thousand positions at most.
const (
	DefaultMaxAnswerRows  = 100_000
	DefaultMaxAnswerBytes = 64 << 20
)

// WithMaxAnswer sets the bound of one list answer: at most rows rows and bytes
// bytes of text (see DefaultMaxAnswerRows). Values below 1 keep the default.
func WithMaxAnswer(rows, bytes int) Option {
	return func(o *options) {
		if rows > 0 {
			o.maxAnswer.Rows = rows
		}
		if bytes > 0 {
			o.maxAnswer.Bytes = bytes
		}
	}
}

// WithLogger sets the logger for the adapter's own records and, since scmhub's
// logger is process-global, for scmhub's records too (at Debug, named "ibapi";
// the last Adapter created with a logger receives them). The default discards.
func WithLogger(l hclog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger, o.ownLogger = l, true
		}
	}
}

// WithConnectOptions sets the connection options string sent in the handshake
// (for example "+PACEAPI", which asks the gateway to pace requests itself).
func WithConnectOptions(s string) Option {
	return func(o *options) { o.connectOptions = s }
}

// WithMaxConcurrentSummaries bounds how many account summary requests are open
// on the gateway at once; more AccountSummary calls wait for a slot. IB allows
// two (error 322 beyond), which is the default. n < 1 is treated as 1.
func WithMaxConcurrentSummaries(n int) Option {
	return func(o *options) { o.summarySlots = max(n, 1) }
}

// Adapter is the broker.Broker of an in-process TWS API client
// (github.com/scmhub/ibapi). Create it with New; it is safe for concurrent use.
type Adapter struct {
	opts options
	log  hclog.Logger
	hub  broker.Hub

	lifecycle    chan struct{} // one slot: serialises Connect, Disconnect and Close
	summarySlots chan struct{}
	listSlots    [numLists]chan struct{} // one list request of each kind at a time (lists.go)
	closing      context.Context         // done once Close starts: aborts a Connect in flight
	startClose   context.CancelFunc
	reqIDs       atomic.Int64
	lastOrderID  atomic.Int64  // the last order id allocated, in any session (orders.go)
	pace         *pacer        // IB's message and historical pacing, across sessions
	libLog       *hclog.Logger // this Adapter's registration as scmhub's logger

	mu     sync.Mutex
	closed bool
	sess   *session // current session, nil when disconnected; may have died since
}

var _ broker.Broker = (*Adapter)(nil)

// New returns a disconnected Adapter. The first call in a process also routes
// scmhub's global zerolog logger into hclog (see the package documentation).
func New(opts ...Option) *Adapter {
	o := options{logger: hclog.NewNullLogger(), summarySlots: 2, teardownWait: 5 * time.Second,
		maxAnswer: answerLimit{Rows: DefaultMaxAnswerRows, Bytes: DefaultMaxAnswerBytes}, pacing: IBPacing()}
	for _, opt := range opts {
		opt(&o)
	}
	installLibraryLogger()
	a := &Adapter{
		opts:         o,
		log:          o.logger.Named("ibkr"),
		lifecycle:    make(chan struct{}, 1),
		summarySlots: make(chan struct{}, o.summarySlots),
		pace:         newPacer(o.pacing),
	}
	if o.ownLogger {
		a.libLog = setLibraryLogger(o.logger)
	}
	a.closing, a.startClose = context.WithCancel(context.Background())
	for k := range a.listSlots {
		a.listSlots[k] = make(chan struct{}, 1)
	}
	a.reqIDs.Store(1 << 20) // clear of order ids, which count up from NEXT_VALID_ID
	return a
}

var (
	errClosed       = fmt.Errorf("ibkr: %w", broker.ErrClosed)
	errNotConnected = fmt.Errorf("ibkr: no session: %w", broker.ErrNotConnected)
	errDisconnected = fmt.Errorf("ibkr: disconnected: %w", broker.ErrNotConnected)
)

// acquire takes the lifecycle slot, or fails with ctx's error or ErrClosed.
func (a *Adapter) acquire(ctx context.Context) error {
	select {
	case a.lifecycle <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-a.closing.Done():
		return errClosed
	}
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed {
		<-a.lifecycle
		return errClosed
	}
	return nil
}

func (a *Adapter) release() { <-a.lifecycle }

// live returns the current session if it is alive.
func (a *Adapter) live() (*session, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	if a.sess == nil {
		return nil, errNotConnected
	}
	if err := a.sess.deadError(); err != nil {
		return nil, err
	}
	return a.sess, nil
}

// Subscribe implements broker.Broker. Events: IB 1100 is EventConnectionLost,
// 1101 and 1102 EventConnectionRestored, other gateway codes EventNotice; the
// session ending without Disconnect (gateway gone, malformed message) is
// EventConnectionLost with Code 0. Codes scmhub raises itself (501-599, such as
// 504 "Not connected") are not published.
func (a *Adapter) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	ch, err := a.hub.Subscribe(ctx)
	if err != nil {
		return nil, errClosed
	}
	return ch, nil
}

// Close implements broker.Broker: it aborts a Connect in flight, ends the
// session, waits (up to a few seconds) for scmhub's goroutines to finish, and
// closes every subscription.
func (a *Adapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	s := a.sess
	a.mu.Unlock()
	a.startClose()
	if s != nil {
		s.shutdown(errClosed) // fails calls in flight now, before taking the lifecycle slot
	}
	a.lifecycle <- struct{}{}
	defer a.release()
	a.mu.Lock()
	s = a.sess
	a.sess = nil
	a.mu.Unlock()
	if s != nil {
		s.shutdown(errClosed)
		if err := s.waitDone(context.Background(), a.opts.teardownWait); err != nil {
			a.log.Warn("scmhub session did not end in time", "error", err)
		}
	}
	a.hub.Close()
	unsetLibraryLogger(a.libLog)
	return nil
}

// As gives access to the underlying client, go-cloud style: a target of type
// **ibapi.EClient receives the scmhub client of the current session and As
// returns true; any other target, or no live session, returns false.
//
// The client is borrowed: requests made on it bypass the adapter's bookkeeping
// and their answers reach the adapter's wrapper, which ignores what it did not
// ask for. Never call its Connect or Disconnect, and do not keep it past the
// session.
func (a *Adapter) As(target any) bool {
	p, ok := target.(**ibapi.EClient)
	if !ok || p == nil {
		return false
	}
	s, err := a.live()
	if err != nil {
		return false
	}
	*p = s.ec
	return true
}

// isClosed reports whether ch is closed (nil is not).
func isClosed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
