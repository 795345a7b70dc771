package ibkr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
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
	closing      context.Context // done once Close starts: aborts a Connect in flight
	startClose   context.CancelFunc
	reqIDs       atomic.Int64
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
		maxAnswer: answerLimit{Rows: DefaultMaxAnswerRows, Bytes: DefaultMaxAnswerBytes}}
	for _, opt := range opts {
		opt(&o)
	}
	installLibraryLogger()
	a := &Adapter{
		opts:         o,
		log:          o.logger.Named("ibkr"),
		lifecycle:    make(chan struct{}, 1),
		summarySlots: make(chan struct{}, o.summarySlots),
	}
	if o.ownLogger {
		a.libLog = setLibraryLogger(o.logger)
	}
	a.closing, a.startClose = context.WithCancel(context.Background())
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

// Connect implements broker.Broker.
//
// It first dials the gateway itself (bounded by p.Timeout and ctx) to tell an
// unreachable gateway from a failed handshake, closes that probe, then runs
// scmhub's Connect in a goroutine. If the handshake does not finish in time the
// adapter shuts the socket's read side under scmhub, which makes Connect return,
// and closes the socket: nothing is left blocked or half-closed. After the
// handshake it waits, within the same bound, for MANAGED_ACCTS and
// NEXT_VALID_ID, or for error 326 (client id in use).
// An IPv6 host literal fails with broker.ErrUnsupported (scmhub dials IPv4
// only). p.ReadOnly is not sent: the TWS API has no read-only flag on the wire (it is a
// gateway setting), and this adapter never places orders.
func (a *Adapter) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if err := p.Validate(); err != nil {
		return broker.ConnectInfo{}, err
	}
	p = p.WithDefaults()
	if err := a.acquire(ctx); err != nil {
		return broker.ConnectInfo{}, err
	}
	defer a.release()

	a.mu.Lock()
	old := a.sess
	a.mu.Unlock()
	if old != nil {
		if old.deadError() == nil {
			return broker.ConnectInfo{}, fmt.Errorf("ibkr: connect: %w", broker.ErrAlreadyConnected)
		}
		old.waitDone(ctx, a.opts.teardownWait) // a dead session finishes on its own; let it
	}

	cctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	stop := context.AfterFunc(a.closing, cancel)
	defer stop()

	fail := func(err error) (broker.ConnectInfo, error) {
		switch {
		case a.closing.Err() != nil:
			err = errClosed
		case ctx.Err() != nil:
			err = fmt.Errorf("ibkr: connect: %w", ctx.Err())
		case cctx.Err() != nil:
			err = fmt.Errorf("ibkr: connect to %s: no handshake within %v: %w", p.Addr(), p.Timeout, broker.ErrTimeout)
		}
		a.log.Debug("connect failed", "addr", p.Addr(), "client_id", p.ClientID, "error", err)
		return broker.ConnectInfo{}, err
	}

	// 1. Probe: is anything accepting TCP connections there? scmhub resolves and
	// dials "tcp4" only (and formats host:port without brackets), so an IPv6
	// literal can never work: say so rather than call the gateway unreachable.
	if ip := net.ParseIP(strings.Trim(p.Host, "[]")); ip != nil && ip.To4() == nil {
		return fail(fmt.Errorf("ibkr: connect to %s: scmhub/ibapi dials IPv4 only (use 127.0.0.1 or an IPv4 address): %w",
			p.Addr(), broker.ErrUnsupported))
	}
	var d net.Dialer
	probe, err := d.DialContext(cctx, "tcp4", p.Addr())
	if err != nil {
		return fail(fmt.Errorf("ibkr: connect to %s: %w: %v", p.Addr(), broker.ErrGatewayUnreachable, err))
	}
	_ = probe.Close()

	// 2. Handshake through scmhub, under a watchdog.
	s := newSession(a)
	ec := ibapi.NewEClient(s)
	if a.opts.connectOptions != "" {
		ec.SetConnectionOptions(a.opts.connectOptions)
	}
	s.ec = ec
	s.conn = connectionOf(ec)
	if s.conn == nil || !setScanner(ec, s.conn, splitFrames(s.teeRaw)) {
		return fail(fmt.Errorf("ibkr: this scmhub/ibapi version's socket cannot be reached to enforce timeouts: %w", broker.ErrUnsupported))
	}
	result := make(chan error, 1)
	go func() {
		var err error
		if perr := guard(func() { err = ec.Connect(p.Host, p.Port, p.ClientID) }); perr != nil {
			a.log.Debug("scmhub Connect panicked", "error", perr, "stack", string(perr.(*errPanic).stack))
			err = perr
		}
		if s.abandoned.Load() {
			s.cleanupHandshake()
		}
		result <- err
	}()
	var cerr error
	select {
	case cerr = <-result:
	case <-cctx.Done():
		cerr = s.abortHandshake(result)
	}
	if !s.isAcked() {
		s.cleanupHandshake()
		switch {
		case cctx.Err() != nil:
			return fail(cctx.Err())
		case errors.Is(cerr, ibapi.CONNECT_FAIL):
			return fail(fmt.Errorf("ibkr: connect to %s: %w", p.Addr(), broker.ErrGatewayUnreachable))
		case errors.Is(cerr, ibapi.UNSUPPORTED_VERSION):
			return fail(fmt.Errorf("ibkr: connect to %s: unsupported server version: %w", p.Addr(), broker.ErrHandshakeFailed))
		case cerr != nil:
			return fail(fmt.Errorf("ibkr: connect to %s: %w: %v", p.Addr(), broker.ErrHandshakeFailed, cerr))
		default:
			return fail(fmt.Errorf("ibkr: connect to %s: gateway closed the connection during the handshake: %w", p.Addr(), broker.ErrHandshakeFailed))
		}
	}

	// 3. Send one REQ_CURRENT_TIME at once, then wait until the gateway has
	// named the accounts and the next order id, and has answered it. The round
	// trip proves the session answers; it also makes sure scmhub's request
	// goroutine has run (it writes the request) before the session can end:
	// scmhub registers that goroutine in its WaitGroup from inside it and its
	// teardown rewrites the WaitGroup, so ending a session before then would be
	// a data race inside scmhub.
	ping, perr := s.startPing(true)
	select {
	case <-s.ready:
	case <-s.refusedCh:
	case <-s.dead:
	case <-cctx.Done():
	}
	if rerr := s.refusal(); rerr != nil {
		// IB closes the socket about 300 ms after 326: let it, rather than
		// overtaking the request goroutine (see above).
		select {
		case <-s.done:
		case <-cctx.Done():
			s.shutdown(rerr)
		}
		s.waitDone(context.Background(), a.opts.teardownWait)
		return broker.ConnectInfo{}, fmt.Errorf("ibkr: connect to %s as client %d: %w", p.Addr(), p.ClientID, rerr)
	}
	if perr == nil {
		select {
		case <-ping.done:
		case <-s.dead:
		case <-cctx.Done():
		}
	}
	if !s.isReady() || cctx.Err() != nil || perr != nil || !isClosed(ping.done) {
		s.shutdown(errDisconnected)
		s.waitDone(context.Background(), a.opts.teardownWait)
		return fail(fmt.Errorf("ibkr: connect to %s: session ended before the gateway named its accounts and answered: %w", p.Addr(), broker.ErrHandshakeFailed))
	}

	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		s.shutdown(errClosed)
		s.waitDone(context.Background(), a.opts.teardownWait)
		return broker.ConnectInfo{}, errClosed
	}
	if err := s.establish(); err != nil {
		a.mu.Unlock()
		s.waitDone(context.Background(), a.opts.teardownWait)
		return fail(fmt.Errorf("ibkr: connect to %s: session ended right after the handshake: %w (%w)", p.Addr(), broker.ErrHandshakeFailed, err))
	}
	a.sess = s
	a.mu.Unlock()
	info := s.info()
	a.log.Debug("connected", "addr", p.Addr(), "client_id", p.ClientID, "server_version", info.ServerVersion, "accounts", info.Accounts)
	return info, nil
}

