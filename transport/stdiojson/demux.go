package stdiojson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// The request demultiplexer: requests are written with an id and callers take
// turns reading the worker's output (leader/follower), each routing what it
// reads to the caller it belongs to, so that no goroutine hand-off sits on the
// path of a call.

// readLoop is the background reader: it reads the worker's output whenever no
// caller does (at the start, while no call is waiting, and when the worker
// exits), and ends once the output has ended.
func (c *Client) readLoop() {
	defer c.bg.Done()
	for {
		select {
		case <-c.wake:
		case <-c.readerDone:
			return
		}
		c.mu.Lock()
		if c.tokenHeld || c.eof {
			c.mu.Unlock()
			continue
		}
		c.tokenHeld, c.owner = true, nil
		c.mu.Unlock()
		c.backgroundRead()
	}
}

// backgroundRead reads while the background reader holds the token: until a
// caller waits for an answer (it gets the token), an answer went to a caller and
// none waits (the token is left for the next caller), or the output ends.
func (c *Client) backgroundRead() {
	for {
		delivered, err := c.readBatch()
		if err != nil && c.readFailed(err) {
			return
		}
		if !c.lf {
			continue
		}
		c.mu.Lock()
		if len(c.pending) > 0 || delivered {
			c.releaseTokenLocked()
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// kick asks the background reader to take the token if it is free.
func (c *Client) kick() {
	c.mu.Lock()
	c.idleArmed = false
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// releaseTokenLocked passes the read token to a waiting call, or leaves it free
// and arms the idle timer. The output's end keeps the token: nobody reads after it.
func (c *Client) releaseTokenLocked() {
	if c.eof {
		return
	}
	if c.interrupted { // an interrupt meant for the reader that is leaving
		c.interrupted = false
		_ = c.stdout.SetReadDeadline(time.Time{})
	}
	for _, w := range c.pending {
		c.owner = w
		w.ch <- result{token: true}
		return
	}
	c.tokenHeld, c.owner = false, nil
	if !c.idleArmed {
		c.idleArmed = true
		c.idle.Reset(idleDelay)
	}
}

// interruptLocked wakes the reader from a blocked read: it makes the read fail
// with a deadline error, upon which the reader clears the deadline and looks at
// its call again.
func (c *Client) interruptLocked() {
	c.interrupted = true
	_ = c.stdout.SetReadDeadline(time.Now())
}

// readBatch reads once and routes every complete line read so far; it reports
// whether an answer went to a caller.
func (c *Client) readBatch() (delivered bool, err error) {
	err = c.fr.fill()
	for {
		line, tooLong, ok := c.fr.next()
		if !ok {
			return delivered, err
		}
		if c.route(line, tooLong) {
			delivered = true
		}
	}
}

// readFailed handles a read error and reports whether the output has ended. A
// deadline error is an interrupt (see interruptLocked).
func (c *Client) readFailed(err error) (ended bool) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.mu.Lock()
		if c.interrupted {
			c.interrupted = false
			_ = c.stdout.SetReadDeadline(time.Time{})
		}
		c.mu.Unlock()
		return false
	}
	if line, tooLong, ok := c.fr.rest(); ok {
		c.route(line, tooLong)
	}
	c.mu.Lock()
	c.eof = true
	c.mu.Unlock()
	c.bg.Add(1)
	close(c.readerDone)
	go c.reapAfterEOF()
	return true
}

// reapAfterEOF makes sure a worker that closed its output exits.
func (c *Client) reapAfterEOF() {
	defer c.bg.Done()
	t := time.NewTimer(c.cfg.grace)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
		c.log.Warn("worker closed its output but did not exit; killing it")
		c.kill()
	}
}

// route handles one line from the worker and reports whether it was an answer
// delivered to a caller.
func (c *Client) route(line []byte, tooLong bool) bool {
	if tooLong {
		id, _ := parseID(peekID(line))
		c.log.Error("line from worker too long", "limit", c.cfg.maxLine)
		return c.deliver(id, result{lost: true, err: fmt.Errorf("%w: response longer than %d bytes", broker.ErrProtocol, c.cfg.maxLine)})
	}
	if len(bytesTrimSpace(line)) == 0 {
		return false
	}
	in, err := parseInbound(line)
	if err != nil {
		c.log.Warn("ignoring line from worker", "error", err)
		return false
	}
	if in.Event != "" {
		if in.Subscription != "" {
			c.streamEvent(in)
		} else {
			c.publish(in)
		}
		return false
	}
	id, ok := parseID(in.ID)
	if !ok {
		c.log.Warn("ignoring response without a request id", "status", in.Status, "code", in.Code, "error", in.Error)
		return false
	}
	if in.Status == statusError {
		return c.deliver(id, result{err: broker.ErrorFromCode(in.Code, in.Error, in.IBCode)})
	}
	r := result{data: in.Data} // parseInbound copied it out of the line
	if in.fast {
		r.fastID = in.ID
	}
	return c.deliver(id, r)
}

func (c *Client) publish(in wireInbound) {
	var kind broker.EventKind
	if err := kind.UnmarshalText([]byte(in.Event)); err != nil {
		c.log.Debug("ignoring event of unknown kind", "event", in.Event)
		return
	}
	c.hub.Publish(broker.Event{Kind: kind, Time: in.Time, Code: in.IBCode, Message: in.Message})
}

// deliver hands a result to the call waiting for id; late answers are dropped.
func (c *Client) deliver(id uint64, r result) bool {
	c.mu.Lock()
	w, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ok {
		w.ch <- r
	}
	return ok
}

// call makes one request on behalf of a Broker method.
func (c *Client) call(ctx context.Context, command string, req *wireRequest, out any) error {
	_, err := c.callLost(ctx, command, req, out)
	return err
}

// callLost is call that also reports whether the request line reached the
// worker's input and then no answer could be read (the worker died, the
// context ended, Close came, the answer was unreadable): the worker may have
// acted on it (ops_orders.go turns such errors into ErrOutcomeUnknown).
func (c *Client) callLost(ctx context.Context, command string, req *wireRequest, out any) (lost bool, err error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return false, fmt.Errorf("stdiojson: %s: %w", command, broker.ErrClosed)
	}
	lost, err = c.exchange(ctx, command, req, out, true)
	if err != nil && !errors.Is(err, broker.ErrClosed) && ctx.Err() == nil {
		c.mu.Lock()
		closed = c.closed
		c.mu.Unlock()
		if closed { // Close overtook the call (its disconnect, or the worker's exit)
			return lost, fmt.Errorf("stdiojson: %s: %w (%v)", command, broker.ErrClosed, err)
		}
	}
	return lost, err
}

