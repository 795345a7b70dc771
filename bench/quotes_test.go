package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/robust"
)

// Quote streams: ticks delivered per second and the latency of a tick from
// the fake gateway's write to the subscriber's receive, with 1 and 500
// subscribed contracts, in process, behind each transport, and behind robust
// around stdiojson. Names (scripts/benchtable):
//
//	QuoteTicks/contracts={1,500}/{inprocess,stdiojson,goplugin,robust-stdiojson}    (metrics ticks/s, steps/s, dropped/tick)
//	QuoteLatency/contracts={1,500}/{inprocess,stdiojson,goplugin,robust-stdiojson}  (metrics ns-p50, ns-p99)
//
// One iteration is one QuoteUpdate received, from any contract. The gateway
// writes quoteTicksRate random-walk steps a second in all for QuoteTicks (more
// than any path delivers one by one, and about what the fake gateway sustains
// beside the rest on two cores: the figure is the path's capacity, what it
// conflates away is counted) and quoteLatencyRate for QuoteLatency (few
// enough that nothing queues). Pacing is lifted on both sides, so that 500
// subscriptions take no 10 s at IB's 50 messages/s; they are made 50 at a time.

const (
	quoteTicksRate   = 20_000
	quoteLatencyRate = 2_000
	// kindQuotes is a worker kind: the IBKR adapter with pacing lifted.
	kindQuotes = "ibkr-quotes"
)

var quoteContractCounts = []int{1, 500}

// quotePath is one way from the gateway to the subscriber.
type quotePath struct {
	name  string
	start func(b *testing.B) broker.Broker
}

func quotePaths() []quotePath {
	paths := []quotePath{{"inprocess", func(b *testing.B) broker.Broker {
		a := newQuoteAdapter()
		b.Cleanup(func() { _ = a.Close() })
		return a
	}}}
	for _, tr := range transports {
		paths = append(paths, quotePath{tr.name, func(b *testing.B) broker.Broker { return startWorker(b, tr, kindQuotes, 0) }})
	}
	stdio := transports[0]
	return append(paths, quotePath{"robust-" + stdio.name, func(b *testing.B) broker.Broker {
		rb := robust.New(func(ctx context.Context) (broker.Broker, error) { return stdio.start(ctx, kindQuotes, 0) },
			robust.WithLogger(quietLogger()))
		b.Cleanup(func() { _ = rb.Close() })
		return rb
	}})
}

// newQuoteAdapter is the IBKR adapter with pacing lifted (the fake gateway
// of these benchmarks does not enforce it).
func newQuoteAdapter() *ibkr.Adapter {
	return ibkr.New(ibkr.WithLogger(quietLogger()), ibkr.WithPacing(ibkr.Pacing{MessagesPerSecond: 1 << 30}))
}

// tickClock remembers when the gateway wrote each step of each instrument.
type tickClock struct {
	index map[int64]int    // con id -> instrument
	at    [][]atomic.Int64 // [instrument][step % len] -> UnixNano of the write
	steps atomic.Int64     // steps written
}

// tickRing is how many steps of each instrument tickClock remembers: more
// than a QuoteLatency run writes.
const tickRing = 1 << 14

func newTickClock(ins []fakes.Instrument) *tickClock {
	c := &tickClock{index: map[int64]int{}, at: make([][]atomic.Int64, len(ins))}
	for i, in := range ins {
		c.index[in.Contract.ConID] = i
		c.at[i] = make([]atomic.Int64, tickRing/len(ins)+1)
	}
	return c
}

func (c *tickClock) hook(w fakes.TickWrite) {
	c.steps.Add(1)
	if i, ok := c.index[w.ConID]; ok {
		c.at[i][w.Step%int64(len(c.at[i]))].Store(w.At.UnixNano())
	}
}

// quoteGateway serves n moving instruments writing rate steps a second in
// all, each step ending with its number as the bid size (0 before the first).
func quoteGateway(b *testing.B, n, rate int) (*fakes.Gateway, []fakes.Instrument, *tickClock) {
	b.Helper()
	s := fakes.DefaultScript()
	s.Instruments = make([]fakes.Instrument, n)
	d := broker.MustDecimal
	for i := range s.Instruments {
		s.Instruments[i] = fakes.Instrument{
			Contract: broker.Contract{ConID: int64(900000 + i), Symbol: fmt.Sprintf("Q%03d", i), SecType: "STK",
				Exchange: "SMART", Currency: "USD", LocalSymbol: fmt.Sprintf("Q%03d", i)},
			PrimaryExchange: "NASDAQ", MinTick: d("0.01"),
			Quote: fakes.InstrumentQuote{Bid: d("100"), Ask: d("100.02"), Last: d("100.01"), Close: d("99.5"),
				BidSize: d("0"), AskSize: d("100"), LastSize: d("10"), Volume: d("1000")},
			TicksPerSecond: float64(rate) / float64(n),
			StepInBidSize:  true,
		}
	}
	s.Faults.Market.MaxTickers = n + 10
	clk := newTickClock(s.Instruments)
	g, err := fakes.NewGateway(s, fakes.WithTickHook(clk.hook))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close() })
	return g, s.Instruments, clk
}

