package robust

import (
	"context"
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

	mu     sync.Mutex // guards the fields below
	closed bool
	state  State

	// The session (session.go): the inner Broker and what it takes to restore it.
	inner       broker.Broker
	innerStop   context.CancelFunc // stops watching inner
	gen         uint64             // incremented whenever a session is established
	dataLost    uint64             // IB 1101s (market data lost) seen on current sessions (quotes.go)
	sessionOK   bool               // the session of gen is usable
	wanted      bool               // the user's Connect succeeded and no Disconnect since
	needRestart bool               // recovery must replace the inner Broker
	conflicts   int                // consecutive 326 refusals
	params      broker.ConnectParams
	clientID    int64
	cause       error         // why the session is being restored
	changed     chan struct{} // closed and replaced on every change of state or session
	dialed      bool          // an inner Broker was dialed before: later dials are restarts
	lastErr     error
	lastErrTime time.Time

	// The supervisor (supervisor.go).
	superStop context.CancelFunc
	superDone chan struct{}
	kick      chan struct{} // recovery needed
	probe     chan struct{} // health check now

	// Orders by key (orders_place.go).
	keys orderKeys

	// Notifications to the hook (notify.go).
	pending  []Change
	flushing bool
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

// ContractDetails returns the inner Broker's contract details, retrying as broker.OpContractDetails allows.
func (b *Broker) ContractDetails(ctx context.Context, c broker.Contract) ([]broker.ContractDetails, error) {
	return call(b, ctx, broker.OpContractDetails, func(ctx context.Context, in broker.Broker) ([]broker.ContractDetails, error) {
		return in.ContractDetails(ctx, c)
	})
}

// Snapshot returns the inner Broker's snapshot of c, retrying as broker.OpSnapshot allows.
func (b *Broker) Snapshot(ctx context.Context, c broker.Contract) (broker.Quote, error) {
	return call(b, ctx, broker.OpSnapshot, func(ctx context.Context, in broker.Broker) (broker.Quote, error) {
		return in.Snapshot(ctx, c)
	})
}

// HistoricalBars returns the inner Broker's bars, retrying as broker.OpHistoricalBars allows.
func (b *Broker) HistoricalBars(ctx context.Context, c broker.Contract, r broker.BarsRequest) ([]broker.Bar, error) {
	return call(b, ctx, broker.OpHistoricalBars, func(ctx context.Context, in broker.Broker) ([]broker.Bar, error) {
		return in.HistoricalBars(ctx, c, r)
	})
}

// SetMarketDataType sets the inner Broker's market data type, retrying as
// broker.OpSetMarketDataType allows. A replacement session starts live again
// (see broker.Broker.SetMarketDataType).
func (b *Broker) SetMarketDataType(ctx context.Context, t broker.MarketDataType) error {
	_, err := call(b, ctx, broker.OpSetMarketDataType, func(ctx context.Context, in broker.Broker) (struct{}, error) {
		return struct{}{}, in.SetMarketDataType(ctx, t)
	})
	return err
}

// AccountUpdates returns the inner Broker's account updates, retrying as
// broker.OpAccountUpdates allows.
func (b *Broker) AccountUpdates(ctx context.Context, account string) (broker.AccountUpdate, error) {
	return call(b, ctx, broker.OpAccountUpdates, func(ctx context.Context, in broker.Broker) (broker.AccountUpdate, error) {
		return in.AccountUpdates(ctx, account)
	})
}

// Executions returns the inner Broker's executions, retrying as broker.OpExecutions allows.
func (b *Broker) Executions(ctx context.Context, f broker.ExecutionFilter) ([]broker.Execution, error) {
	return call(b, ctx, broker.OpExecutions, func(ctx context.Context, in broker.Broker) ([]broker.Execution, error) {
		return in.Executions(ctx, f)
	})
}

// OpenOrders returns the inner Broker's open orders, retrying as broker.OpOpenOrders allows.
func (b *Broker) OpenOrders(ctx context.Context) ([]broker.Order, error) {
	return call(b, ctx, broker.OpOpenOrders, func(ctx context.Context, in broker.Broker) ([]broker.Order, error) {
		return in.OpenOrders(ctx)
	})
}

// CompletedOrders returns the inner Broker's completed orders, retrying as
// broker.OpCompletedOrders allows.
func (b *Broker) CompletedOrders(ctx context.Context) ([]broker.Order, error) {
	return call(b, ctx, broker.OpCompletedOrders, func(ctx context.Context, in broker.Broker) ([]broker.Order, error) {
		return in.CompletedOrders(ctx)
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
