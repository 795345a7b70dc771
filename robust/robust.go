package robust

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/hashicorp/go-hclog"
)

// Dialer builds a fresh, disconnected inner Broker: for a transport, it starts a new
// child process. It must honour ctx and must not return a Broker with an error.
type Dialer func(ctx context.Context) (broker.Broker, error)

// Broker is a broker.Broker that keeps the session of the inner Brokers it dials
// alive. Like net/http's RoundTripper, it is safe for concurrent use by multiple
// goroutines, and it never changes what the caller passed: it retries a call with the
// caller's own arguments, and reconnects with the ConnectParams of the last
// successful Connect (only the client id may differ, by the ClientIDPolicy).
type Broker struct {
	dial Dialer
	cfg  config
	log  hclog.Logger
	hub  broker.Hub
	brk  *breaker

	life    chan struct{} // one slot: serializes Connect, Disconnect and recovery
	root    context.Context
	cancel  context.CancelFunc
	closing chan struct{} // closed by Close
	wg      sync.WaitGroup

	calls, failures, retries, restarts, reconnects atomic.Int64
	timeouts                                       atomic.Int64 // calls in a row that timed out (WithSickAfter)

	mu          sync.Mutex
	closed      bool
	state       State
	inner       broker.Broker
	innerStop   context.CancelFunc // stops watching inner
	gen         uint64             // incremented whenever a session is established
	sessionOK   bool               // the session of gen is usable
	wanted      bool               // the user's Connect succeeded and no Disconnect since
	needRestart bool               // recovery must replace the inner Broker
	conflicts   int                // consecutive 326 refusals
	params      broker.ConnectParams
	clientID    int64
	cause       error         // why the session is being restored
	changed     chan struct{} // closed and replaced on every change of state or session
	superStop   context.CancelFunc
	superDone   chan struct{}
	kick        chan struct{} // recovery needed
	probe       chan struct{} // health check now
	lastErr     error
	lastErrTime time.Time
	dialed      bool // an inner Broker was dialed before: later dials are restarts
	pending     []Change
	flushing    bool
}

var _ broker.Broker = (*Broker)(nil)

// New returns a disconnected Broker that builds its inner Brokers with dial. It dials
// nothing until Connect. Close it to release its goroutines and inner Broker.
func New(dial Dialer, opts ...Option) *Broker {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	root, cancel := context.WithCancel(context.Background())
	return &Broker{
		dial:    dial,
		cfg:     cfg,
		log:     cfg.logger.Named("robust"),
		brk:     &breaker{threshold: cfg.breakerThreshold, cooldown: cfg.breakerCooldown},
		life:    make(chan struct{}, 1),
		root:    root,
		cancel:  cancel,
		closing: make(chan struct{}),
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		probe:   make(chan struct{}, 1),
	}
}

// ---- the broker.Broker methods ----

// Connect dials an inner Broker if it holds none and connects it with p, retrying
// as broker.OpConnect allows (client id in use, gateway unreachable, timeouts,
// handshake failures), replacing the inner Broker when it stalls or dies. On success
// p is remembered for every later reconnection. Errors are those of the port, after
// "giving up after N attempt(s)" when retried; ErrInvalidArgument and
// ErrAlreadyConnected are returned at once.
func (b *Broker) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if err := p.Validate(); err != nil {
		return broker.ConnectInfo{}, err
	}
	p = p.WithDefaults()
	if err := b.preconnect(); err != nil {
		return broker.ConnectInfo{}, err
	}
	if err := b.lock(ctx); err != nil {
		return broker.ConnectInfo{}, err
	}
	defer b.unlock()
	b.mu.Lock()
	if err := b.preconnectLocked(); err != nil {
		b.mu.Unlock()
		return broker.ConnectInfo{}, err
	}
	b.conflicts = 0
	b.setStateLocked(StateConnecting, nil)
	b.unlockAndFlush()

	timeout := b.cfg.attemptTimeout
	if timeout > 0 {
		timeout = max(timeout, p.Timeout)
	}
	info, err := do(b, ctx, broker.OpConnect, timeout, func(actx context.Context) (broker.ConnectInfo, error) {
		return b.establish(actx, p, true)
	})
	if err != nil {
		b.mu.Lock()
		if b.state == StateConnecting {
			b.setStateLocked(StateDisconnected, err)
		}
		b.unlockAndFlush()
		return broker.ConnectInfo{}, err
	}
	b.log.Info("connected", "addr", p.Addr(), "client_id", b.Stats().ClientID, "server_version", info.ServerVersion)
	return info, nil
}

