// Package mutants holds deliberately broken Brokers for the conformance kit's
// mutation tests: each wraps a correct Broker (the in-process ibkr adapter in
// the kit's tests) and breaks exactly one sentence of the broker.Broker
// contract, the way a plausible bug would. conformance's mutants_test.go runs
// the cases each mutant names through conformance.Record and fails unless
// every one of them fails; conformance/CONTRACT.md is the table of sentences,
// cases and mutants. It is a test helper only.
package mutants

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// Sentence is one sentence of the broker.Broker contract.
type Sentence struct {
	ID   string // short id used by CONTRACT.md and Mutant.Sentence
	Text string // the sentence, abridged
}

// Sentences lists every sentence of the contract in broker/broker.go, in order.
var Sentences = []Sentence{
	{"concurrent", "A Broker is safe for concurrent use by multiple goroutines."},
	{"ctx-prompt", "When the context is done before the call completes, the call returns promptly ..."},
	{"ctx-error", "... with an error for which errors.Is reports ctx.Err() ..."},
	{"ctx-usable", "... and the Broker stays usable for other and later calls."},
	{"new-disconnected", "A new Broker is disconnected."},
	{"connect-establishes", "Connect establishes the session; Disconnect ends it and may be followed by another Connect."},
	{"close-releases", "Close releases everything the Broker holds (sockets, goroutines, child processes)."},
	{"closed-errors", "After Close every method returns an error for which errors.Is reports ErrClosed."},
	{"api-error", "Errors reported by the gateway carry an *APIError with IB's numeric code."},
	{"connect-info", "Connect returns the managed accounts and the negotiated server version."},
	{"connect-invalid", "Connect fails with ErrInvalidArgument if p is invalid."},
	{"connect-already", "Connect fails with ErrAlreadyConnected if a session is open."},
	{"connect-unreachable", "Connect fails with ErrGatewayUnreachable if nothing accepts the TCP connection."},
	{"connect-timeout", "Connect fails with ErrTimeout if the handshake does not complete within p.Timeout."},
	{"connect-handshake", "Connect fails with ErrHandshakeFailed if the gateway closes or answers nonsense during the handshake."},
	{"connect-clientid", "Connect fails with ErrClientIDInUse if the gateway refuses p.ClientID (IB code 326)."},
	{"connect-failed-clean", "A failed Connect leaves the Broker disconnected, holding no socket."},
	{"disconnect-socket", "Disconnect ends the session and closes the socket to the gateway."},
	{"disconnect-idempotent", "Disconnect is idempotent: disconnecting a disconnected Broker returns nil."},
	{"accounts-order", "Accounts returns the accounts managed by this session, in the gateway's order."},
	{"accounts-notconnected", "Accounts fails with ErrNotConnected if there is no session."},
	{"positions-every", "Positions returns every position of every managed account ..."},
	{"positions-order", "... in the order the gateway reported them ..."},
	{"positions-end", "... once the gateway has signalled the end of the list."},
	{"positions-notconnected", "Positions fails with ErrNotConnected if there is no session."},
	{"summary-tags", "AccountSummary returns the summary values of every managed account for the given tags ..."},
	{"summary-default", "... (DefaultSummaryTags when none are given) ..."},
	{"summary-per-account", "... one AccountSummary per account ..."},
	{"summary-order", "... in the order the gateway first named each account."},
	{"summary-notconnected", "AccountSummary fails with ErrNotConnected if there is no session."},
	{"ping-roundtrip", "Ping makes one round trip to the gateway (REQ_CURRENT_TIME) and returns nil if it answered."},
	{"ping-notconnected", "Ping fails with ErrNotConnected if there is no session."},
	{"subscribe-events", "Subscribe returns a channel of events (connection lost and restored, gateway notices)."},
	{"subscribe-ctx", "The channel is closed when ctx is done ..."},
	{"subscribe-close", "... or the Broker is closed."},
	{"subscribe-besteffort", "Delivery is best effort: a subscriber that does not keep up loses events rather than slowing the Broker."},
	{"subscribe-closed", "Subscribe on a closed Broker fails with ErrClosed."},
	{"close-disconnects", "Close disconnects if needed and releases every resource."},
	{"close-idempotent", "Close is idempotent."},
	{"close-concurrent", "Close is safe to call concurrently with other methods, which then fail with ErrClosed."},
}

// Env is what a mutant may use besides the Broker it wraps.
type Env struct {
	Addr string          // the case's fake gateway, "127.0.0.1:PORT"
	Done <-chan struct{} // closed once the case has ended: release what the mutant leaked
	Hold func(io.Closer) // keeps c open until the case has ended, without a goroutine
}

// Mutant is one broken Broker.
type Mutant struct {
	Name     string   // what the bug is
	Sentence string   // the Sentence.ID it breaks
	Kills    []string // the cases (conformance.Case.Name) that must each fail
	Wrap     func(b broker.Broker, env Env) broker.Broker
}

