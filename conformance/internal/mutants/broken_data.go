package mutants

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/brokerkit/brokerkit/broker"
)

// The broken Brokers of All that break what reads, subscriptions and Close
// promise.

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

// roundDecimals passes quantities and costs through float64 with 4
// decimals, as a careless JSON or float-based transport would.
func roundDecimals(ps []broker.Position) []broker.Position {
	round := func(d broker.Decimal) broker.Decimal {
		return broker.MustDecimal(strconv.FormatFloat(d.Float64(), 'f', 4, 64))
	}
	for i := range ps {
		ps[i].Quantity = round(ps[i].Quantity)
		ps[i].AvgCost = round(ps[i].AvgCost)
	}
	return ps
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
	mem connMemory
}

func (b *pingFromMemory) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	return b.mem.note(b.Broker.Connect(ctx, p))
}

func (b *pingFromMemory) Disconnect(ctx context.Context) error {
	b.mem.forget()
	return b.Broker.Disconnect(ctx)
}

func (b *pingFromMemory) Ping(ctx context.Context) error {
	if b.mem.isConnected() && ctx.Err() == nil {
		return nil
	}
	return b.Broker.Ping(ctx)
}