func (b *Broker) preconnect() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.preconnectLocked()
}

func (b *Broker) preconnectLocked() error {
	switch {
	case b.closed:
		return broker.ErrClosed
	case b.wanted:
		return broker.ErrAlreadyConnected
	}
	return nil
}

// Disconnect stops the supervisor, ends the session and leaves the inner Broker
// (the child process) running for a later Connect; an inner Broker that is dead is
// closed instead. Nothing reconnects afterwards. It is idempotent.
func (b *Broker) Disconnect(ctx context.Context) error {
	if err := b.stopWanting(); err != nil {
		return err
	}
	if err := b.lock(ctx); err != nil {
		return err
	}
	defer b.unlock()
	if err := b.stopWanting(); err != nil { // a Connect may have completed meanwhile
		return err
	}
	b.mu.Lock()
	in := b.inner
	b.mu.Unlock()
	var err error
	if in != nil {
		if err = in.Disconnect(ctx); err != nil && ctx.Err() == nil {
			b.log.Debug("inner disconnect failed; replacing the inner broker next time", "error", err)
			b.dropInner(in)
			err = nil
		}
	}
	b.mu.Lock()
	if !b.closed {
		b.setStateLocked(StateDisconnected, nil)
	}
	b.unlockAndFlush()
	if err != nil {
		return fmt.Errorf("robust: disconnect: %w", err)
	}
	return nil
}

// stopWanting marks the session unwanted and stops the supervisor, waiting for it.
func (b *Broker) stopWanting() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return broker.ErrClosed
	}
	b.wanted = false
	b.sessionOK = false
	stop, done := b.superStop, b.superDone
	b.superStop, b.superDone = nil, nil
	b.signalLocked()
	b.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	return nil
}

// Accounts returns the inner Broker's accounts, retrying as broker.OpAccounts allows.
func (b *Broker) Accounts(ctx context.Context) ([]string, error) {
	return call(b, ctx, broker.OpAccounts, func(ctx context.Context, in broker.Broker) ([]string, error) {
		return in.Accounts(ctx)
	})
}

// Positions returns the inner Broker's positions, retrying as broker.OpPositions allows.
func (b *Broker) Positions(ctx context.Context) ([]broker.Position, error) {
	return call(b, ctx, broker.OpPositions, func(ctx context.Context, in broker.Broker) ([]broker.Position, error) {
		return in.Positions(ctx)
	})
}

// AccountSummary returns the inner Broker's account summary, retrying as
// broker.OpAccountSummary allows.
func (b *Broker) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	return call(b, ctx, broker.OpAccountSummary, func(ctx context.Context, in broker.Broker) ([]broker.AccountSummary, error) {
		return in.AccountSummary(ctx, tags...)
	})
}

// Ping pings the gateway through the inner Broker, retrying as broker.OpPing allows.
func (b *Broker) Ping(ctx context.Context) error {
	_, err := call(b, ctx, broker.OpPing, func(ctx context.Context, in broker.Broker) (struct{}, error) {
		return struct{}{}, in.Ping(ctx)
	})
	return err
}

// Subscribe returns a channel of events: the inner Brokers' notices and IB
// connectivity events (1100, 1101, 1102), and this Broker's own EventConnectionLost
// and EventConnectionRestored when it loses and restores the session (Code 0).
func (b *Broker) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	return b.hub.Subscribe(ctx)
}

// Close stops the supervisor, closes the inner Broker (ending its child process) and
// every subscription. It is idempotent; other methods then fail with ErrClosed.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.wanted = false
	b.sessionOK = false
	in, stopWatch := b.inner, b.innerStop
	b.inner, b.innerStop = nil, nil
	if b.superStop != nil {
		b.superStop()
		b.superStop, b.superDone = nil, nil
	}
	b.setStateLocked(StateClosed, nil)
	b.unlockAndFlush()

	b.cancel()
	close(b.closing)
	if stopWatch != nil {
		stopWatch()
	}
	var err error
	if in != nil {
		err = in.Close()
	}
	b.wg.Wait()
	b.hub.Close()
	b.log.Debug("closed")
	if err != nil {
		return fmt.Errorf("robust: close inner broker: %w", err)
	}
	return nil
}