// All returns every mutant.
func All() []Mutant {
	w := func(f func(broker.Broker) broker.Broker) func(broker.Broker, Env) broker.Broker {
		return func(b broker.Broker, _ Env) broker.Broker { return f(b) }
	}
	return []Mutant{
		{"crossed summary answers", "concurrent", []string{"Concurrent"}, w(func(b broker.Broker) broker.Broker { return &crossedSummary{Broker: b} })},

		{"Positions ignores ctx", "ctx-prompt", []string{"Cancellation", "CancelMidCall", "ExpiredDeadline"}, w(func(b broker.Broker) broker.Broker { return ignoresCtx{b, "Positions"} })},
		{"AccountSummary ignores ctx", "ctx-prompt", []string{"CancelMidCall", "ExpiredDeadline"}, w(func(b broker.Broker) broker.Broker { return ignoresCtx{b, "AccountSummary"} })},
		{"Ping ignores ctx", "ctx-prompt", []string{"CancelMidCall", "ExpiredDeadline"}, w(func(b broker.Broker) broker.Broker { return ignoresCtx{b, "Ping"} })},
		{"Connect ignores ctx", "ctx-prompt", []string{"CancelMidCall", "ExpiredDeadline"}, w(func(b broker.Broker) broker.Broker { return ignoresCtx{b, "Connect"} })},
		{"goroutine leaked per cancelled call", "ctx-prompt", []string{"CancelledContext", "CancelMidCall", "ExpiredDeadline"}, func(b broker.Broker, env Env) broker.Broker { return leaksOnCancel{b, env.Done, nil, false} }},
		{"file leaked per cancelled call", "ctx-prompt", []string{"CancelledContext", "CancelMidCall", "ExpiredDeadline"}, func(b broker.Broker, env Env) broker.Broker { return leaksOnCancel{b, env.Done, env.Hold, true} }},
		{"ctx error reported as ErrTimeout", "ctx-error", []string{"Cancellation", "CancelledContext", "CancelMidCall", "ExpiredDeadline"}, w(func(b broker.Broker) broker.Broker { return ctxAsTimeout{b} })},
		{"Ping succeeds with a done ctx", "ctx-error", []string{"Cancellation", "CancelledContext"}, w(func(b broker.Broker) broker.Broker { return pingIgnoresDone{b} })},
		{"session dropped after a cancelled call", "ctx-usable", []string{"Cancellation"}, w(func(b broker.Broker) broker.Broker { return breaksOnCancel{b} })},

		{"new Broker pretends a session", "new-disconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return &pretendsConnected{Broker: b} })},
		{"Connect after Disconnect refused", "connect-establishes", []string{"Reconnect"}, w(func(b broker.Broker) broker.Broker { return &noReconnect{Broker: b} })},
		{"Disconnect does nothing", "connect-establishes", []string{"NotConnected", "Reconnect"}, w(func(b broker.Broker) broker.Broker { return disconnectNoop{b} })},
		{"goroutine left by Close", "close-releases", []string{"Close"}, func(b broker.Broker, env Env) broker.Broker { return leaksOnClose{b, env.Done} }},
		{"socket left by Close", "close-releases", []string{"Close"}, func(b broker.Broker, env Env) broker.Broker {
			return &sideSocket{Broker: b, env: env, keepOnClose: true}
		}},
		{"ErrNotConnected after Close", "closed-errors", []string{"Close"}, w(func(b broker.Broker) broker.Broker { return forgetsClosed{b} })},
		{"326 without its APIError", "api-error", []string{"ClientIDInUse"}, w(func(b broker.Broker) broker.Broker { return stripsAPIError{b} })},

		{"wrong server version", "connect-info", []string{"Connect"}, w(func(b broker.Broker) broker.Broker { return connectInfo{b, false} })},
		{"ConnectInfo accounts sorted", "connect-info", []string{"Connect"}, w(func(b broker.Broker) broker.Broker { return connectInfo{b, true} })},
		{"invalid params reported as unreachable", "connect-invalid", []string{"InvalidParams"}, w(func(b broker.Broker) broker.Broker {
			return connectErr{b, func(err error, p broker.ConnectParams) error {
				if p.Validate() != nil {
					return fmt.Errorf("mutant: %w", broker.ErrGatewayUnreachable)
				}
				return err
			}}
		})},
		{"second Connect succeeds", "connect-already", []string{"AlreadyConnected"}, w(func(b broker.Broker) broker.Broker { return connectErr{b, remap(broker.ErrAlreadyConnected, nil)} })},
		{"unreachable reported as timeout", "connect-unreachable", []string{"Unreachable"}, w(func(b broker.Broker) broker.Broker {
			return connectErr{b, remap(broker.ErrGatewayUnreachable, broker.ErrTimeout)}
		})},
		{"timeout reported as handshake failure", "connect-timeout", []string{"StalledHandshake"}, w(func(b broker.Broker) broker.Broker {
			return connectErr{b, remap(broker.ErrTimeout, broker.ErrHandshakeFailed)}
		})},
		{"p.Timeout ignored", "connect-timeout", []string{"StalledHandshake"}, w(func(b broker.Broker) broker.Broker { return ignoresTimeout{b} })},
		{"handshake failure reported as unreachable", "connect-handshake", []string{"CloseBeforeHandshake"}, w(func(b broker.Broker) broker.Broker {
			return connectErr{b, remap(broker.ErrHandshakeFailed, broker.ErrGatewayUnreachable)}
		})},
		{"326 reported as handshake failure", "connect-clientid", []string{"ClientIDInUse"}, w(func(b broker.Broker) broker.Broker {
			return connectErr{b, remap(broker.ErrClientIDInUse, broker.ErrHandshakeFailed)}
		})},
		{"failed Connect leaves a session behind", "connect-failed-clean", []string{"StalledHandshake"}, w(func(b broker.Broker) broker.Broker { return &failedConnectSticks{Broker: b} })},
		{"failed Connect leaves a socket", "connect-failed-clean", []string{"CloseBeforeHandshake", "CancelledContext", "CancelMidCall", "ExpiredDeadline"}, func(b broker.Broker, env Env) broker.Broker {
			return &sideSocket{Broker: b, env: env, onFailure: true}
		}},

		{"Disconnect leaves a socket", "disconnect-socket", []string{"NotConnected"}, func(b broker.Broker, env Env) broker.Broker { return &sideSocket{Broker: b, env: env} }},
		{"Disconnect of a disconnected Broker fails", "disconnect-idempotent", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return &disconnectOnce{Broker: b} })},

		{"Accounts sorted", "accounts-order", []string{"Connect", "Concurrent"}, w(func(b broker.Broker) broker.Broker { return sortsAccounts{b} })},
		{"Accounts answered without a session", "accounts-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return &cachedWhenDown{Broker: b, op: "Accounts"} })},

		{"last position dropped", "positions-every", []string{"Positions"}, w(func(b broker.Broker) broker.Broker { return positionsEdit{b, dropLast} })},
		{"positions deduplicated by contract", "positions-every", []string{"Positions"}, w(func(b broker.Broker) broker.Broker { return positionsEdit{b, dedupeConID} })},
		{"positions sorted by account", "positions-order", []string{"Positions"}, w(func(b broker.Broker) broker.Broker { return positionsEdit{b, sortByAccount} })},
		{"positions answered from the first list", "positions-end", []string{"Positions"}, w(func(b broker.Broker) broker.Broker { return &stalePositions{Broker: b} })},
		{"positions returned before the end", "positions-end", []string{"Positions"}, w(func(b broker.Broker) broker.Broker { return positionsEdit{b, firstHalf} })},
		{"Positions answered without a session", "positions-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return &cachedWhenDown{Broker: b, op: "Positions"} })},

		{"summary tags ignored", "summary-tags", []string{"AccountSummary", "Concurrent"}, w(func(b broker.Broker) broker.Broker { return summaryTags{b, false} })},
		{"every tag when none are given", "summary-default", []string{"AccountSummary"}, w(func(b broker.Broker) broker.Broker { return summaryTags{b, true} })},
		{"one entry per group of tags", "summary-per-account", []string{"AccountSummary"}, w(func(b broker.Broker) broker.Broker { return summaryEdit{b, splitEntries} })},
		{"summary sorted by account", "summary-order", []string{"AccountSummary"}, w(func(b broker.Broker) broker.Broker { return summaryEdit{b, sortSummary} })},
		{"summary in managed accounts' order", "summary-order", []string{"AccountSummary"}, w(func(b broker.Broker) broker.Broker { return &summaryManagedFirst{Broker: b} })},
		{"AccountSummary answered without a session", "summary-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return &cachedWhenDown{Broker: b, op: "AccountSummary"} })},

		{"Ping answered from memory", "ping-roundtrip", []string{"Ping"}, w(func(b broker.Broker) broker.Broker { return &pingFromMemory{Broker: b} })},
		{"Ping answered without a session", "ping-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return &cachedWhenDown{Broker: b, op: "Ping"} })},

		{"connection loss hidden", "subscribe-events", []string{"GatewayDrop"}, w(func(b broker.Broker) broker.Broker { return filterEvents{b, broker.EventConnectionLost} })},
		{"notices hidden", "subscribe-events", []string{"Notices"}, w(func(b broker.Broker) broker.Broker { return filterEvents{b, broker.EventNotice} })},
		{"subscription outlives its ctx", "subscribe-ctx", []string{"SubscribeCancel"}, w(func(b broker.Broker) broker.Broker { return subscribeIgnoresCtx{b} })},
		{"subscription outlives Close", "subscribe-close", []string{"Close"}, w(func(b broker.Broker) broker.Broker { return subscriptionOutlivesClose{b} })},
		{"blocking delivery", "subscribe-besteffort", []string{"SlowSubscriber"}, w(func(b broker.Broker) broker.Broker { return &blockingDelivery{Broker: b, sem: make(chan struct{}, 1)} })},
		{"Subscribe after Close succeeds", "subscribe-closed", []string{"Close"}, w(func(b broker.Broker) broker.Broker { return subscribeAfterClose{b} })},

		{"Close without disconnecting", "close-disconnects", []string{"Close"}, w(func(b broker.Broker) broker.Broker { return &closeKeepsSession{Broker: b} })},
		{"second Close fails", "close-idempotent", []string{"Close"}, w(func(b broker.Broker) broker.Broker { return &closeOnce{Broker: b} })},
		{"calls in flight during Close fail with ErrNotConnected", "close-concurrent", []string{"CloseInFlight"}, w(func(b broker.Broker) broker.Broker { return &inFlightForgetsClose{Broker: b} })},
	}
}

// ---- concurrency ----

// crossedSummary hands a call that overlapped another the previous call's
// answer: a transport that matches responses to requests by arrival order.
type crossedSummary struct {
	broker.Broker
	mu       sync.Mutex
	inflight int
	last     []broker.AccountSummary
}

func (b *crossedSummary) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	b.mu.Lock()
	overlapped := b.inflight > 0
	b.inflight++
	b.mu.Unlock()
	got, err := b.Broker.AccountSummary(ctx, tags...)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inflight--
	prev := b.last
	if err == nil {
		b.last = got
	}
	if overlapped && prev != nil && err == nil {
		return prev, nil
	}
	return got, err
}

// ---- contexts ----

// ignoresCtx makes one operation wait for the inner call whatever happens to
// ctx, then report ctx's error: the right error, too late.
type ignoresCtx struct {
	broker.Broker
	op string
}

func (b ignoresCtx) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if b.op != "Connect" {
		return b.Broker.Connect(ctx, p)
	}
	info, err := b.Broker.Connect(context.WithoutCancel(ctx), p)
	if ctx.Err() != nil {
		if err == nil {
			_ = b.Broker.Disconnect(context.Background())
		}
		return broker.ConnectInfo{}, ctx.Err()
	}
	return info, err
}

func (b ignoresCtx) Positions(ctx context.Context) ([]broker.Position, error) {
	if b.op != "Positions" {
		return b.Broker.Positions(ctx)
	}
	ps, err := b.Broker.Positions(context.WithoutCancel(ctx))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return ps, err
}

func (b ignoresCtx) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	if b.op != "AccountSummary" {
		return b.Broker.AccountSummary(ctx, tags...)
	}
	s, err := b.Broker.AccountSummary(context.WithoutCancel(ctx), tags...)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return s, err
}

