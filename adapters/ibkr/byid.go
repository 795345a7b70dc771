package ibkr

import (
	"context"
	"fmt"

	"github.com/brokerkit/brokerkit/broker"
)

// Requests answered under their request id. Most requests of the TWS API carry
// an id the client chooses (REQ_ACCOUNT_SUMMARY today; executions, contract
// details, open orders and market data snapshots next): the gateway answers
// with rows and an end marker under that id, or with an ERR_MSG naming it. The
// session keeps one table of them, byID, so that an operation of that kind adds
// only its request builder (ops.go), its collector type with a finish method,
// and the two callbacks that feed it (callbacks.go): registering, sending,
// dropping on cancellation, failing on ERR_MSG and on the session's end are
// shared.
//
// An operation of that kind reads (see Adapter.AccountSummary):
//
//	r := &xReq{done: make(chan struct{})}
//	if err := s.startByID(id, r, reqX(id, ...)); err != nil {
//		return nil, err
//	}
//	if err := s.waitByID(ctx, "x", id, r.done, request{}); err != nil {
//		return nil, err
//	}
//	if r.err != nil { ... }
//	return r.result(), nil

// idRequest is one request in byID. finish ends it: err nil at its end marker,
// the gateway's *broker.APIError, or broker.ErrProtocol past the answer bound.
// It is called under s.mu, exactly once, after the request has left byID.
type idRequest interface {
	finish(err error)
}

// startByID registers r under id and sends req, in that order, so that no
// answer can arrive before its request is known. It fails with the session's
// error if the session is over, or with send's error (r then is not left behind).
func (s *session) startByID(id int64, r idRequest, req request) error {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.mu.Lock()
	if s.deadErr != nil {
		defer s.mu.Unlock()
		return s.deadErr
	}
	s.byID[id] = r
	s.mu.Unlock()
	if err := s.send(req); err != nil {
		s.dropByID(id)
		return err
	}
	return nil
}

// waitByID waits for the request under id: until done is closed (the request
// has finished: its result is final), ctx ends (the request is dropped; the
// error names what, for the caller) or the session dies (its error). A
// subscription that stays open on the gateway until cancelled (such as
// REQ_ACCOUNT_SUMMARY) passes its cancel, which is sent in the first two cases;
// a request that ends by itself passes request{}.
func (s *session) waitByID(ctx context.Context, what string, id int64, done <-chan struct{}, cancel request) error {
	select {
	case <-done:
		if cancel.call != nil {
			_ = s.sendLocked(cancel)
		}
		return nil
	case <-ctx.Done():
		s.dropByID(id)
		if cancel.call != nil {
			_ = s.sendLocked(cancel)
		}
		return fmt.Errorf("ibkr: %s: %w", what, ctx.Err())
	case <-s.dead:
		return s.deadError()
	}
}

// dropByID forgets the request under id (its caller gave up); later rows for
// it are ignored.
func (s *session) dropByID(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// finishByIDLocked ends the request under id with err, if there is one, and
// reports whether there was.
func (s *session) finishByIDLocked(id int64, err error) bool {
	r, ok := s.byID[id]
	if !ok {
		return false
	}
	delete(s.byID, id)
	r.finish(err)
	return true
}

// summaryReq is one REQ_ACCOUNT_SUMMARY in byID.
type summaryReq struct {
	coll summaryCollector
	err  error
	done chan struct{}
}

func (r *summaryReq) finish(err error) {
	if err != nil {
		r.coll = summaryCollector{}
	}
	r.err = err
	close(r.done)
}

// execReq is one REQ_EXECUTIONS in byID. Its COMMISSION_REPORT rows carry no
// request id: they find their execution by exec id (idx).
type execReq struct {
	rows []broker.Execution
	idx  map[string]int
	size int
	err  error
	done chan struct{}
}

func (r *execReq) finish(err error) {
	if err != nil {
		r.rows = nil
	}
	r.err = err
	close(r.done)
}

// contractReq is one REQ_CONTRACT_DATA in byID.
type contractReq struct {
	version int // the session's server version: scmhub garbles long names at some (longNameFromIB)
	rows    []broker.ContractDetails
	size    int
	err     error
	done    chan struct{}
}

func (r *contractReq) finish(err error) {
	if err != nil {
		r.rows = nil
		r.err = err
	}
	close(r.done)
}

// snapReq is one snapshot REQ_MKT_DATA in byID: ticks fill q until TICK_SNAPSHOT_END.
type snapReq struct {
	q    broker.Quote
	err  error // the first tick that could not be converted
	done chan struct{}
}

func (r *snapReq) finish(err error) {
	if err != nil {
		r.err = err
	}
	close(r.done)
}

// barsReq is one REQ_HISTORICAL_DATA in byID.
type barsReq struct {
	daily bool // bars of a day or more: dated "yyyymmdd"
	bars  []broker.Bar
	err   error // the first bar that could not be converted
	done  chan struct{}
}

func (r *barsReq) finish(err error) {
	if err != nil {
		r.bars = nil
		r.err = err
	}
	close(r.done)
}