// State returns the current connection state.
func (b *Broker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Stats returns a snapshot of the counters and state.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	s := Stats{
		State:         b.state,
		LastError:     b.lastErr,
		LastErrorTime: b.lastErrTime,
		ClientID:      b.clientID,
	}
	if p, ok := b.inner.(PIDer); ok {
		s.WorkerPID = p.Pid()
	}
	b.mu.Unlock()
	s.Breaker = b.brk.current(b.cfg.clock.Now())
	s.Calls = b.calls.Load()
	s.Failures = b.failures.Load()
	s.Retries = b.retries.Load()
	s.Restarts = b.restarts.Load()
	s.Reconnects = b.reconnects.Load()
	return s
}

// ---- retries ----

// call runs f on the current session's inner Broker with retries.
func call[T any](b *Broker, ctx context.Context, op broker.Op, f func(context.Context, broker.Broker) (T, error)) (T, error) {
	if !b.isClosed() && !b.sessionWanted() {
		// No session is wanted (never connected, after Disconnect or a failed
		// Connect): the port's answer is ErrNotConnected, whatever the breaker says.
		b.calls.Add(1)
		return *new(T), broker.ErrNotConnected
	}
	var (
		last    broker.Broker // inner Broker of the last attempt that reached one
		lastGen uint64
		expired bool // the last attempt timed out and did not start a recovery
	)
	v, err := do(b, ctx, op, b.cfg.attemptTimeout, func(actx context.Context) (T, error) {
		var zero T
		last, expired = nil, false
		in, gen, err := b.acquire(actx)
		if err != nil {
			return zero, err
		}
		last, lastGen = in, gen
		v, err := f(actx, in)
		if err != nil && b.observe(in, gen, err, timedOut(actx)) {
			// The next attempt waits in acquire for the restored session; a backoff
			// on top would only delay the caller.
			last = nil
			err = sessionLostError{err}
		}
		expired = timedOut(actx)
		return v, err
	})
	if last != nil {
		b.countTimeouts(last, lastGen, err, expired)
	}
	return v, err
}

// permanentError marks an error that must be returned at once, not retried, and not
// counted by the breaker.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// sessionLostError marks a failure that started (or joined) a recovery: the retry
// needs no backoff because it waits for the new session.
type sessionLostError struct{ err error }

func (e sessionLostError) Error() string { return e.err.Error() }
func (e sessionLostError) Unwrap() error { return e.err }

// retryable reports whether err (from an inner Broker or a Dialer) may go away by
// itself, which makes it worth a retry and a failure for the breaker.
func retryable(err error) bool {
	var p permanentError
	switch {
	case errors.As(err, &p),
		dataError(err), // the same data would fail again
		errors.Is(err, broker.ErrInvalidArgument),
		errors.Is(err, broker.ErrUnsupported),
		errors.Is(err, broker.ErrAlreadyConnected):
		return false
	case errors.Is(err, broker.ErrUnavailable),
		errors.Is(err, broker.ErrNotConnected),
		errors.Is(err, broker.ErrTimeout),
		errors.Is(err, broker.ErrGatewayUnreachable),
		errors.Is(err, broker.ErrHandshakeFailed),
		errors.Is(err, broker.ErrClientIDInUse),
		errors.Is(err, broker.ErrProtocol),
		errors.Is(err, broker.ErrClosed):
		return true
	}
	// A gateway error with a code that means nothing above (no security definition,
	// invalid request, ...) is an answer, not an outage. Anything else (an I/O error a
	// transport did not map) is presumed transient.
	return broker.IBCode(err) == 0
}