func (b ignoresCtx) Ping(ctx context.Context) error {
	if b.op != "Ping" {
		return b.Broker.Ping(ctx)
	}
	err := b.Broker.Ping(context.WithoutCancel(ctx))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// leaksOnCancel leaves a goroutine (or an open file) behind for every call
// that failed with its context's error.
type leaksOnCancel struct {
	broker.Broker
	done <-chan struct{}
	hold func(io.Closer) // with file
	file bool
}

func (b leaksOnCancel) leak(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if b.file {
			if f, ferr := os.Open(os.DevNull); ferr == nil {
				b.hold(f)
			}
		} else {
			go func() { <-b.done }()
		}
	}
	return err
}

func (b leaksOnCancel) Positions(ctx context.Context) ([]broker.Position, error) {
	ps, err := b.Broker.Positions(ctx)
	return ps, b.leak(err)
}

func (b leaksOnCancel) Ping(ctx context.Context) error { return b.leak(b.Broker.Ping(ctx)) }

// ctxAsTimeout reports a done context as broker.ErrTimeout, losing ctx.Err().
type ctxAsTimeout struct{ broker.Broker }

func (b ctxAsTimeout) fix(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("mutant: gave up: %w", broker.ErrTimeout)
	}
	return err
}

func (b ctxAsTimeout) Positions(ctx context.Context) ([]broker.Position, error) {
	ps, err := b.Broker.Positions(ctx)
	return ps, b.fix(err)
}

