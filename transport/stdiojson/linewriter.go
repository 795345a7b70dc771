package stdiojson

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// lineWriter writes whole lines to one output, for both ends of the protocol,
// with group commit: the first sender writes its line itself (no goroutine
// hand-off, which on a two-core machine costs about as much as the pipe round
// trip); senders that arrive while it writes queue their lines and return, and
// the writing sender then writes the whole queue at once, so that many senders
// cost a few large writes. Lines are never interleaved, and go out in the order
// they were queued.
//
// The two ends differ in one policy, chosen by the constructor:
//   - the host's (newPipeWriter) never blocks a caller: it writes without
//     blocking and leaves what the pipe does not take to a flusher goroutine,
//     which owns the pipe until its queue is empty;
//   - the worker's (newBlockingWriter) blocks, for backpressure: a sender that
//     finds the queue over its bound waits until the writing sender takes it,
//     so that a host that stops reading stops the worker; and the writing sender
//     yields once while other answers are about to be sent, so that they share
//     its write.
type lineWriter struct {
	mu      sync.Mutex
	drained sync.Cond // on mu: the writing sender took the queue, or writing failed
	queue   []byte    // lines waiting for the writing sender or the flusher
	spare   []byte    // a written queue, kept for reuse
	writing bool      // a sender is writing; the others queue their lines
	err     error     // first write error; later writes fail with it
	closed  bool      // close was called; later writes fail

	// out is the writing sender's write. A short count without an error means
	// the output would block: the rest goes to the flusher. nil: every line goes
	// to the flusher.
	out   func([]byte) (int, error)
	bound int         // > 0: senders wait while the queue holds more than this
	busy  func() bool // other lines are about to be sent: yield once before writing
	onErr func(error) // told, under mu, of the first write error

	// The flusher (newPipeWriter only).
	f       *os.File
	flusher bool // the flusher owns the output until the queue is empty
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// maxSpare bounds the output buffer kept for reuse between writes.
const maxSpare = 256 << 10

// maxQueued bounds the lines queued for the worker's writing sender, in bytes;
// a single line longer than that is queued alone.
const maxQueued = 1 << 20

// newPipeWriter returns the host's writer to f, which never blocks its callers.
// Close it with close.
func newPipeWriter(f *os.File) *lineWriter {
	w := &lineWriter{f: f, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	w.drained.L = &w.mu
	if rc, err := f.SyscallConn(); err == nil {
		w.out = func(b []byte) (int, error) { return tryWrite(rc, b) }
	}
	go w.flushLoop()
	return w
}

// newBlockingWriter returns the worker's writer to out: a sender waits while
// more than bound bytes are queued; busy (if not nil) reports answers about to
// be sent; onErr (if not nil) is told of the first write error.
func newBlockingWriter(out io.Writer, bound int, busy func() bool, onErr func(error)) *lineWriter {
	w := &lineWriter{out: out.Write, bound: bound, busy: busy, onErr: onErr}
	w.drained.L = &w.mu
	return w
}

// write sends line (newline included). It fails with the first write error, at
// once if there was one before, or with os.ErrClosed after close. A line queued
// for another sender or the flusher is reported sent.
func (w *lineWriter) write(line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.bound > 0 && w.writing && len(w.queue) > 0 && len(w.queue)+len(line) > w.bound && w.err == nil {
		w.drained.Wait()
	}
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return os.ErrClosed
	}
	if w.writing || w.flusher || w.out == nil {
		w.queue = append(w.queue, line...)
		w.startFlusher()
		return nil
	}
	w.writing = true
	defer func() { w.writing = false }()
	buf, owned := line, false // owned: buf is a queue buffer, reusable
	if len(w.queue) > 0 || (w.busy != nil && w.busy()) {
		// Queue first: lines must go out in the order they were sent (a hello
		// answer before the events that follow it).
		w.queue = append(w.queue, line...)
		buf = nil
		if w.busy != nil && w.busy() {
			w.mu.Unlock()
			runtime.Gosched()
			w.mu.Lock()
		}
	}
	for {
		if buf == nil {
			buf, w.queue, owned = w.queue, w.spare[:0], true
			w.spare = nil
			w.drained.Broadcast()
		}
		w.mu.Unlock()
		n, err := w.out(buf)
		w.mu.Lock()
		if err != nil {
			w.fail(err)
			if !owned {
				return err // this sender's own line failed
			}
			return nil // lines of senders already gone; later writes fail
		}
		if n < len(buf) { // the output would block: the flusher waits for room
			q := make([]byte, 0, len(buf)-n+len(w.queue))
			w.queue = append(append(q, buf[n:]...), w.queue...)
			w.writing = false
			w.startFlusher()
			return nil
		}
		if owned && cap(buf) <= maxSpare {
			w.spare = buf[:0]
		}
		buf = nil
		if len(w.queue) == 0 {
			return nil
		}
	}
}

// awaitRoom waits until at most limit bytes are queued behind the writing
// sender, writing has failed, or ctx is done, and reports whether there is
// room. Lines that may be conflated (quote streams) wait here before they are
// written, so that they never fill the queue that answers wait in: a host that
// reads slowly finds answers behind at most limit bytes of them.
func (w *lineWriter) awaitRoom(ctx context.Context, limit int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) > limit && w.err == nil && ctx.Err() == nil {
		stop := context.AfterFunc(ctx, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.drained.Broadcast()
		})
		defer stop()
		for len(w.queue) > limit && w.err == nil && ctx.Err() == nil {
			w.drained.Wait()
		}
	}
	return len(w.queue) <= limit && w.err == nil && ctx.Err() == nil
}

