package mutants

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"

	"github.com/brokerkit/brokerkit/broker"
)

// Mutants of the read side (AccountUpdates, Executions, OpenOrders,
// CompletedOrders).

// readWhenDown answers op from nothing when the session is gone: a zero
// answer and no error instead of ErrNotConnected.
type readWhenDown struct {
	broker.Broker
	op broker.Op
}

func (b readWhenDown) down(op broker.Op, err error) bool {
	return b.op == op && errors.Is(err, broker.ErrNotConnected)
}

func (b readWhenDown) AccountUpdates(ctx context.Context, account string) (broker.AccountUpdate, error) {
	u, err := b.Broker.AccountUpdates(ctx, account)
	if b.down(broker.OpAccountUpdates, err) {
		return broker.AccountUpdate{Account: account}, nil
	}
	return u, err
}

func (b readWhenDown) Executions(ctx context.Context, f broker.ExecutionFilter) ([]broker.Execution, error) {
	x, err := b.Broker.Executions(ctx, f)
	if b.down(broker.OpExecutions, err) {
		return []broker.Execution{}, nil
	}
	return x, err
}

func (b readWhenDown) OpenOrders(ctx context.Context) ([]broker.Order, error) {
	o, err := b.Broker.OpenOrders(ctx)
	if b.down(broker.OpOpenOrders, err) {
		return []broker.Order{}, nil
	}
	return o, err
}

func (b readWhenDown) CompletedOrders(ctx context.Context) ([]broker.Order, error) {
	o, err := b.Broker.CompletedOrders(ctx)
	if b.down(broker.OpCompletedOrders, err) {
		return []broker.Order{}, nil
	}
	return o, err
}

// updatesEdit rewrites every successful AccountUpdates answer.
type updatesEdit struct {
	broker.Broker
	edit func(*broker.AccountUpdate)
}

func (b updatesEdit) AccountUpdates(ctx context.Context, account string) (broker.AccountUpdate, error) {
	u, err := b.Broker.AccountUpdates(ctx, account)
	if err == nil {
		b.edit(&u)
	}
	return u, err
}

func dropLastPortfolio(u *broker.AccountUpdate) {
	if n := len(u.Portfolio); n > 0 {
		u.Portfolio = u.Portfolio[:n-1]
	}
}

func roundPnL(u *broker.AccountUpdate) {
	for i := range u.Portfolio {
		p := &u.Portfolio[i]
		p.UnrealizedPnL = broker.MustDecimal(strconv.FormatFloat(p.UnrealizedPnL.Float64(), 'f', 2, 64))
	}
}

func sortValues(u *broker.AccountUpdate) {
	slices.SortStableFunc(u.Values, func(a, b broker.AccountValue) int {
		switch {
		case a.Value < b.Value:
			return -1
		case a.Value > b.Value:
			return 1
		}
		return 0
	})
}

// staleUpdates answers each account from its first download.
type staleUpdates struct {
	broker.Broker
	mu    sync.Mutex
	first map[string]broker.AccountUpdate
}

func (b *staleUpdates) AccountUpdates(ctx context.Context, account string) (broker.AccountUpdate, error) {
	b.mu.Lock()
	u, ok := b.first[account]
	b.mu.Unlock()
	if ok {
		return u, nil
	}
	u, err := b.Broker.AccountUpdates(ctx, account)
	if err == nil {
		b.mu.Lock()
		if b.first == nil {
			b.first = map[string]broker.AccountUpdate{}
		}
		b.first[account] = u
		b.mu.Unlock()
	}
	return u, err
}

// anyAccount answers an account the session does not manage with an empty update.
type anyAccount struct{ broker.Broker }

func (b anyAccount) AccountUpdates(ctx context.Context, account string) (broker.AccountUpdate, error) {
	u, err := b.Broker.AccountUpdates(ctx, account)
	if errors.Is(err, broker.ErrInvalidArgument) {
		return broker.AccountUpdate{Account: account, Values: []broker.AccountValue{}, Portfolio: []broker.PortfolioItem{}}, nil
	}
	return u, err
}

// executionsEdit calls the inner Executions with a rewritten filter and
// rewrites every successful answer.
type executionsEdit struct {
	broker.Broker
	filter func(broker.ExecutionFilter) broker.ExecutionFilter
	edit   func([]broker.Execution) []broker.Execution
}

func (b executionsEdit) Executions(ctx context.Context, f broker.ExecutionFilter) ([]broker.Execution, error) {
	if b.filter != nil {
		f = b.filter(f)
	}
	xs, err := b.Broker.Executions(ctx, f)
	if err == nil && b.edit != nil {
		xs = b.edit(xs)
	}
	return xs, err
}

func dropCommission(xs []broker.Execution) []broker.Execution {
	for i := range xs {
		xs[i].Commission, xs[i].CommissionCurrency = broker.Decimal{}, ""
	}
	return xs
}

func reverseExecutions(xs []broker.Execution) []broker.Execution {
	slices.Reverse(xs)
	return xs
}

// ordersFromMemory answers OpenOrders and CompletedOrders with an empty list
// without asking the gateway.
type ordersFromMemory struct {
	broker.Broker
	op broker.Op
}

func (b ordersFromMemory) OpenOrders(ctx context.Context) ([]broker.Order, error) {
	if b.op == broker.OpOpenOrders {
		return []broker.Order{}, ctx.Err()
	}
	return b.Broker.OpenOrders(ctx)
}

func (b ordersFromMemory) CompletedOrders(ctx context.Context) ([]broker.Order, error) {
	if b.op == broker.OpCompletedOrders {
		return []broker.Order{}, ctx.Err()
	}
	return b.Broker.CompletedOrders(ctx)
}

// streamEdit rewrites the inner Broker's account updates stream.
type streamEdit struct {
	broker.Broker
	done <-chan struct{} // the case's end: release what the mutant holds
	mode int
}

const (
	streamFirstOnly  = iota // forwards the first state only
	streamIgnoresCtx        // never closes the channel when ctx ends
	streamAnyAccount        // accepts an account the session does not manage
)

func (b streamEdit) SubscribeAccountUpdates(ctx context.Context, account string) (<-chan broker.AccountUpdate, error) {
	as := b.Broker.(broker.AccountStreamer)
	if b.mode == streamAnyAccount {
		ch, err := as.SubscribeAccountUpdates(ctx, account)
		if errors.Is(err, broker.ErrInvalidArgument) {
			out := make(chan broker.AccountUpdate)
			context.AfterFunc(ctx, func() { close(out) })
			return out, nil
		}
		return ch, err
	}
	inCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in, err := as.SubscribeAccountUpdates(inCtx, account)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan broker.AccountUpdate, 1)
	go func() {
		defer cancel()
		first := true
		for {
			select {
			case u, open := <-in:
				if !open {
					if b.mode != streamIgnoresCtx {
						close(out)
					}
					return
				}
				if first || b.mode != streamFirstOnly {
					broker.Latest(out, u)
				}
				first = false
			case <-ctx.Done():
				if b.mode != streamIgnoresCtx {
					close(out)
					return
				}
			case <-b.done:
				return
			}
		}
	}()
	return out, nil
}
