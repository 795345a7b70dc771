package fakes

import (
	"context"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// This file is the read side of the port as the Script describes it: what
// AccountUpdates and Executions answer over a gateway serving the Script (the
// conformance kit checks against these) and the Memory's methods.

// AccountUpdate returns what REQ_ACCOUNT_UPDATES reports for account: the
// account's summary values as ACCT_VALUE rows sorted by key, its positions with
// their marks as PORTFOLIO_VALUE rows, in order. UpdateTime is left "" (the
// gateway sends the time of day). ok is false if the Script does not manage
// account.
//
// Prices, values, average costs, PnL and strikes are IB doubles on the wire
// (the protobuf schema of PORTFOLIO_VALUE says double; the text form is a
// double's text): they are given as Double rounds them. Positions are exact.
func (s Script) AccountUpdate(account string) (u broker.AccountUpdate, ok bool) {
	if !slices.Contains(s.Accounts, account) {
		return broker.AccountUpdate{}, false
	}
	u = broker.AccountUpdate{Account: account, Values: []broker.AccountValue{}, Portfolio: []broker.PortfolioItem{}}
	for _, a := range s.Summary {
		if a.Account != account {
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(a.Values)) {
			v := a.Values[key]
			u.Values = append(u.Values, broker.AccountValue{Key: key, Value: v.Value, Currency: v.Currency})
		}
	}
	for _, p := range s.Positions {
		if p.Account != account {
			continue
		}
		m := s.mark(p)
		c := p.Contract
		c.Strike = Double(c.Strike)
		u.Portfolio = append(u.Portfolio, broker.PortfolioItem{Account: account, Contract: c,
			Position: p.Quantity, MarketPrice: Double(m.MarketPrice), MarketValue: Double(m.MarketValue),
			AvgCost: Double(p.AvgCost), UnrealizedPnL: Double(m.UnrealizedPnL), RealizedPnL: Double(m.RealizedPnL)})
	}
	return u, true
}

// ExecutionsMatching returns what REQ_EXECUTIONS with filter f reports: the
// Script's executions that match, in order, each with its commission report.
// Prices, commissions, realized PnL and strikes are doubles on the wire, given
// as Double rounds them; share counts are exact.
func (s Script) ExecutionsMatching(f broker.ExecutionFilter) []broker.Execution {
	out := []broker.Execution{}
	for _, e := range s.executions(f.ClientID, f.Account, f.Since, f.Symbol, f.SecType, f.Exchange, f.Side) {
		out = append(out, e.broker())
	}
	return out
}

// broker returns e as the port reports it: CumQty and AvgPrice default to
// Shares and Price as on the wire.
func (e Execution) broker() broker.Execution {
	cum, avg := e.CumQty, e.AvgPrice
	if cum.IsZero() {
		cum = e.Shares
	}
	if avg.IsZero() {
		avg = e.Price
	}
	c := e.Contract
	c.Strike = Double(c.Strike)
	return broker.Execution{ExecID: e.ExecID, OrderID: e.OrderID, PermID: e.PermID, ClientID: e.ClientID,
		Account: e.Account, Contract: c, Time: e.Time, Exchange: e.Exchange, Side: e.Side,
		Shares: e.Shares, Price: Double(e.Price), CumQty: cum, AvgPrice: Double(avg), OrderRef: e.OrderRef,
		Commission: Double(e.Commission), CommissionCurrency: e.CommissionCurrency, RealizedPnL: Double(e.RealizedPnL)}
}

// Double returns d as an IB double carries it: the shortest decimal text that
// reads back as the float64 nearest to d. Decimals of at most 15 significant
// digits come back unchanged.
func Double(d broker.Decimal) broker.Decimal {
	f, err := strconv.ParseFloat(d.String(), 64)
	if err != nil || math.IsInf(f, 0) {
		return d // unreachable for a Decimal within float64's range
	}
	return broker.MustDecimal(strconv.FormatFloat(f, 'f', -1, 64))
}

// AccountUpdates implements broker.Broker with Script.AccountUpdate and the
// time of day as UpdateTime. An account the Script does not manage (or ""
// while it manages several) fails with broker.ErrInvalidArgument.
func (m *Memory) AccountUpdates(ctx context.Context, account string) (broker.AccountUpdate, error) {
	s, err := m.call(ctx, broker.OpAccountUpdates)
	if err != nil {
		return broker.AccountUpdate{}, err
	}
	if account == "" && len(s.Accounts) == 1 {
		account = s.Accounts[0]
	}
	u, ok := s.AccountUpdate(account)
	if !ok {
		return broker.AccountUpdate{}, fmt.Errorf("%w: account %q is not managed by this session", broker.ErrInvalidArgument, account)
	}
	u.UpdateTime = time.Now().Format("15:04")
	return u, nil
}

// Executions implements broker.Broker with Script.ExecutionsMatching.
func (m *Memory) Executions(ctx context.Context, f broker.ExecutionFilter) ([]broker.Execution, error) {
	s, err := m.call(ctx, broker.OpExecutions)
	if err != nil {
		return nil, err
	}
	return s.ExecutionsMatching(f), nil
}

// OpenOrders implements broker.Broker with the working orders of the
// session's client id in the Memory's order book (memory_orders.go), oldest
// first, as the adapter reports them over a Gateway.
func (m *Memory) OpenOrders(ctx context.Context) ([]broker.Order, error) {
	if _, err := m.call(ctx, broker.OpOpenOrders); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.openOrdersLocked(), nil
}

// CompletedOrders implements broker.Broker with the filled and cancelled
// orders of the Memory's order book, oldest first.
func (m *Memory) CompletedOrders(ctx context.Context) ([]broker.Order, error) {
	if _, err := m.call(ctx, broker.OpCompletedOrders); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.completedOrdersLocked(), nil
}

// PushAccountUpdates sends the current Script's account values, portfolio and
// update time of account to every live API connection, as a gateway does for a
// client subscribed with REQ_ACCOUNT_UPDATES when the account changes (without
// ACCT_DOWNLOAD_END, which only ends the first download), and returns how many
// connections it reached. It does nothing for an account the Script does not
// manage.
func (g *Gateway) PushAccountUpdates(account string) int {
	sc := g.currentScript()
	if !slices.Contains(sc.Accounts, account) {
		return 0
	}
	n := 0
	for _, c := range g.live(true) {
		rows := replyAccountUpdates(sc, int(c.negotiated.Load()), []string{itoa(inReqAcctData), "2", "1", account})
		ok := true
		for _, f := range rows[:len(rows)-1] {
			if c.send(f...) != nil {
				ok = false
				break
			}
		}
		if ok {
			n++
		}
	}
	return n
}

var _ broker.AccountStreamer = (*Memory)(nil)

// SubscribeAccountUpdates implements broker.AccountStreamer: the channel
// receives AccountUpdates' answer at once, then the account's new state after
// every SetScript that changes it (PushAccountUpdates is the gateway's
// counterpart), newest only. It is closed when ctx is done, on Disconnect and
// on Close. An account the Script does not manage fails with
// broker.ErrInvalidArgument.
func (m *Memory) SubscribeAccountUpdates(ctx context.Context, account string) (<-chan broker.AccountUpdate, error) {
	u, err := m.AccountUpdates(ctx, account)
	if err != nil {
		return nil, err
	}
	ch := make(chan broker.AccountUpdate, 1)
	ch <- u
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || !m.connected {
		return nil, m.sessionErrLocked()
	}
	sub := &memSub{account: u.Account, ch: ch, last: u}
	if m.subs == nil {
		m.subs = map[*memSub]struct{}{}
	}
	m.subs[sub] = struct{}{}
	sub.stop = context.AfterFunc(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.endSubLocked(sub)
	})
	return ch, nil
}