// do runs attempt until it succeeds, fails permanently, the caller's context is done,
// or op has had its attempts; in between it waits a jittered backoff.
func do[T any](b *Broker, ctx context.Context, op broker.Op, timeout time.Duration, attempt func(context.Context) (T, error)) (T, error) {
	var zero T
	b.calls.Add(1)
	maxAttempts := 1
	if op.Idempotent() {
		maxAttempts = b.cfg.maxAttempts
	}
	var last error
	for n := 1; ; n++ {
		if b.isClosed() {
			return zero, broker.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return zero, canceled(err, n-1, last)
		}
		t, ok, tr := b.brk.allow(b.cfg.clock.Now())
		b.breakerChanged(tr, nil)
		if !ok {
			if last != nil {
				return zero, fmt.Errorf("giving up after %d attempt(s): %w (last error: %w)", n-1, ErrCircuitOpen, last)
			}
			return zero, ErrCircuitOpen
		}
		if n > 1 {
			b.retries.Add(1)
		}
		actx, cancel := withTimeout(ctx, b.cfg.clock, timeout)
		v, err := attempt(actx)
		expired := err != nil && ctx.Err() == nil && timedOut(actx)
		cancel()
		switch {
		case err == nil:
			b.breakerChanged(b.brk.done(t, outcomeSuccess, b.cfg.clock.Now()), nil)
			return v, nil
		case ctx.Err() != nil:
			b.breakerChanged(b.brk.done(t, outcomeNeutral, b.cfg.clock.Now()), nil)
			return zero, canceled(ctx.Err(), n, err)
		case expired:
			err = fmt.Errorf("%w: %s attempt timed out after %v (%v)", broker.ErrTimeout, op, timeout, err)
		}
		if b.isClosed() {
			b.breakerChanged(b.brk.done(t, outcomeNeutral, b.cfg.clock.Now()), nil)
			return zero, broker.ErrClosed
		}
		if !retryable(err) {
			b.breakerChanged(b.brk.done(t, outcomeNeutral, b.cfg.clock.Now()), nil)
			var p permanentError
			if errors.As(err, &p) {
				err = p.err
			}
			return zero, err
		}
		var lostErr sessionLostError
		waitForSession := errors.As(err, &lostErr)
		if waitForSession {
			err = lostErr.err
		}
		b.failures.Add(1)
		b.noteError(err)
		b.breakerChanged(b.brk.done(t, outcomeFailure, b.cfg.clock.Now()), err)
		last = err
		if n >= maxAttempts {
			return zero, fmt.Errorf("giving up after %d attempt(s): %w", n, err)
		}
		d := b.cfg.backoff.Delay(n, b.cfg.rand())
		if waitForSession {
			d = 0
		}
		b.log.Debug("retrying", "op", op, "attempt", n, "wait", d, "error", err)
		if serr := sleep(ctx, b.cfg.clock, d, b.closing); serr != nil {
			if errors.Is(serr, errStopped) {
				return zero, broker.ErrClosed
			}
			return zero, canceled(serr, n, last)
		}
	}
}

// canceled builds the error of a call whose context ended: it matches ctxErr.
func canceled(ctxErr error, attempts int, last error) error {
	switch {
	case last == nil:
		return ctxErr
	case errors.Is(last, ctxErr):
		return last
	}
	return fmt.Errorf("%w after %d attempt(s) (last error: %v)", ctxErr, attempts, last)
}

// ---- the session ----

// acquire returns the inner Broker of the current session, waiting (within ctx) while
// the session is being restored.
func (b *Broker) acquire(ctx context.Context) (broker.Broker, uint64, error) {
	for {
		b.mu.Lock()
		switch {
		case b.closed:
			b.mu.Unlock()
			return nil, 0, permanent(broker.ErrClosed)
		case !b.wanted:
			b.mu.Unlock()
			return nil, 0, permanent(broker.ErrNotConnected)
		case b.sessionOK && b.inner != nil:
			in, gen := b.inner, b.gen
			b.mu.Unlock()
			return in, gen, nil
		}
		ch, cause := b.changed, b.cause
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			if cause == nil {
				cause = errors.New("session lost")
			}
			return nil, 0, fmt.Errorf("%w: reconnecting: %v", broker.ErrUnavailable, cause)
		}
	}
}

