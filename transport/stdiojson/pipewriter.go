package stdiojson

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// pipeWriter writes whole lines to a pipe without a goroutine hand-off in the
// common case, and without ever blocking its caller: the caller tries a
// non-blocking write itself, and whatever does not fit in the pipe is queued for
// a background goroutine that waits for the reader to catch up. Lines are never
// interleaved. (On a two-core machine a hand-off to a writer goroutine per call
// costs about as much as the pipe round trip itself.)
//
// Concurrent writers group-commit: while one caller is in the write system call,
// others append their lines to the queue and return, and that caller then writes
// the whole queue at once, so that many callers cost a few large writes.
type pipeWriter struct {
	f  *os.File
	rc syscall.RawConn // nil: f is not pollable; every write goes to the flusher

	mu      sync.Mutex
	queue   []byte // bytes the flusher has yet to write
	spare   []byte // a written queue, kept for reuse
	writing bool   // a caller is writing; the others queue their lines
	flusher bool   // the flusher owns the pipe until queue is empty
	err     error  // first write error; later writes are dropped
	closed  bool   // close was called; later writes fail
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newPipeWriter(f *os.File) *pipeWriter {
	w := &pipeWriter{f: f, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if rc, err := f.SyscallConn(); err == nil {
		w.rc = rc
	}
	go w.flushLoop()
	return w
}

// write queues line (newline included) and returns at once.
func (w *pipeWriter) write(line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return os.ErrClosed
	}
	if w.writing || w.flusher || w.rc == nil {
		w.queue = append(w.queue, line...)
		w.startFlusher()
		return nil
	}
	w.writing = true
	defer func() { w.writing = false }()
	buf, owned := line, false
	for {
		w.mu.Unlock()
		n, err := w.tryWrite(buf)
		w.mu.Lock()
		if err != nil {
			w.err = err
			if !owned {
				return err // this caller's line failed
			}
			return nil // lines of callers already gone; later writes fail
		}
		if n < len(buf) { // the pipe is full: the flusher waits for room
			q := make([]byte, 0, len(buf)-n+len(w.queue))
			w.queue = append(append(q, buf[n:]...), w.queue...)
			w.writing = false
			w.startFlusher()
			return nil
		}
		if owned && cap(buf) <= 64<<10 {
			w.spare = buf[:0]
		}
		if len(w.queue) == 0 {
			return nil
		}
		buf, w.queue, owned = w.queue, w.spare, true
		w.spare = nil
	}
}

// startFlusher hands the queue to the flusher goroutine unless a caller is
// writing (it takes the queue when done) or the flusher already has it.
func (w *pipeWriter) startFlusher() {
	if w.writing || w.flusher {
		return
	}
	w.flusher = true
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// tryWrite writes what the pipe takes without blocking.
func (w *pipeWriter) tryWrite(b []byte) (int, error) {
	total := 0
	var werr error
	cerr := w.rc.Control(func(fd uintptr) {
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

func (w *pipeWriter) flushLoop() {
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
			if w.writing { // a caller owns the pipe; it takes the queue
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
				w.err = err
				w.mu.Unlock()
			}
		}
		if stopping {
			return
		}
	}
}

// close writes what is queued, waiting at most grace for the reader to take
// it, and closes the pipe; later writes fail.
func (w *pipeWriter) close(grace time.Duration) {
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