// pingIgnoresDone answers Ping with nil when its context is already done
// (it checks the session, not the context).
type pingIgnoresDone struct{ broker.Broker }

func (b pingIgnoresDone) Ping(ctx context.Context) error {
	if ctx.Err() != nil {
		if _, err := b.Broker.Accounts(context.WithoutCancel(ctx)); err == nil {
			return nil
		}
	}
	return b.Broker.Ping(ctx)
}

// breaksOnCancel ends the session when a call is cancelled.
type breaksOnCancel struct{ broker.Broker }

func (b breaksOnCancel) Positions(ctx context.Context) ([]broker.Position, error) {
	ps, err := b.Broker.Positions(ctx)
	if ctx.Err() != nil {
		_ = b.Broker.Disconnect(context.Background())
	}
	return ps, err
}

// ---- lifecycle ----

// pretendsConnected answers Ping with nil before the first Connect.
type pretendsConnected struct {
	broker.Broker
	mu        sync.Mutex
	connected bool
}

func (b *pretendsConnected) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	info, err := b.Broker.Connect(ctx, p)
	b.mu.Lock()
	b.connected = b.connected || err == nil
	b.mu.Unlock()
	return info, err
}

func (b *pretendsConnected) Ping(ctx context.Context) error {
	b.mu.Lock()
	ever := b.connected
	b.mu.Unlock()
	if err := b.Broker.Ping(ctx); !ever && errors.Is(err, broker.ErrNotConnected) {
		return nil
	} else {
		return err
	}
}