// rawCall sends a request and waits for its answer, ctx, or the worker's death.
// A public call fails with ErrClosed once Close has begun; Close's own requests
// (disconnect) and Start's hello are not public.
func (c *Client) rawCall(ctx context.Context, command string, req *wireRequest, out any, public bool) error {
	_, err := c.exchange(ctx, command, req, out, public)
	return err
}

// exchange is rawCall that also reports whether the request line was written
// and then no answer of the worker could be read (see callLost).
func (c *Client) exchange(ctx context.Context, command string, req *wireRequest, out any, public bool) (lost bool, _ error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("stdiojson: %s: %w", command, err)
	}
	if req == nil {
		req = &wireRequest{}
	}
	id := c.nextID.Add(1)
	req.ID = strconv.AppendUint(nil, id, 10)
	req.Command = command
	line, err := encodeRequest(req)
	if err != nil {
		return false, fmt.Errorf("%w: encode %s: %w", broker.ErrInvalidArgument, command, err)
	}

	w := &waiter{ch: make(chan result, 2)}
	c.mu.Lock()
	if public && c.closed {
		c.mu.Unlock()
		return false, fmt.Errorf("stdiojson: %s: %w", command, broker.ErrClosed)
	}
	if c.dead != nil {
		err := c.dead
		if c.closed {
			err = broker.ErrClosed
		}
		c.mu.Unlock()
		return false, fmt.Errorf("stdiojson: %s: %w", command, err)
	}
	c.pending[id] = w
	c.writing.Add(1) // Close waits for requests on their way before it cancels them
	c.mu.Unlock()

	err = c.w.write(line)
	c.writing.Done()
	if err != nil {
		// The worker is going or gone: the pipe broke or Close closed it. The
		// waiter's verdict, if it comes, is the better error.
		c.forget(id)
		c.mu.Lock()
		dead, closed := c.dead, c.closed
		c.mu.Unlock()
		switch {
		case closed: // Close closed the pipe under a call that was on its way
			return false, fmt.Errorf("stdiojson: %s: %w", command, broker.ErrClosed)
		case dead != nil:
			return false, fmt.Errorf("stdiojson: %s: %w", command, dead)
		}
		return false, fmt.Errorf("%w: stdiojson: %s: write to worker: %w", broker.ErrUnavailable, command, err)
	}
	r, err := c.await(ctx, id, w)
	if err != nil {
		return true, fmt.Errorf("stdiojson: %s: %w", command, err)
	}
	if r.err != nil {
		return r.lost, fmt.Errorf("stdiojson: %s: %w", command, r.err)
	}
	if out == nil {
		return false, nil
	}
	err = decodeAnswer(r.data, out)
	if err != nil && r.fastID != nil {
		if in, ok := reparse(r.fastID, r.data); ok {
			if in.Status == statusError {
				return false, fmt.Errorf("stdiojson: %s: %w", command, broker.ErrorFromCode(in.Code, in.Error, in.IBCode))
			}
			err = decodeAnswer(in.Data, out)
		}
	}
	if err != nil {
		return true, fmt.Errorf("%w: %s answer: %v", broker.ErrProtocol, command, err) // a success we cannot read
	}
	return false, nil
}

