package ibkr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
)

// Connect and Disconnect: the handshake under the adapter's lifecycle slot.

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
// gateway setting); the session refuses order operations locally instead
// (broker.ErrReadOnly, nothing sent).
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
	s.ord.readOnly = p.ReadOnly
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
