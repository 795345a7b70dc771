// A connection's replies: held behind a Stall, endless position streams, timed notices, malformed replies.

package fakes

import (
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// heldReplies are the replies to one request, held by a Stall.
type heldReplies struct {
	textOnly bool
	replies  [][]string
}

// reply sends the replies to one request, or queues them while the gateway
// is stalled or earlier replies are still held, so that the connection goes on
// reading (and recording) requests behind a held reply, as a real gateway that
// stops answering still reads its socket. A flushHeld goroutine sends what is
// queued, in request order, once the gateway resumes. It reports false if the
// connection must end (a write failed).
func (c *conn) reply(textOnly bool, replies [][]string) bool {
	c.hmu.Lock()
	if c.flushing || c.g.isStalled() {
		c.held = append(c.held, heldReplies{textOnly: textOnly, replies: replies})
		if !c.flushing {
			c.flushing = true
			c.g.wg.Add(1)
			go c.flushHeld()
		}
		c.hmu.Unlock()
		return true
	}
	c.hmu.Unlock()
	for _, r := range replies {
		if c.sendMsg(textOnly, r) != nil {
			return false
		}
	}
	return true
}

// flushHeld sends the held replies once the gateway resumes (waiting again if
// it stalls again), until none is left or the connection or the Gateway
// closes. A reply that cannot be sent (a failed write, an encoding error)
// closes the connection, as it ends serve; a half-open one sends nothing more.
func (c *conn) flushHeld() {
	defer c.g.wg.Done()
	for {
		if !c.g.waitResumed(c.quit) {
			return
		}
		c.hmu.Lock()
		batch := c.held
		c.held = nil
		if len(batch) == 0 {
			c.flushing = false
			c.hmu.Unlock()
			return
		}
		c.hmu.Unlock()
		for _, h := range batch {
			for _, r := range h.replies {
				if err := c.sendMsg(h.textOnly, r); err != nil {
					if !errors.Is(err, errConnClosed) { // closed or half-open: nothing more goes out
						c.close(false)
					}
					return
				}
			}
		}
	}
}

// isEndMarker reports whether a reply is the end marker of a list.
func isEndMarker(reply []string) bool {
	switch reply[0] {
	case itoa(outPositionEnd), itoa(outAccountSummaryEnd), itoa(outAcctDownloadEnd), itoa(outExecutionDataEnd),
		itoa(outOpenOrderEnd), itoa(outCompletedOrdersEnd), itoa(outPositionMultiEnd), itoa(outAccountUpdateMultiEnd):
		return true
	}
	return false
}

// endlessRow is what Faults.EndlessPositions streams when the script has no rows.
var endlessRow = broker.Position{Account: "DU0000000", Contract: broker.Contract{ConID: 265598, Symbol: "AAPL",
	SecType: "STK", Exchange: "NASDAQ", Currency: "USD", LocalSymbol: "AAPL", TradingClass: "NMS"},
	Quantity: broker.MustDecimal("1"), AvgCost: broker.MustDecimal("1")}

// startStream starts sending rows (cycled) as POSITION_DATA until stopStream
// or the connection ends (Faults.EndlessPositions).
func (c *conn) startStream(rows []broker.Position) {
	if len(rows) == 0 {
		rows = []broker.Position{endlessRow}
	}
	frames := make([][]string, len(rows))
	for i, p := range rows {
		frames[i] = positionFields(p)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	c.stream, c.streamDone = stop, done
	c.g.wg.Add(1)
	go func() {
		defer c.g.wg.Done()
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-c.quit:
				return
			default:
			}
			if c.send(frames[i%len(frames)]...) != nil {
				return
			}
		}
	}()
}

// stopStream stops the stream startStream started, if any, and waits until it
// has sent its last row: whatever the gateway sends next follows every row.
func (c *conn) stopStream() {
	if c.stream == nil {
		return
	}
	close(c.stream)
	<-c.streamDone
	c.stream, c.streamDone = nil, nil
}

func (c *conn) noticeLoop(start time.Time, notices []TimedNotice) {
	defer c.g.wg.Done()
	ns := slices.Clone(notices)
	slices.SortStableFunc(ns, func(a, b TimedNotice) int { return cmp.Compare(a.After, b.After) })
	for _, n := range ns {
		if !c.sleep(time.Until(start.Add(n.After))) {
			return
		}
		msg := n.Message
		if msg == "" {
			msg = NoticeText(n.Code)
		}
		_ = c.sendError(-1, n.Code, msg)
	}
}

// malformedIntField says, per reply message id, which field holds an integer
// that a malformed reply replaces.
var malformedIntField = map[string]int{
	itoa(outCurrentTime):    2,
	itoa(outNextValidID):    2,
	itoa(outPositionData):   3,
	itoa(outAccountSummary): 2,
}

// malformed builds the malformed message that replaces a request's replies.
func malformed(custom []string, replies [][]string) []string {
	if custom != nil {
		return slices.Clone(custom)
	}
	if len(replies) > 0 {
		if i, ok := malformedIntField[replies[0][0]]; ok && i < len(replies[0]) {
			m := slices.Clone(replies[0])
			m[i] = malformedToken
			return m
		}
	}
	return []string{itoa(outCurrentTime), "1", malformedToken}
}