// memSub is one subscriber of a Memory's account stream.
type memSub struct {
	account string
	ch      chan broker.AccountUpdate
	last    broker.AccountUpdate // the state last delivered
	stop    func() bool
}

func (m *Memory) sessionErrLocked() error {
	if m.closed {
		return broker.ErrClosed
	}
	return broker.ErrNotConnected
}

// endSubLocked closes sub's channel, once.
func (m *Memory) endSubLocked(sub *memSub) {
	if _, ok := m.subs[sub]; ok {
		delete(m.subs, sub)
		sub.stop()
		close(sub.ch)
	}
}

// endSubsLocked ends every subscription, of account updates and of quotes
// (Disconnect, Close).
func (m *Memory) endSubsLocked() {
	for sub := range m.subs {
		m.endSubLocked(sub)
	}
	for sub := range m.quoteSubs {
		m.endQuoteSubLocked(sub)
	}
}

// publishLocked hands every subscriber its account's state from the current
// Script if it changed (update time aside).
func (m *Memory) publishLocked() {
	for sub := range m.subs {
		u, ok := m.script.AccountUpdate(sub.account)
		if !ok {
			continue
		}
		u.UpdateTime = sub.last.UpdateTime
		if reflect.DeepEqual(u, sub.last) {
			continue
		}
		u.UpdateTime = time.Now().Format("15:04")
		sub.last = u
		broker.Latest(sub.ch, u.Clone())
	}
}