// decodeAnswer decodes an answer's data into out.
func decodeAnswer(data json.RawMessage, out any) error {
	if d, ok := out.(rawDecoder); ok {
		return d.decodeData(data)
	}
	return json.Unmarshal(data, out)
}

// await waits for call id's answer. If nobody is reading the worker's output,
// the caller reads it itself (see lead); otherwise it waits for the reader to
// hand it the answer, or the read token. It returns ctx's error if ctx ends
// first, after asking the worker to cancel the request.
func (c *Client) await(ctx context.Context, id uint64, w *waiter) (result, error) {
	if c.lf {
		c.mu.Lock()
		if !c.tokenHeld && !c.eof {
			c.tokenHeld, c.owner = true, w
			c.mu.Unlock()
			return c.lead(ctx, id, w)
		}
		c.mu.Unlock()
	}
	select {
	case r := <-w.ch:
		if r.token {
			return c.lead(ctx, id, w)
		}
		return r, nil
	case <-ctx.Done():
		c.abandon(id, w)
		return result{}, ctx.Err()
	}
}

// lead reads the worker's output while the caller holds the read token
// (leader/follower): it routes every line read, other callers' answers
// included, until its own answer is among them, then passes the token to
// another waiting call, or leaves it free. With one call in flight the answer
// thus reaches its caller without a goroutine hand-off. If ctx ends, a read
// deadline interrupts the read and the caller gives up the token.
func (c *Client) lead(ctx context.Context, id uint64, w *waiter) (result, error) {
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			c.mu.Lock()
			if c.tokenHeld && c.owner == w {
				c.interruptLocked()
			}
			c.mu.Unlock()
		})
		defer stop()
	}
	for {
		select {
		case r := <-w.ch: // never the token: this caller holds it
			c.mu.Lock()
			c.releaseTokenLocked()
			c.mu.Unlock()
			return r, nil
		default:
		}
		if ctx.Err() != nil {
			c.abandon(id, w)
			c.mu.Lock()
			c.releaseTokenLocked()
			c.mu.Unlock()
			return result{}, ctx.Err()
		}
		if _, err := c.readBatch(); err != nil && c.readFailed(err) {
			// The output ended; the worker's death will be delivered (waitLoop).
			select {
			case r := <-w.ch:
				return r, nil
			case <-ctx.Done():
				c.abandon(id, w)
				return result{}, ctx.Err()
			}
		}
	}
}

// abandon gives up call id: the worker is asked to cancel it, and a read token
// passed to the call meanwhile is passed on.
func (c *Client) abandon(id uint64, w *waiter) {
	if c.forget(id) {
		c.sendCancel(id)
	}
	for { // after forget, nothing more is sent to w
		select {
		case r := <-w.ch:
			if r.token {
				c.mu.Lock()
				c.releaseTokenLocked()
				c.mu.Unlock()
			}
		default:
			return
		}
	}
}

// forget drops a call's pending entry and reports whether it was still there.
func (c *Client) forget(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	return ok
}

// sendCancel asks the worker to abandon request id; the answer is not awaited
// (it arrives for an id nobody waits for, and is dropped).
func (c *Client) sendCancel(id uint64) {
	if err := c.w.write(c.cancelLine(id)); err != nil {
		c.log.Debug("cannot send cancel", "target", id, "error", err)
	}
}

func (c *Client) cancelLine(target uint64) []byte {
	cid := c.nextID.Add(1)
	line, _ := json.Marshal(wireRequest{ID: strconv.AppendUint(nil, cid, 10), Command: CommandCancel, Target: strconv.AppendUint(nil, target, 10)})
	return append(line, '\n')
}
