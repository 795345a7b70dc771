package stdiojson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/brokerkit/brokerkit/broker"
)

// The worker's input side: reading request lines and dispatching them to
// handler goroutines (requests with an id) or in order (requests without).

// enter registers one more unit of work, unless Serve is stopping.
func (s *server) enter() bool {
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.stopped {
		return false
	}
	s.handlers.Add(1)
	return true
}

func (s *server) readLoop(lr *frameReader) error {
	for {
		line, err := lr.readLine()
		switch {
		case errors.Is(err, errLineTooLong):
			id := peekID(line)
			s.log.Warn("request line too long", "limit", s.cfg.maxLine, "id", string(id))
			s.replyEarly(id, fmt.Errorf("%w: request line longer than %d bytes", broker.ErrProtocol, s.cfg.maxLine))
			continue
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			if s.runCtx.Err() != nil {
				return nil
			}
			return fmt.Errorf("stdiojson: read requests: %w", err)
		}
		if len(bytesTrimSpace(line)) == 0 {
			continue
		}
		req, err := parseRequest(line)
		if err != nil {
			s.log.Warn("bad request line", "error", err)
			s.replyEarly(req.ID, err)
			continue
		}
		s.dispatch(req)
		if lr.release() {
			// The request holds no reference to the line: give its memory back
			// now rather than at the next GC and scavenge, minutes away in an
			// idle worker.
			debug.FreeOSMemory()
		}
		if lr.buffered() == 0 {
			s.unhandled.Store(false)
			// Let the handlers just started answer before the next read, which
			// would most likely find nothing yet and only delay them.
			runtime.Gosched()
		}
	}
}

func bytesTrimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// replyEarly answers a request that will not be dispatched: directly if it has
// an id, else in its place among the id-less answers.
func (s *server) replyEarly(id json.RawMessage, err error) {
	if len(id) > 0 {
		if s.enter() {
			s.send(encodeResponse(id, nil, err))
			s.handlers.Done()
		}
		return
	}
	s.dispatchLegacy(func(context.Context) []byte { return encodeResponse(nil, nil, err) })
}

func (s *server) dispatch(req wireRequest) {
	if len(req.ID) == 0 {
		s.dispatchLegacy(func(ctx context.Context) []byte {
			return s.answer(ctx, req)
		})
		return
	}
	key := string(req.ID)
	s.mu.Lock()
	_, dup := s.inflight[key]
	s.mu.Unlock()
	if dup {
		// Answered without the id: a host matching answers by id would take an
		// answer with it for the answer to the request in flight.
		s.replyEarly(nil, fmt.Errorf("%w: id %s is already in flight; request %q not run", broker.ErrProtocol, key, req.Command))
		return
	}
	s.sem <- struct{}{}
	if !s.enter() {
		<-s.sem
		return
	}
	ctx, cancel := context.WithCancel(s.runCtx)
	s.mu.Lock()
	s.inflight[key] = cancel
	s.mu.Unlock()
	s.busy.Add(1)
	j := job{ctx: ctx, cancel: cancel, req: req, key: key}
	select {
	case s.jobs <- j: // an idle handler goroutine takes it
	default:
		s.pool.Add(1)
		go s.handlerLoop(j)
	}
}

// job is a request with an id, dispatched to a handler goroutine.
type job struct {
	ctx    context.Context
	cancel context.CancelFunc
	req    wireRequest
	key    string
}

// maxIdleHandlers bounds the handler goroutines kept waiting for work. Reusing
// them spares a goroutine start, and the growth of its stack, per request. With
// 16, 64 concurrent callers (bench Throughput) started a handler for most
// requests: stack growth was a quarter of the worker's CPU (ADR 0018).
const maxIdleHandlers = 64

// handlerLoop runs j, then waits for more jobs while few others wait; it ends
// when Serve closes the job channel.
func (s *server) handlerLoop(j job) {
	defer s.pool.Done()
	for {
		s.run(j)
		if s.idle.Add(1) > maxIdleHandlers {
			s.idle.Add(-1)
			return
		}
		var ok bool
		j, ok = <-s.jobs
		s.idle.Add(-1)
		if !ok {
			return
		}
	}
}

// run answers one request with an id.
func (s *server) run(j job) {
	defer s.handlers.Done()
	line := s.answer(j.ctx, j.req)
	s.busy.Add(-1)
	s.mu.Lock()
	delete(s.inflight, j.key)
	s.mu.Unlock()
	j.cancel()
	if line != nil {
		s.send(line) // before the slot is given up: see send
	}
	<-s.sem
}

// dispatchLegacy runs fn after every earlier id-less request has been answered,
// and writes its line in turn.
func (s *server) dispatchLegacy(fn func(context.Context) []byte) {
	s.mu.Lock()
	prev := s.legacyTail
	done := make(chan struct{})
	s.legacyTail = done
	s.mu.Unlock()

	s.sem <- struct{}{}
	if !s.enter() {
		<-s.sem
		close(done)
		return
	}
	s.busy.Add(1)
	go func() {
		defer s.handlers.Done()
		defer close(done)
		<-prev // the previous one always finishes: its handler honours runCtx
		line := fn(s.runCtx)
		s.busy.Add(-1)
		if line != nil {
			s.send(line) // before the slot is given up: see send
		}
		<-s.sem
	}()
}
