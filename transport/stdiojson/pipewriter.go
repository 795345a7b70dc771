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
type pipeWriter struct {
	f  *os.File
	rc syscall.RawConn // nil: f is not pollable; every write goes to the flusher

	mu      sync.Mutex
	queue   []byte // bytes the flusher has yet to write
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
	if !w.flusher && w.rc != nil {
		n, err := w.tryWrite(line)
		if err != nil {
			w.err = err
			return err
		}
		line = line[n:]
		if len(line) == 0 {
			return nil
		}
	}
	w.queue = append(w.queue, line...)
	if !w.flusher {
		w.flusher = true
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return nil
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
