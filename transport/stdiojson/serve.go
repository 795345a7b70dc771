package stdiojson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
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
		w:        out,
		inflight: make(map[string]context.CancelFunc),
		sem:      make(chan struct{}, cfg.maxConcurrent),
		failed:   make(chan struct{}),
		jobs:     make(chan job),
	}
	s.drained.L = &s.wmu
	s.legacyTail = make(chan struct{})
	close(s.legacyTail)

	readDone := make(chan error, 1)
	go func() { readDone <- s.readLoop(newLineReader(markReader{in, s}, cfg.maxLine)) }()

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
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writeErr != nil {
		return s.writeErr
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

	wmu      sync.Mutex // serialises writes to w
	drained  sync.Cond  // on wmu: the flusher took the queue, or writing failed
	w        io.Writer
	wbuf     []byte // lines queued for the flusher, under wmu
	spare    []byte // a written wbuf, kept for reuse
	flushing bool   // a sender is writing; others queue their lines in wbuf
	writeErr error  // set, under wmu, before failed is closed
	failed   chan struct{}

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
	legacyTail chan struct{}                 // closed when the last id-less request has been answered
	subscribed bool

	sem      chan struct{}
	handlers sync.WaitGroup
	events   sync.WaitGroup
}

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

func (s *server) readLoop(lr *lineReader) error {
	for {
		line, err := lr.next()
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
		if lr.r.Buffered() == 0 {
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
// them spares a goroutine start, and the growth of its stack, per request.
const maxIdleHandlers = 16

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

// answer handles req and renders its response line, or nil if the handler has
// already queued its own.
func (s *server) answer(ctx context.Context, req wireRequest) []byte {
	data, err := s.handle(ctx, req)
	if errors.Is(err, errAnswered) {
		return nil
	}
	return encodeResponse(req.ID, data, err)
}

// handle executes one request; it never panics.
func (s *server) handle(ctx context.Context, req wireRequest) (data any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic while handling request", "command", req.Command, "panic", r, "stack", string(debug.Stack()))
			data, err = nil, fmt.Errorf("stdiojson: worker panicked handling %q: %v", req.Command, r)
		}
	}()
	switch req.Command {
	case CommandHello:
		return s.hello(req)
	case CommandCancel:
		return s.cancel(req)
	case string(broker.OpConnect):
		p := broker.ConnectParams{
			Host: req.Host, Port: req.Port, ClientID: req.ClientID, ReadOnly: req.ReadOnly,
			Timeout: secondsToDuration(req.Timeout),
		}
		info, err := s.b.Connect(ctx, p)
		if err != nil {
			return nil, err
		}
		return connectData{Connected: true, Accounts: nonNil(info.Accounts), ServerVersion: info.ServerVersion}, nil
	case string(broker.OpDisconnect):
		if err := s.b.Disconnect(ctx); err != nil {
			return nil, err
		}
		return disconnectData{Disconnected: true}, nil
	case string(broker.OpAccounts):
		accts, err := s.b.Accounts(ctx)
		if err != nil {
			return nil, err
		}
		return accountsData{Accounts: nonNil(accts)}, nil
	case string(broker.OpPositions):
		ps, err := s.b.Positions(ctx)
		if err != nil {
			return nil, err
		}
		return positionsPayload(ps), nil
	case string(broker.OpAccountSummary):
		sums, err := s.b.AccountSummary(ctx, req.Tags...)
		if err != nil {
			return nil, err
		}
		return summaryData{Summaries: toWireSummaries(sums)}, nil
	case string(broker.OpPing):
		if err := s.b.Ping(ctx); err != nil {
			return nil, err
		}
		return pongPayload{}, nil
	}
	return nil, fmt.Errorf("%w: unknown command %q", broker.ErrUnsupported, req.Command)
}

func commandNames() []string {
	out := []string{CommandHello, CommandCancel}
	for _, op := range broker.Ops() {
		out = append(out, string(op))
	}
	return out
}

// hello reports the protocol and, the first time events are asked for, starts
// forwarding them. The forwarder starts only after the hello answer is queued.
func (s *server) hello(req wireRequest) (any, error) {
	if req.Protocol < 0 {
		return nil, fmt.Errorf("%w: protocol %d", broker.ErrInvalidArgument, req.Protocol)
	}
	data := helloData{Protocol: ProtocolVersion, PID: os.Getpid(), Commands: commandNames()}
	if !req.Events {
		s.mu.Lock()
		data.Events = s.subscribed
		s.mu.Unlock()
		return data, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subscribed {
		data.Events = true
		return data, nil
	}
	ch, err := s.b.Subscribe(s.runCtx)
	if err != nil {
		s.log.Warn("cannot subscribe to events", "error", err)
		return data, nil
	}
	s.subscribed = true
	data.Events = true
	line := encodeResponse(req.ID, data, nil)
	// Queue the answer here, under mu, so that no event can precede it; the
	// handler's own answer is then suppressed by returning errAnswered.
	s.send(line)
	s.events.Add(1)
	go s.forwardEvents(ch)
	return nil, errAnswered
}

// errAnswered tells the dispatcher that the handler queued its own answer.
var errAnswered = errors.New("answered")

func (s *server) forwardEvents(ch <-chan broker.Event) {
	defer s.events.Done()
	for {
		select {
		case <-s.runCtx.Done():
			return
		case e, ok := <-ch:
			if !ok {
				return
			}
			b, err := json.Marshal(wireEvent{Event: e.Kind, Time: e.Time, IBCode: e.Code, Message: e.Message})
			if err != nil {
				s.log.Warn("dropping event that does not encode", "error", err)
				continue
			}
			s.send(append(b, '\n'))
		}
	}
}

func (s *server) cancel(req wireRequest) (any, error) {
	if len(req.Target) == 0 || string(req.Target) == "null" {
		return nil, fmt.Errorf("%w: cancel needs a \"target\" id", broker.ErrInvalidArgument)
	}
	if checkID(req.Target) != nil {
		return nil, fmt.Errorf("%w: cancel's \"target\" must be an id (a number or a string), not %.40s", broker.ErrInvalidArgument, req.Target)
	}
	s.mu.Lock()
	cancel, ok := s.inflight[string(req.Target)]
	s.mu.Unlock()
	if ok {
		cancel()
	}
	return cancelData{Canceled: ok}, nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
