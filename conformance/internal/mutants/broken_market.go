package mutants

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"

	"github.com/brokerkit/brokerkit/broker"
)

// The market data mutants: contract details, snapshots, bars and the market
// data type, each broken the way a plausible bug would.

// snapshotIgnoresCtx waits for the gateway's answer whatever the caller's context says.
type snapshotIgnoresCtx struct{ broker.Broker }

func (b snapshotIgnoresCtx) Snapshot(ctx context.Context, c broker.Contract) (broker.Quote, error) {
	q, err := b.Broker.Snapshot(context.WithoutCancel(ctx), c)
	if ctx.Err() != nil {
		return broker.Quote{}, ctx.Err()
	}
	return q, err
}

// detailsEdit rewrites every successful ContractDetails answer.
type detailsEdit struct {
	broker.Broker
	edit func([]broker.ContractDetails) []broker.ContractDetails
}

func (b detailsEdit) ContractDetails(ctx context.Context, c broker.Contract) ([]broker.ContractDetails, error) {
	d, err := b.Broker.ContractDetails(ctx, c)
	if err != nil {
		return d, err
	}
	return b.edit(d), nil
}

// dropLastDetails loses the last row of a search with several.
func dropLastDetails(d []broker.ContractDetails) []broker.ContractDetails {
	if len(d) < 2 {
		return d
	}
	return d[:len(d)-1]
}

// byteListNames passes on the long name the way scmhub's text decoder garbles
// it at some server versions ("[65 80 ...]"), for non-ASCII names.
func byteListNames(d []broker.ContractDetails) []broker.ContractDetails {
	d = slices.Clone(d)
	for i := range d {
		for _, r := range d[i].LongName {
			if r > 127 {
				d[i].LongName = fmt.Sprint([]byte(d[i].LongName))
				break
			}
		}
	}
	return d
}

// notFoundEmpty answers "nothing matches" with an empty list.
type notFoundEmpty struct{ broker.Broker }

func (b notFoundEmpty) ContractDetails(ctx context.Context, c broker.Contract) ([]broker.ContractDetails, error) {
	d, err := b.Broker.ContractDetails(ctx, c)
	if errors.Is(err, broker.ErrNotFound) {
		return []broker.ContractDetails{}, nil
	}
	return d, err
}

// centsQuote rounds a snapshot's prices to cents, as a float64 formatter with
// two decimals would.
type centsQuote struct{ broker.Broker }

func (b centsQuote) Snapshot(ctx context.Context, c broker.Contract) (broker.Quote, error) {
	q, err := b.Broker.Snapshot(ctx, c)
	if err != nil {
		return q, err
	}
	return roundCents(q), nil
}

// roundCents rounds q's prices to cents.
func roundCents(q broker.Quote) broker.Quote {
	for _, p := range []*broker.Decimal{&q.Bid, &q.Ask, &q.Last, &q.Open, &q.High, &q.Low, &q.Close} {
		*p = broker.MustDecimal(new(big.Rat).SetFloat64(p.Float64()).FloatString(2))
	}
	return q
}

// typeNoop accepts SetMarketDataType and forgets it.
type typeNoop struct{ broker.Broker }

func (b *typeNoop) SetMarketDataType(ctx context.Context, t broker.MarketDataType) error {
	if !t.Valid() {
		return b.Broker.SetMarketDataType(ctx, t)
	}
	return ctx.Err()
}

// notSubscribedAsNotFound reports a missing subscription as an unknown contract.
type notSubscribedAsNotFound struct{ broker.Broker }

func (b notSubscribedAsNotFound) Snapshot(ctx context.Context, c broker.Contract) (broker.Quote, error) {
	q, err := b.Broker.Snapshot(ctx, c)
	if errors.Is(err, broker.ErrNotSubscribed) {
		return broker.Quote{}, fmt.Errorf("mutant: %v: %w", err.Error(), broker.ErrNotFound)
	}
	return q, err
}

// failsOnDelayed treats warning 10167 as a failure: delayed data the caller
// did not ask for fails the snapshot.
type failsOnDelayed struct {
	broker.Broker
	mu  sync.Mutex
	set broker.MarketDataType
}

func (b *failsOnDelayed) SetMarketDataType(ctx context.Context, t broker.MarketDataType) error {
	err := b.Broker.SetMarketDataType(ctx, t)
	if err == nil {
		b.mu.Lock()
		b.set = t
		b.mu.Unlock()
	}
	return err
}

func (b *failsOnDelayed) Snapshot(ctx context.Context, c broker.Contract) (broker.Quote, error) {
	q, err := b.Broker.Snapshot(ctx, c)
	b.mu.Lock()
	asked := b.set
	b.mu.Unlock()
	if err == nil && q.DataType == broker.MarketDataDelayed && asked != broker.MarketDataDelayed {
		return broker.Quote{}, &broker.APIError{ReqID: 1, Code: broker.IBCodeDisplayingDelayed, Message: "Displaying delayed market data."}
	}
	return q, err
}

// barsReversed returns bars newest first.
type barsReversed struct{ broker.Broker }

func (b barsReversed) HistoricalBars(ctx context.Context, c broker.Contract, r broker.BarsRequest) ([]broker.Bar, error) {
	bars, err := b.Broker.HistoricalBars(ctx, c, r)
	slices.Reverse(bars)
	return bars, err
}

// barsErrorsText loses the error chain of a failed HistoricalBars (keeping
// only its text), except for a done context.
type barsErrorsText struct{ broker.Broker }

func (b barsErrorsText) HistoricalBars(ctx context.Context, c broker.Contract, r broker.BarsRequest) ([]broker.Bar, error) {
	bars, err := b.Broker.HistoricalBars(ctx, c, r)
	if err != nil && ctx.Err() == nil && !errors.Is(err, broker.ErrNotConnected) && !errors.Is(err, broker.ErrClosed) &&
		!errors.Is(err, broker.ErrUnavailable) {
		return nil, errors.New(err.Error())
	}
	return bars, err
}

// acceptsAnyType accepts a market data type IB does not define.
type acceptsAnyType struct{ broker.Broker }

func (b acceptsAnyType) SetMarketDataType(ctx context.Context, t broker.MarketDataType) error {
	if !t.Valid() {
		return nil
	}
	return b.Broker.SetMarketDataType(ctx, t)
}

// typeWithoutSession remembers the market data type when there is no session.
type typeWithoutSession struct{ broker.Broker }

func (b typeWithoutSession) SetMarketDataType(ctx context.Context, t broker.MarketDataType) error {
	err := b.Broker.SetMarketDataType(ctx, t)
	if errors.Is(err, broker.ErrNotConnected) {
		return nil
	}
	return err
}
