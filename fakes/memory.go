package fakes

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// Hook is called by a Memory before each operation with the operation's name
// and, for broker.OpAccountSummary, the tags exactly as the caller passed them
// (nil for every other operation). A non-nil error fails the operation and is
// returned as is, so a hook can inject any error, including an *broker.APIError.
// A hook that blocks simulates a slow call: it should return when ctx is done,
// which happens when the caller's context ends or the Memory is closed.
//
// A hook runs without any lock of the Memory held, so it may call the Memory's
// methods (SetScript, Publish, ...), and it may run concurrently with itself.
type Hook func(ctx context.Context, op broker.Op, tags []string) error

// MemoryOption configures a Memory.
type MemoryOption func(*Memory)

// WithHook installs h, called before each operation of the Memory (see Hook).
func WithHook(h Hook) MemoryOption { return func(m *Memory) { m.hook = h } }

// Memory is an in-memory broker.Broker that serves a Script's accounts,
// positions and account summary without any gateway, socket or goroutine.
// It honours the whole broker.Broker contract: ErrNotConnected without a
// session, ErrAlreadyConnected on a second Connect, ErrInvalidArgument for bad
// ConnectParams or summary tags, ErrClosed after Close, a done context failing
// the call with ctx.Err(), and Subscribe through a broker.Hub fed by Publish.
//
// AccountSummary answers what the ibkr adapter answers over a Gateway serving
// the same Script: rows are selected exactly as the Gateway selects them ("$"
// tags stand for all of an account's tags) and grouped per account in the
// order accounts are first named. The Script's Faults are ignored; use a Hook
// to inject failures and delays. A Memory is safe for concurrent use.
type Memory struct {
	hook    Hook
	hub     broker.Hub
	closing context.Context // done once Close has been called
	close   context.CancelFunc

	mu               sync.Mutex
	script           Script
	connected        bool
	closed           bool
	dataType         broker.MarketDataType  // set by SetMarketDataType; live from each Connect
	subs             map[*memSub]struct{}   // account update streams (readside.go)
	quoteSubs        map[*quoteSub]struct{} // quote streams (memory_quotes.go)
	quoteSubsChanged chan struct{}          // closed when quoteSubs changes (WaitQuoteStreams)
	orders           memOrders              // the order book and order streams (memory_orders.go)
}

var _ broker.Broker = (*Memory)(nil)

// NewMemory returns a disconnected Memory serving a copy of s.
func NewMemory(s Script, opts ...MemoryOption) *Memory {
	m := &Memory{script: s.Clone()}
	m.closing, m.close = context.WithCancel(context.Background())
	for _, o := range opts {
		o(m)
	}
	return m
}

// Script returns a copy of the Script being served.
func (m *Memory) Script() Script {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.script.Clone()
}

// SetScript replaces the Script being served by a copy of s; calls that start
// afterwards answer from it. The session, if any, stays open.
func (m *Memory) SetScript(s Script) {
	s = s.Clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.script = s
	m.publishLocked()
	m.publishQuotesLocked()
}

// Connected reports whether a session is open.
func (m *Memory) Connected() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.connected
}

// Publish delivers e to every current subscriber (see broker.Hub.Publish).
// After Close it does nothing.
func (m *Memory) Publish(e broker.Event) { m.hub.Publish(e) }

// begin runs the checks every operation starts with: the caller's context,
// Close, then the hook.
func (m *Memory) begin(ctx context.Context, op broker.Op, tags []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fakes: memory: %s: %w", op, err)
	}
	if m.closing.Err() != nil {
		return broker.ErrClosed
	}
	if m.hook == nil {
		return nil
	}
	hctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(m.closing, cancel)
	err := m.hook(hctx, op, tags)
	stop()
	cancel()
	switch {
	case m.closing.Err() != nil:
		return broker.ErrClosed
	case err != nil:
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("fakes: memory: %s: %w", op, ctx.Err())
	}
	return nil
}

