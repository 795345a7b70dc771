package ibkr

// This file holds scmhub's EWrapper callbacks for market data requests:
// contract details, ticks of snapshots and streams (quotes.go), and historical bars (the others are in
// callbacks.go).

import (
	"fmt"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
)

// ContractDetails adds a row to the contract details request with that id;
// a row that cannot be converted, or an answer past the bound of
// WithMaxAnswer, fails the request with broker.ErrProtocol.
func (s *session) ContractDetails(reqID int64, cd *ibapi.ContractDetails) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byID[reqID].(*contractReq)
	if !ok {
		return
	}
	d, err := contractDetailsFromIB(cd, r.version)
	if err != nil {
		s.finishByIDLocked(reqID, err)
		return
	}
	r.rows = append(r.rows, d)
	r.size += contractDetailsSize(d)
	if lim := s.a.opts.maxAnswer; len(r.rows) > lim.Rows || r.size > lim.Bytes {
		s.finishByIDLocked(reqID, fmt.Errorf("answer exceeds %d rows or %d bytes: %w", lim.Rows, lim.Bytes, broker.ErrProtocol))
	}
}

// ContractDetailsEnd completes the contract details request with that id.
func (s *session) ContractDetailsEnd(reqID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[reqID].(*contractReq); ok {
		s.finishByIDLocked(reqID, nil)
	}
}

// ticksLocked is the quote the ticks under reqID feed: a snapshot's, or a
// stream's (q, which publishes each tick). r is nil for no such request.
func (s *session) ticksLocked(reqID int64) (r *snapReq, q *quoteSub) {
	switch x := s.byID[reqID].(type) {
	case *snapReq:
		return x, nil
	case *quoteSub:
		return &x.snap, x
	}
	return nil, nil
}

// tick applies a tick to the quote under reqID; a stream's first answer
// starts it, and a tick of the quote's fields (apply reports it) is published.
func (s *session) tick(reqID int64, apply func(r *snapReq) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, q := s.ticksLocked(reqID)
	if r == nil {
		return
	}
	changed := apply(r)
	switch {
	case q == nil:
	case q.snap.err != nil: // a tick that cannot be converted ends the stream (and fails a SubscribeQuotes still waiting)
		s.publishQuoteLocked(reqID, q)
	default:
		q.startLocked()
		if changed {
			s.publishQuoteLocked(reqID, q)
		}
	}
}

// TickPrice sets a price of the market data request with that id.
func (s *session) TickPrice(reqID int64, tt ibapi.TickType, price float64, _ ibapi.TickAttrib) {
	s.tick(reqID, func(r *snapReq) bool { return r.setPrice(tt, price) })
}

// TickSize sets a size of the market data request with that id.
func (s *session) TickSize(reqID int64, tt ibapi.TickType, size ibapi.Decimal) {
	s.tick(reqID, func(r *snapReq) bool { return r.setSize(tt, size) })
}

// TickString sets the last trade's time of the market data request with that id.
func (s *session) TickString(reqID int64, tt ibapi.TickType, value string) {
	s.tick(reqID, func(r *snapReq) bool { return r.setString(tt, value) })
}

// TickGeneric sets the halted flag of the market data request with that id.
func (s *session) TickGeneric(reqID int64, tt ibapi.TickType, value float64) {
	s.tick(reqID, func(r *snapReq) bool { return r.setHalted(tt, value) })
}

// MarketDataType records the type the gateway announced for the market data
// request with that id; a stream publishes a change of type once it has
// published a value (the first value carries it anyway).
func (s *session) MarketDataType(reqID int64, t int64) {
	s.tick(reqID, func(r *snapReq) bool {
		changed := r.q.DataType != broker.MarketDataType(t)
		r.q.DataType = broker.MarketDataType(t)
		q, _ := s.byID[reqID].(*quoteSub)
		return changed && q != nil && q.sent
	})
}

// TickReqParams is the gateway's first answer to a market data request: it
// starts a stream (a snapshot has no use for it).
func (s *session) TickReqParams(reqID int64, _ float64, _ string, _ int64) {
	s.tick(reqID, func(*snapReq) bool { return false })
}

// TickSnapshotEnd completes the snapshot request with that id.
func (s *session) TickSnapshotEnd(reqID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.byID[reqID].(*snapReq); ok {
		s.finishByIDLocked(reqID, r.err)
	}
}

// HistoricalData adds a bar to the historical request with that id; a bar
// that cannot be converted, or an answer past the bound, fails the request.
func (s *session) HistoricalData(reqID int64, bar *ibapi.Bar) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byID[reqID].(*barsReq)
	if !ok {
		return
	}
	b, err := barFromIB(bar, r.daily)
	if err != nil {
		s.finishByIDLocked(reqID, err)
		return
	}
	r.bars = append(r.bars, b)
	if lim := s.a.opts.maxAnswer; len(r.bars) > lim.Rows {
		s.finishByIDLocked(reqID, fmt.Errorf("answer exceeds %d rows: %w", lim.Rows, broker.ErrProtocol))
	}
}

// HistoricalDataEnd completes the historical request with that id.
func (s *session) HistoricalDataEnd(reqID int64, _, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[reqID].(*barsReq); ok {
		s.finishByIDLocked(reqID, nil)
	}
}
