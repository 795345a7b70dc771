package fakes

import (
	"math/big"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// This file serves market data: REQ_MARKET_DATA_TYPE, REQ_MKT_DATA
// (snapshots and streams) and CANCEL_MKT_DATA, with one pump goroutine per
// connection at most (see docs/adr/0012-fake-market-data.md).

// Market data errors and warnings real TWS sends, with its texts (named in
// broker where broker names them; 101, 322, 10089 and 10167 are not yet).
const (
	// CodeMaxRate: more than 50 messages per second; TWS then disconnects.
	CodeMaxRate = broker.IBCodeMaxRateExceeded
	// CodeMaxTickers: too many simultaneous market data lines.
	CodeMaxTickers = 101
	// CodeHistoricalPacing: historical data pacing violation or query error.
	CodeHistoricalPacing = broker.IBCodeHistoricalDataError
	// CodeDuplicateTicker: a request id already streaming.
	CodeDuplicateTicker = 322
	// CodeNotSubscribed: no market data subscription for the instrument.
	CodeNotSubscribed = broker.IBCodeMarketDataNotSubscribed
	// CodeDelayedAvailable: live data needs a subscription; delayed data is available.
	CodeDelayedAvailable = 10089
	// CodeDisplayingDelayed: warning that delayed data follows.
	CodeDisplayingDelayed = 10167
	// CodePartlyNotSubscribed: warning that part of the data is not
	// subscribed; the rest follows.
	CodePartlyNotSubscribed = broker.IBCodePartlyNotSubscribed
)

func init() {
	for code, text := range map[int64]string{
		CodeMaxRate:              "Max rate of messages per second has been exceeded:max=50 rec=51 (1)",
		CodeMaxTickers:           "Max number of tickers has been reached",
		CodeHistoricalPacing:     "Historical Market Data Service error message:Historical data request pacing violation",
		CodeDuplicateTicker:      "Error processing request.-'bI' : cause - Duplicate ticker id",
		CodeNotSubscribed:        "Requested market data is not subscribed.",
		CodeDelayedAvailable:     "Requested market data requires additional subscription for API. See link in 'Market Data Connections dialog' for more details.Delayed market data is available.",
		CodeDisplayingDelayed:    "Requested market data is not subscribed. Displaying delayed market data.",
		CodePartlyNotSubscribed:  "Part of requested market data is not subscribed. Subscription-independent ticks are still active.Delayed market data is not available.",
		CodeNoSecurityDefinition: textNoSecurityDefinition,
		CodeValidationError:      "Error validating request.-'bN' : cause - the fake gateway was told to refuse this request",
	} {
		if _, ok := noticeTexts[code]; !ok {
			noticeTexts[code] = text
		}
	}
}

// Tick types (IB's TickType numbers).
const (
	tickBidSize         = 0
	tickBid             = 1
	tickAsk             = 2
	tickAskSize         = 3
	tickLast            = 4
	tickLastSize        = 5
	tickHigh            = 6
	tickLow             = 7
	tickVolume          = 8
	tickClose           = 9
	tickOpen            = 14
	tickLastTime        = 45
	tickHalted          = 49
	delayedOffset       = 66 - tickBid // DELAYED_BID 66 ... DELAYED_OPEN 76
	tickDelayedLastTime = 88
	tickDelayedHalted   = 90
)

// Market data types (REQ_MARKET_DATA_TYPE, MARKET_DATA_TYPE).
const (
	mdLive          = 1
	mdFrozen        = 2
	mdDelayed       = 3
	mdDelayedFrozen = 4
)

// pumpStep is the pump's period; maxStepsPerBatch bounds one subscription's
// ticks per period.
const (
	pumpStep         = 5 * time.Millisecond
	maxStepsPerBatch = 1000
)

// marketState is one connection's market data: its data type and its live
// subscriptions. The pump sends with mu held, so that a cancelled
// subscription never sends again once CANCEL_MKT_DATA has been read.
type marketState struct {
	mu       sync.Mutex
	dataType int
	subs     map[int64]*mdSub
	pumping  bool
	wake     chan struct{}
}

// mdSub is one market data request.
type mdSub struct {
	reqID     int64
	clientID  int64 // of its connection, for WithTickHook
	in        Instrument
	delayed   bool
	snapshot  bool
	moving    bool
	pending   [][]string // initial ticks held back by Faults.Market.FirstTickDelay
	notBefore time.Time
	rng       *rand.Rand
	tick      *big.Rat
	bid, ask  int64 // in ticks
	last      int64
	volume    *big.Rat
	due       float64
	lastRun   time.Time
	steps     int
	silent    bool
	halted    bool // Instrument.Halted, then Gateway.SetHalted: the quote does not move
}

func (c *conn) market() *marketState {
	c.md.mu.Lock()
	defer c.md.mu.Unlock()
	if c.md.subs == nil {
		c.md.subs = map[int64]*mdSub{}
		c.md.dataType = mdLive
		c.md.wake = make(chan struct{}, 1)
	}
	return &c.md
}

// replyMarketDataType honours "59,1,type".
func (c *conn) replyMarketDataType(v int, fields []string) [][]string {
	t := intField(fields, 2, 0)
	if t < mdLive || t > mdDelayedFrozen {
		return [][]string{errorFields(v, -1, CodeValidationError,
			"Error validating request.-'bZ' : cause - Invalid market data type "+field(fields, 2))}
	}
	m := c.market()
	m.mu.Lock()
	m.dataType = int(t)
	m.mu.Unlock()
	return nil
}

// replyMktData answers REQ_MKT_DATA "1,11,reqId,contract(12),[combo legs,]
// deltaNeutral[,conId,delta,price],genericTicks,snapshot[,regulatory][,options]".
func (c *conn) replyMktData(sc Script, v int, fields []string) [][]string {
	reqID := intField(fields, 2, -1)
	clientID := c.clientID()
	errAnswer := func(code int64) [][]string { return [][]string{errorFields(v, reqID, code, NoticeText(code))} }
	r := contractFieldsAt(fields, 3)
	i := 15
	if r.SecType == "BAG" {
		return errAnswer(CodeNoSecurityDefinition) // the fake knows no combos
	}
	if field(fields, i) == "1" {
		i += 3
	}
	snapshot := field(fields, i+2) == "1"
	mf := sc.Faults.Market
	if code := mf.MarketDataError; code != 0 && code != CodeDisplayingDelayed && code != CodePartlyNotSubscribed {
		return errAnswer(code)
	}
	in, e := sc.lookup(v, reqID, r)
	if e != nil {
		return [][]string{e}
	}
	m := c.market()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.subs[reqID]; dup {
		return errAnswer(CodeDuplicateTicker)
	}
	maxTickers := mf.MaxTickers
	if maxTickers == 0 {
		maxTickers = 100
	}
	if !snapshot && len(m.subs) >= maxTickers {
		return errAnswer(CodeMaxTickers)
	}
	var out [][]string
	shown := mdLive
	delayed := in.DelayedOnly || mf.MarketDataError == CodeDisplayingDelayed
	switch {
	case delayed && (m.dataType == mdLive || m.dataType == mdFrozen):
		if in.DelayedOnly {
			return errAnswer(CodeDelayedAvailable)
		}
		out = append(out, errorFields(v, reqID, CodeDisplayingDelayed, NoticeText(CodeDisplayingDelayed)))
		shown = mdDelayed
	case delayed:
		out = append(out, errorFields(v, reqID, CodeDisplayingDelayed, NoticeText(CodeDisplayingDelayed)))
		shown = m.dataType
	case m.dataType == mdFrozen:
		shown = mdFrozen
	}
	if mf.MarketDataError == CodePartlyNotSubscribed {
		out = append(out, errorFields(v, reqID, CodePartlyNotSubscribed, NoticeText(CodePartlyNotSubscribed)))
	}
	if v >= minVerMarketRules {
		out = append(out, []string{itoa(outTickReqParams), i64(reqID), in.minTick().String(), "9c0001", "3"})
	}
	out = append(out, []string{itoa(outMarketDataType), "1", i64(reqID), itoa(shown)})
	s := newSub(reqID, in, delayed, snapshot)
	s.clientID = clientID
	s.moving = !snapshot && in.TicksPerSecond > 0 && shown != mdFrozen && shown != mdDelayedFrozen
	ticks := s.initialTicks()
	if snapshot {
		ticks = append(ticks, []string{itoa(outTickSnapshotEnd), "1", i64(reqID)})
	}
	if d := mf.FirstTickDelay; d > 0 {
		s.pending, s.notBefore = ticks, time.Now().Add(d)
	} else {
		out = append(out, ticks...)
		if snapshot {
			return out
		}
	}
	s.lastRun = time.Now()
	m.subs[reqID] = s
	if s.moving || s.pending != nil {
		c.startPumpLocked(m, sc.Faults.Market)
	}
	return out
}

// replyCancelMktData stops a subscription at once: nothing of it is sent
// after this returns. TWS confirms nothing.
func (c *conn) replyCancelMktData(fields []string) [][]string {
	m := c.market()
	m.mu.Lock()
	delete(m.subs, intField(fields, 2, -1))
	m.mu.Unlock()
	return nil
}

func newSub(reqID int64, in Instrument, delayed, snapshot bool) *mdSub {
	tick := in.minTick().Rat()
	toTicks := func(p *big.Rat) int64 {
		q := new(big.Rat).Quo(p, tick)
		n := new(big.Int).Quo(q.Num(), q.Denom())
		return n.Int64()
	}
	s := &mdSub{reqID: reqID, in: in, delayed: delayed, snapshot: snapshot, tick: tick,
		rng: rand.New(rand.NewPCG(in.seed(), uint64(reqID))), volume: new(big.Rat).Set(in.Quote.Volume.Rat())}
	s.bid, s.ask, s.last = toTicks(in.Quote.Bid.Rat()), toTicks(in.Quote.Ask.Rat()), toTicks(in.Quote.Last.Rat())
	s.halted = in.Halted
	return s
}

func (s *mdSub) price(ticks int64) string {
	return ratDecimal(new(big.Rat).Mul(big.NewRat(ticks, 1), s.tick)).String()
}

// delayedTick maps each live tick type to its delayed one.
var delayedTick = map[int]int{tickBidSize: 69, tickBid: 66, tickAsk: 67, tickAskSize: 70, tickLast: 68,
	tickLastSize: 71, tickHigh: 72, tickLow: 73, tickVolume: 74, tickClose: 75, tickOpen: 76,
	tickLastTime: tickDelayedLastTime, tickHalted: tickDelayedHalted}

// tt maps a live tick type to the delayed one when the subscription is delayed.
func (s *mdSub) tt(t int) string {
	if d, ok := delayedTick[t]; ok && s.delayed {
		return itoa(d)
	}
	return itoa(t)
}

func (s *mdSub) tickPrice(t int, price, size string) []string {
	return []string{itoa(outTickPrice), "6", i64(s.reqID), s.tt(t), price, size, "0"}
}

func (s *mdSub) tickSize(t int, size string) []string {
	return []string{itoa(outTickSize), "6", i64(s.reqID), s.tt(t), size}
}

// initialTicks is what TWS sends first: bid, ask, last (each price with its
// size, then the size again), last timestamp, volume, high, low, close, open,
// halted.
func (s *mdSub) initialTicks() [][]string {
	q := s.in.Quote
	var out [][]string
	if !q.Bid.IsZero() {
		out = append(out, s.tickPrice(tickBid, s.price(s.bid), q.BidSize.String()), s.tickSize(tickBidSize, q.BidSize.String()))
	}
	if !q.Ask.IsZero() {
		out = append(out, s.tickPrice(tickAsk, s.price(s.ask), q.AskSize.String()), s.tickSize(tickAskSize, q.AskSize.String()))
	}
	if !q.Last.IsZero() {
		out = append(out, s.tickPrice(tickLast, s.price(s.last), q.LastSize.String()),
			s.tickSize(tickLastSize, q.LastSize.String()),
			[]string{itoa(outTickString), "6", i64(s.reqID), s.tt(tickLastTime), i64(time.Now().Unix())})
	}
	if !q.Volume.IsZero() {
		out = append(out, s.tickSize(tickVolume, q.Volume.String()))
	}
	for _, p := range []struct {
		t int
		d string
		z bool
	}{{tickHigh, q.High.String(), q.High.IsZero()}, {tickLow, q.Low.String(), q.Low.IsZero()},
		{tickClose, q.Close.String(), q.Close.IsZero()}, {tickOpen, q.Open.String(), q.Open.IsZero()}} {
		if !p.z {
			out = append(out, s.tickPrice(p.t, p.d, "0"))
		}
	}
	halted := "0"
	if s.in.Halted {
		halted = "1"
	}
	return append(out, []string{itoa(outTickGeneric), "6", i64(s.reqID), s.tt(tickHalted), halted})
}

// step moves the quote one random-walk step and returns the messages saying so.
func (s *mdSub) step(now time.Time) [][]string {
	switch s.rng.IntN(4) {
	case 0, 1: // the book moves by one tick, keeping its spread
		d := int64(1)
		if s.rng.IntN(2) == 0 {
			d = -1
		}
		if s.bid+d < 1 {
			d = 1
		}
		s.bid, s.ask = s.bid+d, s.ask+d
		if s.rng.IntN(2) == 0 {
			return [][]string{s.tickPrice(tickBid, s.price(s.bid), s.in.Quote.BidSize.String())}
		}
		return [][]string{s.tickPrice(tickAsk, s.price(s.ask), s.in.Quote.AskSize.String())}
	case 2: // a trade at the bid or ask
		s.last = s.bid
		if s.rng.IntN(2) == 0 {
			s.last = s.ask
		}
		size := s.in.Quote.LastSize
		s.volume.Add(s.volume, size.Rat())
		return [][]string{s.tickPrice(tickLast, s.price(s.last), size.String()),
			s.tickSize(tickVolume, ratDecimal(s.volume).String()),
			{itoa(outTickString), "6", i64(s.reqID), s.tt(tickLastTime), i64(now.Unix())}}
	default: // the bid size changes
		return [][]string{s.tickSize(tickBidSize, s.in.Quote.BidSize.String())}
	}
}

// startPumpLocked starts the connection's pump unless it runs; m.mu is held.
func (c *conn) startPumpLocked(m *marketState, mf MarketFaults) {
	if m.pumping {
		select {
		case m.wake <- struct{}{}:
		default:
		}
		return
	}
	m.pumping = true
	c.g.wg.Add(1)
	go c.pump(m, mf)
}

// pump sends the held-back first ticks and the moving quotes of every
// subscription until none needs it or the connection ends.
func (c *conn) pump(m *marketState, mf MarketFaults) {
	defer c.g.wg.Done()
	t := time.NewTimer(pumpStep)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			m.mu.Lock()
			m.pumping = false
			m.mu.Unlock()
			return
		case <-m.wake:
		case <-t.C:
		}
		m.mu.Lock()
		busy, ok := c.pumpOnceLocked(m, mf, time.Now())
		if !busy || !ok {
			m.pumping = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		t.Reset(pumpStep)
	}
}