// session returns the Script to answer from, or ErrClosed, or ErrNotConnected
// if there is no session.
func (m *Memory) session() (Script, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return Script{}, broker.ErrClosed
	case !m.connected:
		return Script{}, broker.ErrNotConnected
	}
	return m.script, nil
}

// call is begin then session.
func (m *Memory) call(ctx context.Context, op broker.Op) (Script, error) {
	if err := m.begin(ctx, op, nil); err != nil {
		return Script{}, err
	}
	return m.session()
}

// Connect implements broker.Broker: it validates p and opens the session,
// answering the Script's accounts and server version (DefaultServerVersion if 0).
func (m *Memory) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if err := m.begin(ctx, broker.OpConnect, nil); err != nil {
		return broker.ConnectInfo{}, err
	}
	if err := p.Validate(); err != nil {
		return broker.ConnectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return broker.ConnectInfo{}, broker.ErrClosed
	case m.connected:
		return broker.ConnectInfo{}, broker.ErrAlreadyConnected
	}
	m.connected, m.dataType = true, broker.MarketDataLive
	m.startOrdersLocked(p)
	return broker.ConnectInfo{Accounts: nonNil(slices.Clone(m.script.Accounts)), ServerVersion: m.script.serverVersion()}, nil
}

// Disconnect implements broker.Broker; it is idempotent.
func (m *Memory) Disconnect(ctx context.Context) error {
	if err := m.begin(ctx, broker.OpDisconnect, nil); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return broker.ErrClosed
	}
	m.connected = false
	m.endSubsLocked()
	m.endOrderSubsLocked()
	return nil
}

// Accounts implements broker.Broker with the Script's accounts.
func (m *Memory) Accounts(ctx context.Context) ([]string, error) {
	s, err := m.call(ctx, broker.OpAccounts)
	if err != nil {
		return nil, err
	}
	return nonNil(slices.Clone(s.Accounts)), nil
}

// Positions implements broker.Broker with the Script's positions, in order.
func (m *Memory) Positions(ctx context.Context) ([]broker.Position, error) {
	s, err := m.call(ctx, broker.OpPositions)
	if err != nil {
		return nil, err
	}
	return nonNil(slices.Clone(s.Positions)), nil
}

// AccountSummary implements broker.Broker with the Script's summary values for
// tags (broker.DefaultSummaryTags when none), selected as the Gateway selects
// them. A tag that is empty or contains a comma or NUL fails with
// broker.ErrInvalidArgument. The result is never nil.
func (m *Memory) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	if err := m.begin(ctx, broker.OpAccountSummary, tags); err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		tags = broker.DefaultSummaryTags
	}
	for _, t := range tags {
		if t == "" || strings.ContainsAny(t, ",\x00") {
			return nil, fmt.Errorf("%w: summary tag %q", broker.ErrInvalidArgument, t)
		}
	}
	s, err := m.session()
	if err != nil {
		return nil, err
	}
	out := []broker.AccountSummary{}
	index := map[string]int{}
	eachSummaryRow(s.Summary, strings.Join(tags, ","), func(account, tag string, v broker.SummaryValue) {
		i, ok := index[account]
		if !ok {
			i = len(out)
			index[account] = i
			out = append(out, broker.AccountSummary{Account: account, Values: map[string]broker.SummaryValue{}})
		}
		out[i].Values[tag] = v
	})
	return out, nil
}

// Ping implements broker.Broker; it succeeds whenever a session is open.
func (m *Memory) Ping(ctx context.Context) error {
	_, err := m.call(ctx, broker.OpPing)
	return err
}

// Subscribe implements broker.Broker: the channel receives what Publish
// publishes until ctx is done or the Memory is closed.
func (m *Memory) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	return m.hub.Subscribe(ctx)
}