// noReconnect refuses every Connect after a Disconnect.
type noReconnect struct {
	broker.Broker
	mu   sync.Mutex
	used bool
}

func (b *noReconnect) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	b.mu.Lock()
	used := b.used
	b.mu.Unlock()
	if used {
		return broker.ConnectInfo{}, fmt.Errorf("mutant: session used up: %w", broker.ErrHandshakeFailed)
	}
	return b.Broker.Connect(ctx, p)
}

func (b *noReconnect) Disconnect(ctx context.Context) error {
	err := b.Broker.Disconnect(ctx)
	b.mu.Lock()
	b.used = true
	b.mu.Unlock()
	return err
}

// disconnectNoop returns nil from Disconnect without ending the session.
type disconnectNoop struct{ broker.Broker }

func (disconnectNoop) Disconnect(ctx context.Context) error { return nil }

// leaksOnClose leaves a goroutine behind when closed.
type leaksOnClose struct {
	broker.Broker
	done <-chan struct{}
}

func (b leaksOnClose) Close() error {
	go func() { <-b.done }()
	return b.Broker.Close()
}

// sideSocket opens a second connection to the gateway beside the session (a
// health probe, say) and forgets to close it: after a failed Connect
// (onFailure), at Disconnect (by default) or at Close (keepOnClose). It
// closes it for good once the case is done.
type sideSocket struct {
	broker.Broker
	env         Env
	onFailure   bool
	keepOnClose bool
	mu          sync.Mutex
	conns       []net.Conn
}

func (b *sideSocket) dial() net.Conn {
	c, err := net.DialTimeout("tcp4", b.env.Addr, time.Second)
	if err != nil {
		return nil
	}
	go func() { <-b.env.Done; _ = c.Close() }()
	return c
}

func (b *sideSocket) closeAll() {
	b.mu.Lock()
	cs := b.conns
	b.conns = nil
	b.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

// Connect opens the side connection first, then the session; it closes the
// side connection at once only when the session's fate says so.
func (b *sideSocket) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	var side net.Conn
	if p.Validate() == nil {
		side = b.dial()
	}
	info, err := b.Broker.Connect(ctx, p)
	if side != nil {
		if (err != nil) == b.onFailure {
			b.mu.Lock()
			b.conns = append(b.conns, side)
			b.mu.Unlock()
		} else {
			_ = side.Close()
		}
	}
	return info, err
}

func (b *sideSocket) Disconnect(ctx context.Context) error {
	if b.onFailure || b.keepOnClose {
		b.closeAll()
	}
	return b.Broker.Disconnect(ctx)
}

func (b *sideSocket) Close() error {
	if !b.keepOnClose {
		b.closeAll()
	}
	return b.Broker.Close()
}

// forgetsClosed reports ErrNotConnected instead of ErrClosed from Ping.
type forgetsClosed struct{ broker.Broker }

func (b forgetsClosed) Ping(ctx context.Context) error {
	if err := b.Broker.Ping(ctx); errors.Is(err, broker.ErrClosed) {
		return fmt.Errorf("mutant: %w", broker.ErrNotConnected)
	} else {
		return err
	}
}

// stripsAPIError keeps the sentinel of a refused Connect but drops the
// *APIError and its code.
type stripsAPIError struct{ broker.Broker }

func (b stripsAPIError) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	info, err := b.Broker.Connect(ctx, p)
	if errors.Is(err, broker.ErrClientIDInUse) {
		return info, fmt.Errorf("mutant: refused: %w", broker.ErrClientIDInUse)
	}
	return info, err
}

// ---- Connect ----

// connectInfo returns a wrong server version, or sorted accounts.
type connectInfo struct {
	broker.Broker
	sortAccounts bool
}

func (b connectInfo) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	info, err := b.Broker.Connect(ctx, p)
	if err == nil {
		if b.sortAccounts {
			info.Accounts = slices.Sorted(slices.Values(info.Accounts))
		} else {
			info.ServerVersion = 176 // the client's minimum, not the negotiated one
		}
	}
	return info, err
}