// pumpOnceLocked runs one period; it reports whether any subscription still
// needs the pump, and whether the connection is still writable.
func (c *conn) pumpOnceLocked(m *marketState, mf MarketFaults, now time.Time) (busy, ok bool) {
	for id, s := range m.subs {
		if s.pending != nil {
			if now.Before(s.notBefore) {
				busy = true
				continue
			}
			for _, f := range s.pending {
				if c.send(f...) != nil {
					return false, false
				}
			}
			s.pending, s.lastRun = nil, now
			if s.snapshot {
				delete(m.subs, id)
				continue
			}
		}
		if !s.moving || s.silent {
			continue
		}
		busy = true
		if s.halted {
			s.due, s.lastRun = 0, now
			continue
		}
		s.due += s.in.TicksPerSecond * now.Sub(s.lastRun).Seconds()
		s.lastRun = now
		n := min(int(s.due), maxStepsPerBatch)
		s.due -= float64(int(s.due))
		for range n {
			if mf.StreamStopsAfterTicks > 0 && s.steps >= mf.StreamStopsAfterTicks {
				s.silent = true
				break
			}
			s.steps++
			msgs := s.step(now)
			if s.in.StepInBidSize {
				msgs = append(msgs, s.tickSize(tickBidSize, itoa(s.steps)))
			}
			var at time.Time
			for i, f := range msgs {
				if i == len(msgs)-1 {
					at = time.Now()
				}
				if c.send(f...) != nil {
					return false, false
				}
			}
			if hook := c.g.opts.tickHook; hook != nil {
				hook(TickWrite{ClientID: s.clientID, ReqID: s.reqID, ConID: s.in.Contract.ConID, Step: int64(s.steps), At: at})
			}
		}
	}
	return busy, true
}

// SetHalted halts (or resumes) trading in the instrument with conID, as an
// exchange halt does: every live subscription to it gets TICK_GENERIC halted
// (tick type 49, or 90 when delayed) with 1 or 0 and stops (or resumes)
// moving, and later subscriptions start so. It returns how many
// subscriptions it told.
func (g *Gateway) SetHalted(conID int64, halted bool) int {
	g.mu.Lock()
	g.script = g.script.Clone()
	for i := range g.script.Instruments {
		if g.script.Instruments[i].Contract.ConID == conID {
			g.script.Instruments[i].Halted = halted
		}
	}
	g.mu.Unlock()
	value := "0"
	if halted {
		value = "1"
	}
	n := 0
	for _, c := range g.live(true) {
		m := &c.md
		m.mu.Lock()
		for _, s := range m.subs {
			if s.in.Contract.ConID != conID || s.snapshot || s.halted == halted {
				continue
			}
			s.halted = halted
			if c.send(itoa(outTickGeneric), "6", i64(s.reqID), s.tt(tickHalted), value) == nil {
				n++
			}
		}
		m.mu.Unlock()
	}
	return n
}