// Disconnect implements broker.Broker. It waits, within ctx, until scmhub's
// goroutines for the session have ended.
func (a *Adapter) Disconnect(ctx context.Context) error {
	if err := a.acquire(ctx); err != nil {
		return err
	}
	defer a.release()
	a.mu.Lock()
	s := a.sess
	a.sess = nil
	a.mu.Unlock()
	if s == nil {
		return nil
	}
	s.shutdown(errDisconnected)
	if err := s.waitDone(ctx, a.opts.teardownWait); err != nil {
		return fmt.Errorf("ibkr: disconnect: %w", err)
	}
	return nil
}

// Accounts implements broker.Broker: the accounts of the latest MANAGED_ACCTS.
func (a *Adapter) Accounts(ctx context.Context) ([]string, error) {
	s, err := a.live()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.info().Accounts, nil
}

// Positions implements broker.Broker with REQ_POSITIONS, collecting rows until
// POSITION_END.
//
// REQ_POSITIONS carries no request id, so two requests in flight could not be
// told apart. Calls made while a request is in flight therefore share it: each
// receives its own copy of the one complete list. When the last caller sharing
// it gives up (its ctx ends), the request is abandoned on the wire as well: the
// adapter stops collecting at once and sends CANCEL_POSITIONS. Once a request
// ends the adapter cancels it too, so no subscription stays open. A request
// after an earlier one is sent behind a REQ_CURRENT_TIME fence: rows and end
// markers that arrive before the fence's answer belong to the earlier request
// and are dropped, so a lost POSITION_END costs one call, never the session
// (see docs/adr/0007). A quantity scmhub reports as unset, a NaN cost, or an
// answer past the bound of WithMaxAnswer fails the call with broker.ErrProtocol.
func (a *Adapter) Positions(ctx context.Context) ([]broker.Position, error) {
	s, err := a.live()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pc, err := s.startPositions()
	if err != nil {
		return nil, err
	}
	select {
	case <-pc.done:
		if pc.err != nil {
			return nil, pc.err
		}
		return slices.Clone(pc.rows), nil
	case <-ctx.Done():
		s.leavePositions(pc)
		return nil, fmt.Errorf("ibkr: positions: %w", ctx.Err())
	case <-s.dead:
		return nil, s.deadError()
	}
}

