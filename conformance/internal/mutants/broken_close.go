// Mutants that break Close: sessions kept open, second Close failing, in-flight calls unaware of Close.

package mutants

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/brokerkit/brokerkit/broker"
)

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
