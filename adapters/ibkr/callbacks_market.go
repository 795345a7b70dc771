package ibkr

// This file holds scmhub's EWrapper callbacks for market data requests:
// contract details, snapshot ticks and historical bars (the others are in
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

// snapLocked is the snapshot request with that id, if any.
func (s *session) snapLocked(reqID int64) *snapReq {
	r, _ := s.byID[reqID].(*snapReq)
	return r
}

// TickPrice sets a price of the snapshot request with that id.
func (s *session) TickPrice(reqID int64, tt ibapi.TickType, price float64, _ ibapi.TickAttrib) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.snapLocked(reqID); r != nil {
		r.setPrice(tt, price)
	}
}

// TickSize sets a size of the snapshot request with that id.
func (s *session) TickSize(reqID int64, tt ibapi.TickType, size ibapi.Decimal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.snapLocked(reqID); r != nil {
		r.setSize(tt, size)
	}
}

// TickString sets the last trade's time of the snapshot request with that id.
func (s *session) TickString(reqID int64, tt ibapi.TickType, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.snapLocked(reqID); r != nil {
		r.setString(tt, value)
	}
}

// TickGeneric sets the halted flag of the snapshot request with that id.
func (s *session) TickGeneric(reqID int64, tt ibapi.TickType, value float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.snapLocked(reqID); r != nil && (tt == ibapi.HALTED || tt == ibapi.DELAYED_HALTED) {
		r.q.Halted = value > 0
	}
}

// MarketDataType records the type the gateway announced for the snapshot request with that id.
func (s *session) MarketDataType(reqID int64, t int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.snapLocked(reqID); r != nil {
		r.q.DataType = broker.MarketDataType(t)
	}
}

// TickReqParams is the gateway's first answer to a market data request; a
// snapshot has no use for it.
func (s *session) TickReqParams(int64, float64, string, int64) {}

// TickSnapshotEnd completes the snapshot request with that id.
func (s *session) TickSnapshotEnd(reqID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.snapLocked(reqID); r != nil {
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
