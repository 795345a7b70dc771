package fakes

import (
	"context"
	"fmt"

	"github.com/brokerkit/brokerkit/broker"
)

// Message ids of the client requests the gateway answers, for WaitRequest and
// Request.ID. They are the TWS API's outgoing message ids (scmhub's OUT_*).
const (
	MsgReqIDs               = inReqIDs
	MsgReqManagedAccts      = inReqManagedAccts
	MsgReqCurrentTime       = inReqCurrentTime
	MsgReqPositions         = inReqPositions
	MsgReqAccountSummary    = inReqAccountSummary
	MsgCancelAccountSummary = inCancelAccountSumm
	MsgCancelPositions      = inCancelPositions
	MsgStartAPI             = inStartAPI
	MsgReqMktData           = inReqMktData
	MsgCancelMktData        = inCancelMktData
	MsgReqMarketDataType    = inReqMarketDataType
	MsgReqContractData      = inReqContractData
	MsgReqHistoricalData    = inReqHistoricalData
)

// requestLog counts the requests every connection sent, by message id, and
// keeps the latest of each id: unlike ConnRecord.Requests it is not bounded by
// RecordLimits and outlives pruned connections. Under Gateway.mu.
type requestLog struct {
	count map[int]int
	last  map[int]Request
}

// noteRequestLocked counts req and wakes the waiters; g.mu must be held.
func (g *Gateway) noteRequestLocked(req Request) {
	if g.reqs.count == nil {
		g.reqs.count, g.reqs.last = map[int]int{}, map[int]Request{}
	}
	g.reqs.count[req.ID]++
	g.reqs.last[req.ID] = req
	g.broadcastLocked()
}

// WaitRequest waits until a client has sent a request with message id msgID
// (for example MsgReqPositions), on any connection since the gateway started,
// and returns the latest such request. It is how a test knows a call is in
// flight — the request has reached the gateway — without sleeping. It fails
// with ctx's error if ctx is done first, or with an error matching
// broker.ErrClosed if the gateway is closed first.
func (g *Gateway) WaitRequest(ctx context.Context, msgID int) (Request, error) {
	return g.WaitRequests(ctx, msgID, 1)
}

// WaitRequests waits until clients have sent n requests with message id msgID
// in all since the gateway started, and returns the latest one. Use it for the
// n-th call of a kind: RequestCount before the call, plus one.
func (g *Gateway) WaitRequests(ctx context.Context, msgID, n int) (Request, error) {
	for {
		g.mu.Lock()
		got, last, closed, ch := g.reqs.count[msgID], g.reqs.last[msgID], g.closed, g.changed
		g.mu.Unlock()
		if got >= n {
			return last, nil
		}
		if closed {
			return Request{}, fmt.Errorf("fakes: wait for %d request(s) %d (have %d): gateway %w", n, msgID, got, broker.ErrClosed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Request{}, fmt.Errorf("fakes: wait for %d request(s) %d (have %d): %w", n, msgID, got, ctx.Err())
		}
	}
}

// RequestCount returns how many requests with message id msgID clients have
// sent since the gateway started.
func (g *Gateway) RequestCount(msgID int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reqs.count[msgID]
}