// connectErr rewrites Connect's error.
type connectErr struct {
	broker.Broker
	fix func(err error, p broker.ConnectParams) error
}

func (b connectErr) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	info, err := b.Broker.Connect(ctx, p)
	return info, b.fix(err, p)
}

// remap returns a connectErr fix turning errors matching from into to (nil:
// success).
func remap(from, to error) func(error, broker.ConnectParams) error {
	return func(err error, _ broker.ConnectParams) error {
		if !errors.Is(err, from) {
			return err
		}
		if to == nil {
			return nil
		}
		return fmt.Errorf("mutant: %v: %w", strings.ReplaceAll(err.Error(), "%", "%%"), to)
	}
}

// ignoresTimeout connects with the default timeout whatever p.Timeout says.
type ignoresTimeout struct{ broker.Broker }

func (b ignoresTimeout) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	p.Timeout = 0
	return b.Broker.Connect(ctx, p)
}

// failedConnectSticks believes it is connected after a failed Connect.
type failedConnectSticks struct {
	broker.Broker
	mu     sync.Mutex
	failed bool
}

func (b *failedConnectSticks) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	b.mu.Lock()
	failed := b.failed
	b.mu.Unlock()
	if failed {
		return broker.ConnectInfo{}, fmt.Errorf("mutant: %w", broker.ErrAlreadyConnected)
	}
	info, err := b.Broker.Connect(ctx, p)
	if err != nil && p.Validate() == nil {
		b.mu.Lock()
		b.failed = true
		b.mu.Unlock()
	}
	return info, err
}

// ---- Disconnect ----

// disconnectOnce fails Disconnect of a Broker it did not see connected.
type disconnectOnce struct {
	broker.Broker
	mu        sync.Mutex
	connected bool
}

func (b *disconnectOnce) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	info, err := b.Broker.Connect(ctx, p)
	if err == nil {
		b.mu.Lock()
		b.connected = true
		b.mu.Unlock()
	}
	return info, err
}

func (b *disconnectOnce) Disconnect(ctx context.Context) error {
	b.mu.Lock()
	was := b.connected
	b.connected = false
	b.mu.Unlock()
	if !was {
		return fmt.Errorf("mutant: %w", broker.ErrNotConnected)
	}
	return b.Broker.Disconnect(ctx)
}

// ---- reads ----

type sortsAccounts struct{ broker.Broker }

func (b sortsAccounts) Accounts(ctx context.Context) ([]string, error) {
	a, err := b.Broker.Accounts(ctx)
	return slices.Sorted(slices.Values(a)), err
}

// cachedWhenDown answers op from the last good answer (or an empty one) when
// the inner Broker says there is no session.
type cachedWhenDown struct {
	broker.Broker
	op string
	mu sync.Mutex
	a  []string
	p  []broker.Position
	s  []broker.AccountSummary
}

func (b *cachedWhenDown) Accounts(ctx context.Context) ([]string, error) {
	a, err := b.Broker.Accounts(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		b.a = a
	} else if b.op == "Accounts" && errors.Is(err, broker.ErrNotConnected) {
		return b.a, nil
	}
	return a, err
}

func (b *cachedWhenDown) Positions(ctx context.Context) ([]broker.Position, error) {
	p, err := b.Broker.Positions(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		b.p = p
	} else if b.op == "Positions" && errors.Is(err, broker.ErrNotConnected) {
		return b.p, nil
	}
	return p, err
}

func (b *cachedWhenDown) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	s, err := b.Broker.AccountSummary(ctx, tags...)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		b.s = s
	} else if b.op == "AccountSummary" && errors.Is(err, broker.ErrNotConnected) {
		return b.s, nil
	}
	return s, err
}

func (b *cachedWhenDown) Ping(ctx context.Context) error {
	err := b.Broker.Ping(ctx)
	if b.op == "Ping" && errors.Is(err, broker.ErrNotConnected) {
		return nil
	}
	return err
}

// positionsEdit rewrites every successful Positions answer.
type positionsEdit struct {
	broker.Broker
	edit func([]broker.Position) []broker.Position
}

func (b positionsEdit) Positions(ctx context.Context) ([]broker.Position, error) {
	ps, err := b.Broker.Positions(ctx)
	if err != nil {
		return ps, err
	}
	return b.edit(ps), nil
}

func dropLast(ps []broker.Position) []broker.Position {
	if len(ps) > 0 {
		ps = ps[:len(ps)-1]
	}
	return ps
}

func dedupeConID(ps []broker.Position) []broker.Position {
	seen := map[int64]bool{}
	var out []broker.Position
	for _, p := range ps {
		if !seen[p.Contract.ConID] {
			seen[p.Contract.ConID] = true
			out = append(out, p)
		}
	}
	return out
}