// countTimeouts counts calls in a row (not attempts: a call counts once, after
// its retries) that timed out on a session still deemed up, and recovers the session as a lost one after WithSickAfter of them: an
// operation wedged on the gateway side (a lost end marker, say) is invisible to
// health pings, which are answered.
func (b *Broker) countTimeouts(in broker.Broker, gen uint64, err error, expired bool) {
	switch {
	case err == nil:
		b.timeouts.Store(0)
	case expired, errors.Is(err, broker.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		n := b.timeouts.Add(1)
		if n < int64(b.cfg.sickAfter) {
			return
		}
		b.timeouts.Store(0)
		b.log.Warn("calls keep timing out while the session is up: recovering it", "calls", n, "last_error", err)
		b.lost(in, gen, fmt.Errorf("%w: %d calls in a row timed out (last: %v)", broker.ErrNotConnected, n, err), false)
	}
}

// dataError reports whether err is a protocol error of one call's data (a
// malformed value) rather than of the session: the session goes on.
func dataError(err error) bool {
	return errors.Is(err, broker.ErrProtocol) && !errors.Is(err, broker.ErrNotConnected) &&
		!errors.Is(err, broker.ErrUnavailable)
}

// observe looks at an inner Broker's failure and asks for recovery if it says the
// session or the inner Broker is gone (and then reports true), or for a health check
// if the call timed out. A data error (dataError) is the call's alone.
func (b *Broker) observe(in broker.Broker, gen uint64, err error, expired bool) bool {
	switch {
	case expired:
		select {
		case b.probe <- struct{}{}:
		default:
		}
	case errors.Is(err, broker.ErrUnavailable), errors.Is(err, broker.ErrClosed):
		b.lost(in, gen, err, true)
		return true
	case errors.Is(err, broker.ErrNotConnected): // a session-ending protocol error carries it too
		b.lost(in, gen, err, false)
		return true
	}
	return false
}

// lost marks the session of (in, gen) lost and wakes the supervisor; restart says the
// inner Broker itself must be replaced. It ignores news about an older session.
func (b *Broker) lost(in broker.Broker, gen uint64, cause error, restart bool) {
	b.mu.Lock()
	if b.closed || !b.wanted || b.inner != in || (gen != 0 && gen != b.gen) {
		b.mu.Unlock()
		return
	}
	if !b.sessionOK {
		b.needRestart = b.needRestart || restart || !b.cfg.inPlace
		b.mu.Unlock()
		return
	}
	restart = restart || !b.cfg.inPlace
	b.sessionOK = false
	b.needRestart = restart
	b.cause = cause
	b.setStateLocked(StateReconnecting, cause)
	// Published under b.mu (Publish never blocks), so that it cannot be overtaken
	// by the EventConnectionRestored of the session that replaces this one.
	b.hub.Publish(broker.Event{
		Kind:    broker.EventConnectionLost,
		Time:    b.cfg.clock.Now(),
		Message: fmt.Sprintf("robust: session lost (%v); reconnecting", cause),
	})
	b.unlockAndFlush()
	b.log.Warn("session lost; reconnecting", "restart", restart, "error", cause)
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// establish makes one attempt to open a session with p: it dials an inner Broker if
// needed (or if the last attempt left it suspect), connects it, and on success makes
// it the current session. user says the caller is Connect rather than recovery.
func (b *Broker) establish(ctx context.Context, p broker.ConnectParams, user bool) (broker.ConnectInfo, error) {
	b.mu.Lock()
	in, restart, conflicts := b.inner, b.needRestart, b.conflicts
	b.mu.Unlock()
	fresh := false
	if in == nil || restart || exited(in) {
		if in != nil {
			b.dropInner(in)
		}
		var err error
		if in, err = b.dialInner(ctx); err != nil {
			return broker.ConnectInfo{}, err
		}
		fresh = true
	} else if !user {
		// Reuse after a loss: make sure the inner Broker forgets the old session.
		if err := in.Disconnect(ctx); err != nil {
			b.markRestart()
			return broker.ConnectInfo{}, fmt.Errorf("robust: reset inner broker: %w", err)
		}
	}
	q := p
	q.ClientID = b.cfg.clientID(p.ClientID, conflicts)
	info, err := in.Connect(ctx, q)
	if err != nil {
		b.mu.Lock()
		switch {
		case errors.Is(err, broker.ErrClientIDInUse):
			b.conflicts++
		case errors.Is(err, broker.ErrGatewayUnreachable), errors.Is(err, broker.ErrInvalidArgument):
			// the inner Broker is fine; the gateway is not there
		case errors.Is(err, broker.ErrAlreadyConnected):
			b.mu.Unlock()
			_ = in.Disconnect(ctx)
			return broker.ConnectInfo{}, fmt.Errorf("robust: inner broker was still connected; reset it: %w", broker.ErrUnavailable)
		case errors.Is(err, broker.ErrUnavailable), errors.Is(err, broker.ErrClosed):
			// a dead worker: the next attempt dials a fresh one without waiting
			b.needRestart = true
			err = sessionLostError{err}
		default:
			// stalled or failed handshake: start afresh next time
			b.needRestart = true
		}
		b.mu.Unlock()
		return broker.ConnectInfo{}, err
	}
	b.mu.Lock()
	if b.closed || b.inner != in || (!user && !b.wanted) {
		closed := b.closed
		b.mu.Unlock()
		_ = in.Disconnect(context.WithoutCancel(ctx))
		if closed {
			return broker.ConnectInfo{}, permanent(broker.ErrClosed)
		}
		return broker.ConnectInfo{}, permanent(broker.ErrNotConnected)
	}
	b.gen++
	b.sessionOK = true
	b.needRestart = false
	b.conflicts = 0
	b.cause = nil
	b.params = p
	b.clientID = q.ClientID
	reconnected := b.wanted
	if reconnected {
		b.reconnects.Add(1) // before anyone can be served by the new session
	}
	if user {
		b.wanted = true
		b.startSupervisorLocked()
	}
	b.setStateLocked(StateConnected, nil)
	if reconnected { // under b.mu: ordered after the EventConnectionLost it answers
		b.hub.Publish(broker.Event{
			Kind:    broker.EventConnectionRestored,
			Time:    b.cfg.clock.Now(),
			Message: "robust: session restored",
		})
	}
	b.signalLocked()
	b.unlockAndFlush()
	if reconnected {
		b.log.Info("session restored", "fresh_inner", fresh, "client_id", q.ClientID)
	}
	return info, nil
}

func (b *Broker) markRestart() {
	b.mu.Lock()
	b.needRestart = true
	b.mu.Unlock()
}

func exited(in broker.Broker) bool {
	e, ok := in.(Exiter)
	if !ok {
		return false
	}
	select {
	case <-e.Exited():
		return true
	default:
		return false
	}
}

// dialInner dials a fresh inner Broker and makes it current.
func (b *Broker) dialInner(ctx context.Context) (broker.Broker, error) {
	in, err := b.dial(ctx)
	if err != nil {
		if !errors.Is(err, broker.ErrInvalidArgument) && !errors.Is(err, broker.ErrUnavailable) && ctx.Err() == nil {
			err = fmt.Errorf("%w: dial: %w", broker.ErrUnavailable, err)
		}
		return nil, err
	}
	if in == nil {
		return nil, fmt.Errorf("%w: dialer returned no broker", broker.ErrUnavailable)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = in.Close()
		return nil, permanent(broker.ErrClosed)
	}
	wctx, stop := context.WithCancel(b.root)
	ch, serr := in.Subscribe(wctx)
	if serr != nil {
		b.log.Warn("cannot subscribe to the inner broker's events", "error", serr)
	}
	b.inner, b.innerStop = in, stop
	b.needRestart = false
	first := !b.dialed
	b.dialed = true
	b.wg.Add(1)
	go b.watch(wctx, in, ch)
	b.mu.Unlock()
	if !first {
		b.restarts.Add(1)
	}
	b.log.Debug("dialed inner broker", "pid", pidOf(in))
	return in, nil
}

func pidOf(in broker.Broker) int {
	if p, ok := in.(PIDer); ok {
		return p.Pid()
	}
	return 0
}

// dropInner closes in if it is still the current inner Broker.
func (b *Broker) dropInner(in broker.Broker) {
	b.mu.Lock()
	if b.inner != in {
		b.mu.Unlock()
		return
	}
	stop := b.innerStop
	b.inner, b.innerStop = nil, nil
	b.sessionOK = false
	// Close the old inner Broker in the background: a transport's Close may wait a
	// grace period for a stuck child, and the replacement should not wait with it.
	// Close waits for it (the Add happens before Close can start waiting).
	async := !b.closed
	if async {
		b.wg.Add(1)
	}
	b.mu.Unlock()
	if stop != nil {
		stop()
	}
	closeInner := func() {
		if err := in.Close(); err != nil {
			b.log.Debug("closing the old inner broker", "error", err)
		}
	}
	if !async {
		closeInner()
		return
	}
	go func() {
		defer b.wg.Done()
		closeInner()
	}()
}

// watch forwards in's events and turns its death into a recovery.
func (b *Broker) watch(ctx context.Context, in broker.Broker, ch <-chan broker.Event) {
	defer b.wg.Done()
	var died <-chan struct{}
	if e, ok := in.(Exiter); ok {
		died = e.Exited()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-died:
			died = nil
			b.lost(in, 0, fmt.Errorf("%w: worker exited", broker.ErrUnavailable), true)
		case e, ok := <-ch:
			if !ok {
				if ctx.Err() == nil {
					b.lost(in, 0, fmt.Errorf("%w: inner broker's event stream ended", broker.ErrUnavailable), true)
				}
				ch = nil
				if died == nil {
					return
				}
				continue
			}
			b.onEvent(in, e)
		}
	}
}

// IB codes of gateway connectivity.
const (
	codeIBLost             = 1100
	codeIBRestoredDataLost = 1101
	codeIBRestoredDataKept = 1102
)

func (b *Broker) onEvent(in broker.Broker, e broker.Event) {
	switch {
	case e.Kind == broker.EventConnectionLost && e.Code == codeIBLost:
		// The gateway lost IB; our socket is fine and the gateway reconnects by itself.
		b.mu.Lock()
		if b.inner == in && b.sessionOK && b.state == StateConnected {
			b.setStateLocked(StateReconnecting, broker.ErrorFromCode("not_connected", e.Message, e.Code))
		}
		b.unlockAndFlush()
		b.hub.Publish(e)
	case e.Kind == broker.EventConnectionLost:
		// The socket to the gateway is gone: our own event says so once recovery starts.
		b.lost(in, 0, fmt.Errorf("%w: %s", broker.ErrNotConnected, e.Message), false)
	case e.Kind == broker.EventConnectionRestored && (e.Code == codeIBRestoredDataLost || e.Code == codeIBRestoredDataKept):
		b.mu.Lock()
		if b.inner == in && b.sessionOK && b.state == StateReconnecting {
			b.setStateLocked(StateConnected, nil)
		}
		b.unlockAndFlush()
		b.hub.Publish(e)
	default:
		b.hub.Publish(e)
	}
}

// ---- the supervisor ----

func (b *Broker) startSupervisorLocked() {
	ctx, stop := context.WithCancel(b.root)
	done := make(chan struct{})
	b.superStop, b.superDone = stop, done
	b.wg.Add(1)
	go b.supervise(ctx, done)
}

// supervise restores lost sessions and runs the health monitor until ctx is done.
func (b *Broker) supervise(ctx context.Context, done chan struct{}) {
	defer b.wg.Done()
	defer close(done)
	misses := 0
	var tick Timer
	arm := func() {
		if tick != nil {
			tick.Stop()
		}
		if b.cfg.healthInterval > 0 {
			tick = b.cfg.clock.NewTimer(b.cfg.healthInterval)
		}
	}
	tickC := func() <-chan time.Time {
		if tick == nil {
			return nil
		}
		return tick.C()
	}
	arm()
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	for {
		if b.needsRecovery() {
			b.recover(ctx)
			misses = 0
			arm()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		case <-b.probe:
			misses = b.check(ctx, misses)
		case <-tickC():
			misses = b.check(ctx, misses)
			arm()
		}
	}
}

// sessionWanted reports whether the user's Connect succeeded with no Disconnect since.
func (b *Broker) sessionWanted() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wanted
}