// received is one QuoteUpdate as the fan-in hands it to the loop.
type received struct {
	inst    int
	step    int64 // the bid size: the last step the update reflects
	at      int64 // UnixNano of the receive
	dropped int64
}

// subscribeAll subscribes br to every instrument and fans the updates in,
// until the benchmark's cleanup.
func subscribeAll(b *testing.B, br broker.Broker, ins []fakes.Instrument) <-chan received {
	b.Helper()
	qs := br.(broker.QuoteStreamer)
	all := make(chan received, 4096)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	chans := make([]<-chan broker.QuoteUpdate, len(ins))
	errs := make([]error, len(ins))
	var subs sync.WaitGroup
	slots := make(chan struct{}, 50)
	for i, in := range ins {
		subs.Add(1)
		slots <- struct{}{}
		go func() {
			defer subs.Done()
			defer func() { <-slots }()
			chans[i], errs[i] = qs.SubscribeQuotes(ctx, in.Contract)
		}()
	}
	subs.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatalf("SubscribeQuotes: %v", err)
	}
	for i, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range ch {
				r := received{inst: i, step: int64(u.Quote.BidSize.Float64()), at: time.Now().UnixNano(), dropped: u.Dropped}
				select {
				case all <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return all
}

// eachQuotePath runs body for every contract count and path, with the
// gateway writing rate steps a second and every contract subscribed.
func eachQuotePath(b *testing.B, rate int, body func(b *testing.B, all <-chan received, clk *tickClock)) {
	for _, n := range quoteContractCounts {
		for _, p := range quotePaths() {
			b.Run("contracts="+strconv.Itoa(n)+"/"+p.name, func(b *testing.B) {
				g, ins, clk := quoteGateway(b, n, rate)
				br := p.start(b)
				mustConnect(b, br, g.ConnectParams(1))
				body(b, subscribeAll(b, br, ins), clk)
			})
		}
	}
}

// BenchmarkQuoteTicks is the rate of quote updates a subscriber receives
// while the gateway writes more steps than any path can deliver one by one.
func BenchmarkQuoteTicks(b *testing.B) {
	eachQuotePath(b, quoteTicksRate, func(b *testing.B, all <-chan received, clk *tickClock) {
		<-all // the streams run
		steps0, dropped := clk.steps.Load(), int64(0)
		start := time.Now()
		for b.Loop() {
			r := <-all
			dropped += r.dropped
		}
		elapsed := time.Since(start).Seconds()
		b.ReportMetric(float64(b.N)/elapsed, "ticks/s")
		b.ReportMetric(float64(clk.steps.Load()-steps0)/elapsed, "steps/s")
		b.ReportMetric(float64(dropped)/float64(b.N), "dropped/tick")
	})
}

// BenchmarkQuoteLatency is the time from the gateway's write of a step to
// the subscriber's receive of the first update showing it, at a rate every
// path keeps up with.
func BenchmarkQuoteLatency(b *testing.B) {
	eachQuotePath(b, quoteLatencyRate, func(b *testing.B, all <-chan received, clk *tickClock) {
		seen := make([]int64, len(clk.at)) // the highest step seen per instrument
		var lat []time.Duration
		for b.Loop() {
			r := <-all
			if r.step <= seen[r.inst] { // no new step: an earlier tick of the same step, or a repeat
				continue
			}
			seen[r.inst] = r.step
			if w := clk.at[r.inst][r.step%int64(len(clk.at[r.inst]))].Load(); w > 0 && r.at >= w {
				lat = append(lat, time.Duration(r.at-w))
			}
		}
		b.StopTimer()
		if len(lat) == 0 {
			b.Fatal("no tick could be timed")
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2]), "ns-p50")
		b.ReportMetric(float64(lat[len(lat)*99/100]), "ns-p99")
	})
}