func sortByAccount(ps []broker.Position) []broker.Position {
	slices.SortStableFunc(ps, func(a, b broker.Position) int { return strings.Compare(a.Account, b.Account) })
	return ps
}

func firstHalf(ps []broker.Position) []broker.Position { return ps[:(len(ps)+1)/2] }

// stalePositions answers every Positions call after the first with the first
// call's list: a cache that never notices the gateway's data changed.
type stalePositions struct {
	broker.Broker
	mu    sync.Mutex
	first []broker.Position
}

func (b *stalePositions) Positions(ctx context.Context) ([]broker.Position, error) {
	ps, err := b.Broker.Positions(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.first == nil {
		b.first = ps
	}
	return slices.Clone(b.first), nil
}

// summaryTags ignores the tags (always the defaults), or with all, asks for
// every tag the gateway knows when none are given.
type summaryTags struct {
	broker.Broker
	all bool
}

func (b summaryTags) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	switch {
	case !b.all:
		tags = nil
	case len(tags) == 0:
		tags = append(slices.Clone(broker.DefaultSummaryTags), "DayTradesRemaining", "FullInitMarginReq", "Currency", "RegTEquity")
	}
	return b.Broker.AccountSummary(ctx, tags...)
}

// summaryEdit rewrites every successful AccountSummary answer.
type summaryEdit struct {
	broker.Broker
	edit func([]broker.AccountSummary) []broker.AccountSummary
}

func (b summaryEdit) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	s, err := b.Broker.AccountSummary(ctx, tags...)
	if err != nil {
		return s, err
	}
	return b.edit(s), nil
}

// splitEntries gives accounts with several values two entries.
func splitEntries(s []broker.AccountSummary) []broker.AccountSummary {
	var out []broker.AccountSummary
	for _, a := range s {
		tags := slices.Sorted(func(yield func(string) bool) {
			for k := range a.Values {
				if !yield(k) {
					return
				}
			}
		})
		if len(tags) < 2 {
			out = append(out, a)
			continue
		}
		one, two := map[string]broker.SummaryValue{}, map[string]broker.SummaryValue{}
		for i, tag := range tags {
			if i < len(tags)/2 {
				one[tag] = a.Values[tag]
			} else {
				two[tag] = a.Values[tag]
			}
		}
		out = append(out, broker.AccountSummary{Account: a.Account, Values: one}, broker.AccountSummary{Account: a.Account, Values: two})
	}
	return out
}

func sortSummary(s []broker.AccountSummary) []broker.AccountSummary {
	slices.SortStableFunc(s, func(a, b broker.AccountSummary) int { return strings.Compare(a.Account, b.Account) })
	return s
}

// summaryManagedFirst orders the summary as the managed accounts, then the others.
type summaryManagedFirst struct{ broker.Broker }

func (b *summaryManagedFirst) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	s, err := b.Broker.AccountSummary(ctx, tags...)
	if err != nil {
		return s, err
	}
	accts, err := b.Broker.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	rank := func(a string) int {
		if i := slices.Index(accts, a); i >= 0 {
			return i
		}
		return len(accts)
	}
	slices.SortStableFunc(s, func(x, y broker.AccountSummary) int { return rank(x.Account) - rank(y.Account) })
	return s, nil
}

// pingFromMemory answers Ping from whether Connect succeeded, without a round trip.
type pingFromMemory struct {
	broker.Broker
	mu        sync.Mutex
	connected bool
}

func (b *pingFromMemory) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	info, err := b.Broker.Connect(ctx, p)
	if err == nil {
		b.mu.Lock()
		b.connected = true
		b.mu.Unlock()
	}
	return info, err
}

func (b *pingFromMemory) Disconnect(ctx context.Context) error {
	b.mu.Lock()
	b.connected = false
	b.mu.Unlock()
	return b.Broker.Disconnect(ctx)
}

func (b *pingFromMemory) Ping(ctx context.Context) error {
	b.mu.Lock()
	c := b.connected
	b.mu.Unlock()
	if c && ctx.Err() == nil {
		return nil
	}
	return b.Broker.Ping(ctx)
}

// ---- Subscribe ----

// forward copies in to a new channel until in closes, then closes it.
func forward(in <-chan broker.Event, keep func(broker.Event) bool) <-chan broker.Event {
	out := make(chan broker.Event, 64)
	go func() {
		defer close(out)
		for e := range in {
			if keep(e) {
				select {
				case out <- e:
				default:
				}
			}
		}
	}()
	return out
}

// filterEvents hides events of one kind.
type filterEvents struct {
	broker.Broker
	hide broker.EventKind
}

func (b filterEvents) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	in, err := b.Broker.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	return forward(in, func(e broker.Event) bool { return e.Kind != b.hide }), nil
}

