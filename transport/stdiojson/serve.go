package stdiojson

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
)

// ServeOption configures Serve and RunWorker.
type ServeOption func(*serveConfig)

type serveConfig struct {
	logger          hclog.Logger
	maxLine         int
	maxConcurrent   int
	drainTimeout    time.Duration
	shutdownTimeout time.Duration
}

// WithServeLogger sets the worker's logger (default: none for Serve; JSON on
// stderr for RunWorker, at the level named by $BROKERKIT_LOG_LEVEL).
func WithServeLogger(l hclog.Logger) ServeOption {
	return func(c *serveConfig) { c.logger = l }
}

// WithMaxRequestBytes bounds one request line (default DefaultMaxLineBytes). A
// longer line is answered with a "protocol" error and the worker keeps serving.
func WithMaxRequestBytes(n int) ServeOption {
	return func(c *serveConfig) {
		if n > 0 {
			c.maxLine = n
		}
	}
}

// WithMaxConcurrent bounds the requests handled at once (default 256); the worker
// stops reading its input while the bound is reached. A request holds its slot
// until its answer is written or queued, and the output queue is bounded (1
// MiB), so a host that stops reading the worker's output stops it reading its
// input, and its memory stays bounded.
func WithMaxConcurrent(n int) ServeOption {
	return func(c *serveConfig) {
		if n > 0 {
			c.maxConcurrent = n
		}
	}
}

// WithDrainTimeout bounds how long Serve lets requests in flight finish after its
// input ends (default 30s); after that they are canceled.
func WithDrainTimeout(d time.Duration) ServeOption {
	return func(c *serveConfig) { c.drainTimeout = d }
}

// WithShutdownTimeout bounds the Disconnect that Serve makes before it returns
// (default 5s).
func WithShutdownTimeout(d time.Duration) ServeOption {
	return func(c *serveConfig) { c.shutdownTimeout = d }
}

func newServeConfig(opts []ServeOption) serveConfig {
	c := serveConfig{
		maxLine:         DefaultMaxLineBytes,
		maxConcurrent:   256,
		drainTimeout:    30 * time.Second,
		shutdownTimeout: 5 * time.Second,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil {
		c.logger = hclog.NewNullLogger()
	}
	return c
}

// Serve answers the requests read from in, one JSON object per line, by calling
// b, and writes the responses to out, one per line (see PROTOCOL.md).
//
// Requests with an id are handled concurrently and answered as they complete;
// requests without one are handled one after another and answered in order.
// A malformed, oversized or unknown request gets an error response and Serve
// keeps going. Responses and events are written as whole lines, one Write at a
// time; answers that are ready together share a Write. Serve never panics on input: a panic in b is answered as an
// "internal" error.
//
// Serve returns when in ends (nil, after letting the requests in flight finish,
// see WithDrainTimeout), when writing to out fails (that error) or when ctx is
// done (ctx.Err(), after canceling the requests in flight). Before returning it
// disconnects b, but it does not Close it. If in has a SetReadDeadline method (an
// *os.File pipe does), Serve uses it to stop a pending read when ctx is done;
// otherwise a goroutine may stay blocked reading in until in ends.
func Serve(ctx context.Context, b broker.Broker, in io.Reader, out io.Writer, opts ...ServeOption) error {
	cfg := newServeConfig(opts)
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	s := &server{
		b:        b,
		cfg:      cfg,
		log:      cfg.logger,
		runCtx:   runCtx,
		inflight: make(map[string]context.CancelFunc),
		streams:  make(map[string]context.CancelFunc),
		sem:      make(chan struct{}, cfg.maxConcurrent),
		failed:   make(chan struct{}),
		jobs:     make(chan job),
	}
	s.out = newBlockingWriter(out, maxQueued, func() bool { return s.busy.Load() > 0 }, func(err error) {
		s.log.Error("cannot write responses; stopping", "error", err)
		close(s.failed)
	})
	s.legacyTail = make(chan struct{})
	close(s.legacyTail)

	readDone := make(chan error, 1)
	go func() { readDone <- s.readLoop(newFrameReader(markReader{in, s}, cfg.maxLine)) }()

	var err error
	select {
	case err = <-readDone:
		if !waitTimeout(&s.handlers, cfg.drainTimeout) {
			s.log.Warn("requests still running after input ended; canceling them", "drain_timeout", cfg.drainTimeout)
			cancelRun()
		}
	case <-ctx.Done():
		err = ctx.Err()
		cancelRun()
		s.stopReading(in, readDone)
	case <-s.failed:
		cancelRun()
		s.stopReading(in, readDone)
	}
	s.gate.Lock()
	s.stopped = true // a reader still blocked in in.Read can start nothing more
	s.gate.Unlock()
	s.handlers.Wait()
	close(s.jobs) // nothing is dispatched any more: enter refuses
	s.pool.Wait()

	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownTimeout)
	if derr := b.Disconnect(dctx); derr != nil {
		s.log.Warn("disconnect at shutdown failed", "error", derr)
	}
	cancel()

	cancelRun() // ends the event forwarder
	s.events.Wait()
	if werr := s.out.failure(); werr != nil {
		return fmt.Errorf("stdiojson: write response: %w", werr)
	}
	return err
}

