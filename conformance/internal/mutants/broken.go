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

// The broken Brokers of All, by the part of the contract they break.

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

// connMemory remembers whether a Connect succeeded, for the mutants that
// misbehave by that memory: their Connect passes its result through
// note; those that forget on Disconnect call forget.
type connMemory struct {
	mu        sync.Mutex
	connected bool
}

// note records whether Connect succeeded and passes its result on.
func (m *connMemory) note(info broker.ConnectInfo, err error) (broker.ConnectInfo, error) {
	if err == nil {
		m.mu.Lock()
		m.connected = true
		m.mu.Unlock()
	}
	return info, err
}

// isConnected reports whether a Connect succeeded since the last forget.
func (m *connMemory) isConnected() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.connected
}

// forget clears the memory and reports what it held.
func (m *connMemory) forget() (was bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	was, m.connected = m.connected, false
	return was
}

// pretendsConnected answers Ping with nil before the first Connect.
type pretendsConnected struct {
	broker.Broker
	mem connMemory
}

func (b *pretendsConnected) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	return b.mem.note(b.Broker.Connect(ctx, p))
}

func (b *pretendsConnected) Ping(ctx context.Context) error {
	ever := b.mem.isConnected()
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
	mem connMemory
}

func (b *disconnectOnce) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	return b.mem.note(b.Broker.Connect(ctx, p))
}

func (b *disconnectOnce) Disconnect(ctx context.Context) error {
	if !b.mem.forget() {
		return fmt.Errorf("mutant: %w", broker.ErrNotConnected)
	}
	return b.Broker.Disconnect(ctx)
}