func (b *Broker) needsRecovery() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.closed && b.wanted && !b.sessionOK
}

// check pings the session once and returns the updated count of missed pings.
func (b *Broker) check(ctx context.Context, misses int) int {
	b.mu.Lock()
	in, gen, ok := b.inner, b.gen, b.sessionOK && b.wanted
	b.mu.Unlock()
	if !ok || in == nil {
		return misses
	}
	pctx, cancel := withTimeout(ctx, b.cfg.clock, b.cfg.healthTimeout)
	err := in.Ping(pctx)
	expired := err != nil && ctx.Err() == nil && timedOut(pctx)
	cancel()
	switch {
	case err == nil:
		return 0
	case ctx.Err() != nil:
		return misses
	case expired || errors.Is(err, broker.ErrTimeout):
		misses++
		b.log.Warn("health ping missed", "misses", misses, "of", b.cfg.healthMisses)
		if misses >= b.cfg.healthMisses {
			b.lost(in, gen, fmt.Errorf("%w: %d health ping(s) missed", broker.ErrUnavailable, misses), true)
			return 0
		}
		select { // check again soon rather than after a whole interval
		case b.probe <- struct{}{}:
		default:
		}
		return misses
	default:
		b.observe(in, gen, err, false)
		return misses
	}
}

// recover re-establishes the session with the last parameters, with backoff, until it
// succeeds, the session is no longer wanted, or ctx is done.
func (b *Broker) recover(ctx context.Context) {
	if err := b.lock(ctx); err != nil {
		return
	}
	defer b.unlock()
	for n := 1; ; n++ {
		b.mu.Lock()
		if b.closed || !b.wanted || b.sessionOK {
			b.mu.Unlock()
			return
		}
		p := b.params
		b.mu.Unlock()
		timeout := b.cfg.attemptTimeout
		if timeout > 0 {
			timeout = max(timeout, p.Timeout)
		}
		actx, cancel := withTimeout(ctx, b.cfg.clock, timeout)
		_, err := b.establish(actx, p, false)
		expired := err != nil && ctx.Err() == nil && timedOut(actx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		if expired {
			b.markRestart()
			err = fmt.Errorf("%w: reconnect attempt timed out after %v (%v)", broker.ErrTimeout, timeout, err)
		}
		b.noteError(err)
		b.mu.Lock()
		b.cause = err
		b.mu.Unlock()
		d := b.cfg.backoff.Delay(n, b.cfg.rand())
		b.log.Warn("reconnect failed", "attempt", n, "wait", d, "error", err)
		if sleep(ctx, b.cfg.clock, d, b.closing) != nil {
			return
		}
	}
}

// ---- small helpers ----

// lock takes the lifecycle slot, or fails when ctx is done or the Broker closes.
func (b *Broker) lock(ctx context.Context) error {
	select {
	case b.life <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closing:
		return broker.ErrClosed
	}
}

func (b *Broker) unlock() { <-b.life }

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *Broker) noteError(err error) {
	b.mu.Lock()
	b.lastErr, b.lastErrTime = err, b.cfg.clock.Now()
	b.mu.Unlock()
}