// markReader notes that input has arrived, before the reader goroutine looks at
// it, so that Serve stopping at ctx's end can tell a request read but not yet
// dispatched (which it lets start, to be answered "canceled") from no request.
type markReader struct {
	r io.Reader
	s *server
}

func (m markReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if n > 0 {
		m.s.unhandled.Store(true)
	}
	return n, err
}

// awaitInputHandled waits, at most d, until the reader goroutine has dispatched
// every complete request it has read.
func (s *server) awaitInputHandled(d time.Duration) {
	deadline := time.Now().Add(d)
	for s.unhandled.Load() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Microsecond)
	}
}

// stopReading interrupts a pending read on in if it can, and waits for the
// reader goroutine. A plain reader cannot be interrupted: then it gives a
// request just read a moment to be dispatched (and answered "canceled").
func (s *server) stopReading(in io.Reader, readDone <-chan error) {
	if d, ok := in.(interface{ SetReadDeadline(time.Time) error }); ok && d.SetReadDeadline(time.Now()) == nil {
		<-readDone
		return
	}
	t := time.NewTimer(20 * time.Millisecond)
	defer t.Stop()
	select {
	case <-readDone:
	case <-t.C:
		s.awaitInputHandled(100 * time.Millisecond)
	}
}

type server struct {
	b      broker.Broker
	cfg    serveConfig
	log    hclog.Logger
	runCtx context.Context

	out    *lineWriter   // the responses and events (linewriter.go)
	failed chan struct{} // closed when writing to out has failed

	// busy counts dispatched requests whose answer is not yet queued; a sender
	// that sees others busy yields once so that their answers share its Write.
	busy atomic.Int32

	unhandled atomic.Bool // input read that the reader has not dispatched yet

	jobs chan job       // to idle handler goroutines (unbuffered)
	idle atomic.Int32   // handler goroutines waiting on jobs
	pool sync.WaitGroup // handler goroutines

	gate    sync.RWMutex // guards stopped against handlers.Add
	stopped bool

	mu         sync.Mutex
	inflight   map[string]context.CancelFunc // by raw id
	streams    map[string]context.CancelFunc // live subscriptions, by name (stream.go)
	legacyTail chan struct{}                 // closed when the last id-less request has been answered
	subscribed bool

	sem      chan struct{}
	handlers sync.WaitGroup
	events   sync.WaitGroup
}

// send writes one line to the output (see lineWriter). Handlers send before
// they give up their concurrency slot, so an output nobody reads ends up holding
// every slot, and the reader stops reading input (backpressure). A failed
// output stops Serve (failed); later lines are dropped.
func (s *server) send(line []byte) { _ = s.out.write(line) }