// fail records the first write error, drops what is queued and wakes the
// senders waiting for room. Under mu.
func (w *lineWriter) fail(err error) {
	if w.err != nil {
		return
	}
	w.err = err
	w.queue = nil
	w.drained.Broadcast()
	if w.onErr != nil {
		w.onErr(err)
	}
}

// failure returns the first write error, if any.
func (w *lineWriter) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// startFlusher hands the queue to the flusher goroutine unless a sender is
// writing (it takes the queue when done), the flusher already has it, or there
// is no flusher. Under mu.
func (w *lineWriter) startFlusher() {
	if w.kick == nil || w.writing || w.flusher {
		return
	}
	w.flusher = true
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// tryWrite writes what the pipe takes without blocking.
func tryWrite(rc syscall.RawConn, b []byte) (int, error) {
	total := 0
	var werr error
	cerr := rc.Control(func(fd uintptr) {
		for total < len(b) {
			n, err := syscall.Write(int(fd), b[total:])
			if n > 0 {
				total += n
			}
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				if !errors.Is(err, syscall.EAGAIN) {
					werr = err
				}
				return
			}
		}
	})
	if cerr != nil {
		return total, cerr
	}
	return total, werr
}

func (w *lineWriter) flushLoop() {
	defer close(w.done)
	for {
		stopping := false
		select {
		case <-w.kick:
		case <-w.stop:
			stopping = true
		}
		for {
			w.mu.Lock()
			if w.writing { // a sender owns the pipe; it takes the queue
				w.mu.Unlock()
				break
			}
			buf := w.queue
			w.queue = nil
			if len(buf) == 0 || w.err != nil {
				w.flusher = false
				w.mu.Unlock()
				break
			}
			w.flusher = true
			w.mu.Unlock()
			if _, err := w.f.Write(buf); err != nil { // parks until the reader takes it
				w.mu.Lock()
				w.fail(err)
				w.mu.Unlock()
			}
		}
		if stopping {
			return
		}
	}
}

// close (newPipeWriter only) writes what is queued, waiting at most grace for
// the reader to take it, and closes the pipe; later writes fail.
func (w *lineWriter) close(grace time.Duration) {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
	}
	w.f.Close() // also ends a write still parked
	<-w.done
}