// subscribeIgnoresCtx subscribes for the Broker's lifetime, not ctx's.
type subscribeIgnoresCtx struct{ broker.Broker }

func (b subscribeIgnoresCtx) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	return b.Broker.Subscribe(context.WithoutCancel(ctx))
}

// subscriptionOutlivesClose keeps the channel open after Close until ctx is done.
type subscriptionOutlivesClose struct{ broker.Broker }

func (b subscriptionOutlivesClose) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	in, err := b.Broker.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan broker.Event, 64)
	go func() {
		defer close(out)
		for e := range in {
			select {
			case out <- e:
			default:
			}
		}
		<-ctx.Done()
	}()
	return out, nil
}

// blockingDelivery delivers every event with a blocking send under a lock
// that calls also take: one subscriber that does not read stalls the Broker.
type blockingDelivery struct {
	broker.Broker
	sem chan struct{}
}

func (b *blockingDelivery) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	in, err := b.Broker.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan broker.Event)
	go func() {
		defer close(out)
		for e := range in {
			b.sem <- struct{}{}
			select {
			case out <- e:
			case <-ctx.Done():
			}
			<-b.sem
		}
	}()
	return out, nil
}

func (b *blockingDelivery) Ping(ctx context.Context) error {
	select {
	case b.sem <- struct{}{}:
		<-b.sem
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.Broker.Ping(ctx)
}

// subscribeAfterClose returns a closed channel instead of ErrClosed.
type subscribeAfterClose struct{ broker.Broker }

func (b subscribeAfterClose) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	ch, err := b.Broker.Subscribe(ctx)
	if errors.Is(err, broker.ErrClosed) {
		c := make(chan broker.Event)
		close(c)
		return c, nil
	}
	return ch, err
}

// ---- Close ----

// closeKeepsSession marks itself closed but leaves the session (and its
// socket) open until the case's cleanup closes the inner Broker.
type closeKeepsSession struct {
	broker.Broker
	mu     sync.Mutex
	closed bool
}

func (b *closeKeepsSession) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *closeKeepsSession) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

var errMutantClosed = fmt.Errorf("mutant: %w", broker.ErrClosed)

func (b *closeKeepsSession) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if b.isClosed() {
		return broker.ConnectInfo{}, errMutantClosed
	}
	return b.Broker.Connect(ctx, p)
}

func (b *closeKeepsSession) Disconnect(ctx context.Context) error {
	if b.isClosed() {
		return errMutantClosed
	}
	return b.Broker.Disconnect(ctx)
}

func (b *closeKeepsSession) Accounts(ctx context.Context) ([]string, error) {
	if b.isClosed() {
		return nil, errMutantClosed
	}
	return b.Broker.Accounts(ctx)
}

func (b *closeKeepsSession) Positions(ctx context.Context) ([]broker.Position, error) {
	if b.isClosed() {
		return nil, errMutantClosed
	}
	return b.Broker.Positions(ctx)
}

func (b *closeKeepsSession) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	if b.isClosed() {
		return nil, errMutantClosed
	}
	return b.Broker.AccountSummary(ctx, tags...)
}

func (b *closeKeepsSession) Ping(ctx context.Context) error {
	if b.isClosed() {
		return errMutantClosed
	}
	return b.Broker.Ping(ctx)
}

func (b *closeKeepsSession) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	if b.isClosed() {
		return nil, errMutantClosed
	}
	return b.Broker.Subscribe(ctx)
}

// closeOnce fails a second Close.
type closeOnce struct {
	broker.Broker
	mu     sync.Mutex
	closed bool
}

func (b *closeOnce) Close() error {
	b.mu.Lock()
	was := b.closed
	b.closed = true
	b.mu.Unlock()
	if was {
		return errMutantClosed
	}
	return b.Broker.Close()
}

// inFlightForgetsClose reports calls that Close overtook as having lost
// their session (ErrNotConnected) rather than ErrClosed.
type inFlightForgetsClose struct {
	broker.Broker
	mu     sync.Mutex
	closed bool
}

func (b *inFlightForgetsClose) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return b.Broker.Close()
}

func (b *inFlightForgetsClose) fix(wasClosed bool, err error) error {
	if !wasClosed && errors.Is(err, broker.ErrClosed) {
		return fmt.Errorf("mutant: session ended: %w", broker.ErrNotConnected)
	}
	return err
}

func (b *inFlightForgetsClose) was() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *inFlightForgetsClose) Positions(ctx context.Context) ([]broker.Position, error) {
	w := b.was()
	ps, err := b.Broker.Positions(ctx)
	return ps, b.fix(w, err)
}

func (b *inFlightForgetsClose) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	w := b.was()
	s, err := b.Broker.AccountSummary(ctx, tags...)
	return s, b.fix(w, err)
}

func (b *inFlightForgetsClose) Ping(ctx context.Context) error {
	w := b.was()
	return b.fix(w, b.Broker.Ping(ctx))
}
