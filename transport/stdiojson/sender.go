package stdiojson

import (
	"fmt"
	"runtime"
)

// send writes one line to the output. Lines are written whole, by one sender at
// a time, with group commit: a sender that finds another one writing queues its
// line and returns, and the writing sender writes what was queued meanwhile in
// one Write. The queue is bounded (maxQueued): a sender that finds it full
// waits until the writing sender takes it. Handlers send before they give up
// their concurrency slot, so an output nobody reads ends up holding every slot,
// and the reader stops reading input (backpressure). A sender that sees other requests about to answer yields once first,
// so that a batch of requests costs a few writes instead of one each. No
// goroutine sits between a handler and the pipe, which on a two-core machine
// would cost a scheduler hand-off per answer.
func (s *server) send(line []byte) {
	s.wmu.Lock()
	if s.writeErr != nil {
		s.wmu.Unlock()
		return // Serve is shutting down
	}
	for s.flushing && len(s.wbuf) > 0 && len(s.wbuf)+len(line) > maxQueued && s.writeErr == nil {
		s.drained.Wait()
	}
	if s.writeErr != nil {
		s.wmu.Unlock()
		return
	}
	if s.flushing {
		s.wbuf = append(s.wbuf, line...)
		s.wmu.Unlock()
		return
	}
	s.flushing = true
	buf, owned := line, false // owned: buf is a queue buffer, reusable
	if len(s.wbuf) > 0 || s.busy.Load() > 0 {
		// Queue first: lines must go out in the order they were sent (a hello
		// answer before the events that follow it).
		s.wbuf = append(s.wbuf, line...)
		buf = nil
		if s.busy.Load() > 0 {
			s.wmu.Unlock()
			runtime.Gosched()
			s.wmu.Lock()
		}
	}
	for {
		if buf == nil {
			buf, s.wbuf, owned = s.wbuf, s.spare[:0], true
			s.spare = nil
			s.drained.Broadcast()
		}
		s.wmu.Unlock()
		_, err := s.w.Write(buf)
		s.wmu.Lock()
		if owned && cap(buf) <= maxSpare {
			s.spare = buf[:0]
		}
		buf = nil
		if err != nil {
			s.writeErr = fmt.Errorf("stdiojson: write response: %w", err)
			s.log.Error("cannot write responses; stopping", "error", err)
			close(s.failed)
			s.wbuf = nil
			s.drained.Broadcast()
			break
		}
		if len(s.wbuf) == 0 {
			break
		}
	}
	s.flushing = false
	s.wmu.Unlock()
}

// maxSpare bounds the output buffer kept for reuse between writes.
const maxSpare = 256 << 10

// maxQueued bounds the lines queued for the writing sender, in bytes; a single
// line longer than that is queued alone.
const maxQueued = 1 << 20
