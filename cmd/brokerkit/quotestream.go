package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/robust"
)

// `brokerkit quote --stream`: live quotes through robust, so that the streams
// survive a dropped gateway or a dead worker (a gap line says so), as JSON
// lines or, on a terminal, as a table redrawn in place.

// jsonQuoteUpdate is one line of `quote --stream --json` (and of the stream
// on a pipe): the symbol's whole top of book after a change. Gap, when set,
// says the stream was interrupted (the quote is then empty but for the
// contract, or already the first fresh one); dropped counts the changes
// conflated away because the reader was slower than the stream.
type jsonQuoteUpdate struct {
	TS      time.Time `json:"ts"`
	Symbol  string    `json:"symbol"`
	Quote   jsonQuote `json:"quote"`
	Gap     string    `json:"gap,omitempty"`
	Dropped int64     `json:"dropped,omitempty"`
}

// streamOptions are the flags of `quote --stream`.
type streamOptions struct {
	transport string
	dataType  broker.MarketDataType
	asJSON    bool // JSON lines even on a terminal
	count     int  // stop after this many lines (0: until a signal)
}

// refreshEvery bounds how often the terminal table is redrawn.
const refreshEvery = 100 * time.Millisecond

// streamQuotes subscribes to every contract through robust and prints each
// change until ctx ends (status 0), o.count lines were printed, or every
// stream has ended.
func streamQuotes(ctx context.Context, c *connFlags, log hclog.Logger, contracts []broker.Contract, o streamOptions, stdout io.Writer) error {
	rb := robust.New(func(ctx context.Context) (broker.Broker, error) {
		return openBroker(ctx, o.transport, log)
	}, robust.WithLogger(log.Named("robust")))
	defer shutdown(rb)
	if _, err := c.connect(ctx, rb); err != nil {
		return err
	}
	if o.dataType != broker.MarketDataLive {
		if err := c.call(ctx, "quote", func(ctx context.Context) error { return rb.SetMarketDataType(ctx, o.dataType) }); err != nil {
			return err
		}
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	type keyed struct {
		i int
		u broker.QuoteUpdate
		// end is set on the last value of stream i: it ended (err says why)
		end bool
	}
	all := make(chan keyed)
	for i, ct := range contracts {
		var ch <-chan broker.QuoteUpdate
		err := c.call(ctx, "quote", func(cctx context.Context) (err error) {
			// The subscription outlives the call: only its request is bounded.
			ch, err = subscribeWithin(cctx, sctx, rb, ct)
			return err
		})
		if err != nil {
			return fmt.Errorf("quote %s: %w", symbolOf(ct), err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range ch {
				select {
				case all <- keyed{i: i, u: u}:
				case <-sctx.Done():
					return
				}
			}
			select {
			case all <- keyed{i: i, end: true}:
			case <-sctx.Done():
			}
		}()
	}
	out := newQuoteWriter(stdout, contracts, o.asJSON || !isTerminal(stdout))
	defer out.flush()
	open, lines := len(contracts), 0
	for {
		select {
		case <-ctx.Done():
			return nil // a signal: the stream was the job
		case <-out.due():
			if err := out.flush(); err != nil {
				return err
			}
		case k := <-all:
			if k.end {
				if open--; open == 0 {
					return errors.New("every quote stream ended (see the log with -v)")
				}
				continue
			}
			if err := out.add(k.i, k.u); err != nil {
				return err
			}
			if lines++; o.count > 0 && lines >= o.count {
				return nil
			}
		}
	}
}

// subscribeWithin subscribes under life (the stream's lifetime) but gives up
// when call ends first.
func subscribeWithin(call, life context.Context, qs broker.QuoteStreamer, c broker.Contract) (<-chan broker.QuoteUpdate, error) {
	ctx, cancel := context.WithCancel(life)
	stop := context.AfterFunc(call, cancel)
	ch, err := qs.SubscribeQuotes(ctx, c)
	if !stop() || err != nil { // the call ended first: the subscription (if any) ends with it
		cancel()
		if err == nil {
			err = call.Err()
		}
		return nil, err
	}
	return ch, nil
}

func symbolOf(c broker.Contract) string {
	if c.Symbol != "" {
		return c.Symbol
	}
	return fmt.Sprint(c.ConID)
}

// quoteWriter prints updates as JSON lines, or keeps the newest quote of
// each contract and redraws the table at most every refreshEvery.
type quoteWriter struct {
	w         io.Writer
	contracts []broker.Contract
	lines     bool
	enc       *json.Encoder

	latest []broker.Quote
	gaps   []string
	dirty  bool
	timer  *time.Timer
}

func newQuoteWriter(w io.Writer, contracts []broker.Contract, lines bool) *quoteWriter {
	q := &quoteWriter{w: w, contracts: contracts, lines: lines, enc: json.NewEncoder(w),
		latest: make([]broker.Quote, len(contracts)), gaps: make([]string, len(contracts))}
	for i, c := range contracts {
		q.latest[i].Contract = c
	}
	return q
}

// add records u, the newest update of contract i.
func (q *quoteWriter) add(i int, u broker.QuoteUpdate) error {
	if q.lines {
		return q.enc.Encode(jsonQuoteUpdate{TS: time.Now().UTC(), Symbol: symbolOf(q.contracts[i]), Quote: toJSONQuote(u.Quote),
			Gap: u.Gap, Dropped: u.Dropped})
	}
	switch {
	case u.Gap != "" && u.Quote == (broker.Quote{Contract: u.Quote.Contract}):
		q.gaps[i] = u.Gap // the last values are stale until fresh ones come
	default:
		q.latest[i], q.gaps[i] = u.Quote, ""
		if q.latest[i].Contract.Symbol == "" {
			q.latest[i].Contract = q.contracts[i]
		}
	}
	q.dirty = true
	if q.timer == nil {
		q.timer = time.NewTimer(0)
	}
	return nil
}

// due fires when the table should be redrawn (never in JSON lines).
func (q *quoteWriter) due() <-chan time.Time {
	if q.timer == nil || !q.dirty {
		return nil
	}
	return q.timer.C
}

// flush redraws the table if anything changed since the last redraw.
func (q *quoteWriter) flush() error {
	if q.lines || !q.dirty {
		return nil
	}
	q.dirty = false
	q.timer.Reset(refreshEvery)
	_, err := io.WriteString(q.w, "\x1b[H\x1b[2J"+q.table()+"\n")
	return err
}

// table is the quotes table with a line per interrupted stream.
func (q *quoteWriter) table() string {
	var b strings.Builder
	b.WriteString(quotesText(q.latest))
	for i, g := range q.gaps {
		if g != "" {
			fmt.Fprintf(&b, "\n%s: stale, reconnecting (%s)", symbolOf(q.contracts[i]), g)
		}
	}
	fmt.Fprintf(&b, "\n%s  (Ctrl-C to stop)", time.Now().Format(time.TimeOnly))
	return b.String()
}

// isTerminal reports whether w is a terminal: a character device that is not
// the null device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}