// signalLocked wakes everyone waiting for a change.
func (b *Broker) signalLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// setStateLocked changes the connection state and queues the hook's notification.
func (b *Broker) setStateLocked(s State, cause error) {
	if s == b.state {
		return
	}
	br := b.brk.current(b.cfg.clock.Now())
	b.pending = append(b.pending, Change{
		Time: b.cfg.clock.Now(), From: b.state, To: s, BreakerFrom: br, Breaker: br, Err: cause,
	})
	b.state = s
	b.signalLocked()
}

// breakerChanged queues the hook's notification of a breaker transition.
func (b *Broker) breakerChanged(tr *transition, cause error) {
	if tr == nil {
		return
	}
	b.mu.Lock()
	b.pending = append(b.pending, Change{
		Time: b.cfg.clock.Now(), From: b.state, To: b.state, BreakerFrom: tr.from, Breaker: tr.to, Err: cause,
	})
	b.unlockAndFlush()
	if tr.to == BreakerOpen {
		b.log.Warn("circuit breaker open", "error", cause)
	} else {
		b.log.Info("circuit breaker "+tr.to.String(), "from", tr.from.String())
	}
}

// unlockAndFlush releases b.mu and delivers queued hook notifications in order.
// Only one goroutine delivers at a time; others leave their notifications to it, so
// the hook may itself call into the Broker.
func (b *Broker) unlockAndFlush() {
	if b.cfg.hook == nil {
		b.pending = nil
		b.mu.Unlock()
		return
	}
	if b.flushing {
		b.mu.Unlock()
		return
	}
	b.flushing = true
	for len(b.pending) > 0 {
		c := b.pending[0]
		b.pending = b.pending[1:]
		b.mu.Unlock()
		b.cfg.hook(c)
		b.mu.Lock()
	}
	b.flushing = false
	b.mu.Unlock()
}