// AccountSummary implements broker.Broker with REQ_ACCOUNT_SUMMARY (group
// "All") under a fresh request id, collecting rows until ACCOUNT_SUMMARY_END and
// then cancelling the subscription. If ctx ends first the request is cancelled
// with CANCEL_ACCOUNT_SUMMARY; late rows for its id are ignored. At most
// WithMaxConcurrentSummaries requests are open at once. An error the gateway
// reports for the request id fails the call with a *broker.APIError.
func (a *Adapter) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	if len(tags) == 0 {
		tags = broker.DefaultSummaryTags
	}
	for _, t := range tags {
		if t == "" || strings.ContainsAny(t, ",\x00") {
			return nil, fmt.Errorf("%w: summary tag %q", broker.ErrInvalidArgument, t)
		}
	}
	s, err := a.live()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case a.summarySlots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("ibkr: account summary: %w", ctx.Err())
	case <-s.dead:
		return nil, s.deadError()
	}
	defer func() { <-a.summarySlots }()

	id := a.reqIDs.Add(1)
	r, err := s.startSummary(id, strings.Join(tags, ","))
	if err != nil {
		return nil, err
	}
	select {
	case <-r.done:
		_ = s.sendLocked(cancelAccountSummary(id))
		if r.err != nil {
			return nil, fmt.Errorf("ibkr: account summary: %w", r.err)
		}
		return r.coll.result(), nil
	case <-ctx.Done():
		s.dropSummary(id)
		_ = s.sendLocked(cancelAccountSummary(id))
		return nil, fmt.Errorf("ibkr: account summary: %w", ctx.Err())
	case <-s.dead:
		return nil, s.deadError()
	}
}

// Ping implements broker.Broker with one REQ_CURRENT_TIME round trip.
// CURRENT_TIME carries no request id; the gateway answers requests in order, so
// waiters queue in send order and each answer releases the oldest still
// waiting. A waiter whose ctx ends leaves the queue at once: a lost answer
// costs that one Ping, never the later ones (a late answer may then release a
// newer Ping, which is still an answer on this session; see docs/adr/0007).
func (a *Adapter) Ping(ctx context.Context) error {
	s, err := a.live()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.roundTrip(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("ibkr: ping: %w", ctx.Err())
		}
		return err
	}
	return nil
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