// Close implements broker.Broker: it ends the session, cancels the context of
// every running hook, closes every subscription and makes every later call fail
// with broker.ErrClosed. It is idempotent and always returns nil.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed, m.connected = true, false
	m.endSubsLocked()
	m.endOrderSubsLocked()
	m.mu.Unlock()
	m.close()
	m.hub.Close()
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// requestOf is the contract c as a request names it (what the adapter sends).
func requestOf(c broker.Contract) reqContract {
	r := reqContract{ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Expiry: c.Expiry, Right: c.Right,
		Multiplier: c.Multiplier, Exchange: c.Exchange, Currency: c.Currency, LocalSymbol: c.LocalSymbol,
		TradingC: c.TradingClass}
	if !c.Strike.IsZero() {
		r.Strike = c.Strike.String()
	}
	return r
}

// memoryAPIError turns the ERR_MSG fields the Gateway would send into the
// error the adapter returns for them.
func memoryAPIError(f []string) error {
	return &broker.APIError{ReqID: intField(f, 1, -1), Code: intField(f, 2, 0), Message: field(f, 3)}
}

// lookupOne is the one instrument c names, or the Gateway's error for it.
func (s Script) lookupOne(c broker.Contract) (Instrument, error) {
	in, e := s.lookup(DefaultServerVersion, 1, requestOf(c))
	if e != nil {
		return Instrument{}, memoryAPIError(e)
	}
	return in, nil
}

// ContractDetails implements broker.Broker with the Script's instruments that
// c matches, as the Gateway matches them.
func (m *Memory) ContractDetails(ctx context.Context, c broker.Contract) ([]broker.ContractDetails, error) {
	s, err := m.call(ctx, broker.OpContractDetails)
	if err != nil {
		return nil, err
	}
	r := requestOf(c)
	if r.empty() {
		return nil, fmt.Errorf("%w: the contract names no instrument", broker.ErrInvalidArgument)
	}
	found := s.find(r)
	if len(found) == 0 {
		return nil, &broker.APIError{ReqID: 1, Code: CodeNoSecurityDefinition, Message: textNoSecurityDefinition}
	}
	out := make([]broker.ContractDetails, 0, len(found))
	for _, in := range found {
		out = append(out, in.Details())
	}
	return out, nil
}

// Details is the instrument as ContractDetails answers it.
func (in Instrument) Details() broker.ContractDetails {
	return broker.ContractDetails{Contract: in.Contract, PrimaryExchange: in.PrimaryExchange, LongName: in.LongName,
		MinTick: in.minTick(), TimeZone: in.TimeZone, TradingHours: in.TradingHours, LiquidHours: in.LiquidHours,
		ValidExchanges: in.ValidExchanges}
}

// Snapshot implements broker.Broker with the instrument's scripted quote (a
// Memory's quotes never move). A delayed-only instrument fails with IB's
// 10089 unless the market data type is delayed or delayed-frozen.
func (m *Memory) Snapshot(ctx context.Context, c broker.Contract) (broker.Quote, error) {
	s, err := m.call(ctx, broker.OpSnapshot)
	if err != nil {
		return broker.Quote{}, err
	}
	if requestOf(c).empty() {
		return broker.Quote{}, fmt.Errorf("%w: the contract names no instrument", broker.ErrInvalidArgument)
	}
	in, err := s.lookupOne(c)
	if err != nil {
		return broker.Quote{}, err
	}
	m.mu.Lock()
	t := m.dataType
	m.mu.Unlock()
	q, err := in.SnapshotAs(t, time.Now())
	q.Contract = c // as the caller named it, like the adapter
	return q, err
}

// SnapshotAs is the snapshot of in that a session with market data type t
// receives at now: what Gateway sends, and the error it answers for a
// delayed-only instrument under a live or frozen type (10089). t zero is live.
// Its Contract is the instrument's; a Broker answers with the caller's.
func (in Instrument) SnapshotAs(t broker.MarketDataType, now time.Time) (broker.Quote, error) {
	if t == 0 {
		t = broker.MarketDataLive
	}
	if in.DelayedOnly && (t == broker.MarketDataLive || t == broker.MarketDataFrozen) {
		return broker.Quote{}, &broker.APIError{ReqID: 1, Code: CodeDelayedAvailable, Message: NoticeText(CodeDelayedAvailable)}
	}
	if !in.DelayedOnly && t != broker.MarketDataFrozen {
		t = broker.MarketDataLive // live data is sent whenever the session has it
	}
	q := in.Quote
	out := broker.Quote{Contract: in.Contract, Bid: q.Bid, Ask: q.Ask, Last: q.Last, Open: q.Open, High: q.High,
		Low: q.Low, Close: q.Close, Volume: q.Volume, Halted: in.Halted, DataType: t, Time: now.UTC()}
	if !q.Bid.IsZero() {
		out.BidSize = q.BidSize
	}
	if !q.Ask.IsZero() {
		out.AskSize = q.AskSize
	}
	if !q.Last.IsZero() {
		out.LastSize, out.LastTime = q.LastSize, now.UTC().Truncate(time.Second)
	}
	return out, nil
}

// HistoricalBars implements broker.Broker with the bars the Gateway generates
// for the same request (deterministic from the instrument's seed).
func (m *Memory) HistoricalBars(ctx context.Context, c broker.Contract, q broker.BarsRequest) ([]broker.Bar, error) {
	s, err := m.call(ctx, broker.OpHistoricalBars)
	if err != nil {
		return nil, err
	}
	if requestOf(c).empty() || strings.TrimSpace(q.Duration) == "" || strings.TrimSpace(q.BarSize) == "" {
		return nil, fmt.Errorf("%w: bars request %+v for %+v", broker.ErrInvalidArgument, q, c)
	}
	s.Faults = Faults{}
	return s.Bars(c, q, time.Now())
}

// Bars is the answer the Gateway gives to a REQ_HISTORICAL_DATA for c and q at
// now (dates as epoch seconds), as the adapter returns it.
func (s Script) Bars(c broker.Contract, q broker.BarsRequest, now time.Time) ([]broker.Bar, error) {
	if q.WhatToShow == "" {
		q.WhatToShow = "TRADES"
	}
	end := ""
	if !q.End.IsZero() {
		end = q.End.UTC().Format("20060102 15:04:05") + " UTC"
	}
	h := histRequest{reqID: 1, contract: requestOf(c), end: end, barSize: q.BarSize, duration: q.Duration,
		useRTH: q.UseRTH, whatToShow: strings.ToUpper(q.WhatToShow), formatDate: 2}
	msgs := replyHistorical(s, DefaultServerVersion, h, now)
	f := msgs[0]
	if field(f, 0) == itoa(outErrMsg) {
		return nil, memoryAPIError(f)
	}
	n := int(intField(f, 2, 0))
	daily := barSizes[strings.ToLower(strings.TrimSpace(q.BarSize))] >= 24*time.Hour
	out := make([]broker.Bar, 0, n)
	for i := range n {
		b := f[3+8*i : 3+8*i+8]
		var bar broker.Bar
		if daily {
			bar.Time, _ = time.Parse("20060102", b[0])
		} else {
			bar.Time = time.Unix(intField(b, 0, 0), 0).UTC()
		}
		for j, dst := range []*broker.Decimal{&bar.Open, &bar.High, &bar.Low, &bar.Close, &bar.Volume, &bar.WAP} {
			*dst = broker.MustDecimal(b[1+j])
		}
		bar.Count = intField(b, 7, 0)
		out = append(out, bar)
	}
	return out, nil
}

// SetMarketDataType implements broker.Broker: later snapshots of this session
// are of type t.
func (m *Memory) SetMarketDataType(ctx context.Context, t broker.MarketDataType) error {
	if _, err := m.call(ctx, broker.OpSetMarketDataType); err != nil {
		return err
	}
	if !t.Valid() {
		return fmt.Errorf("%w: market data type %d", broker.ErrInvalidArgument, int(t))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dataType = t
	return nil
}
