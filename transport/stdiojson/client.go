package stdiojson

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
)

// Option configures Start.
type Option func(*clientConfig)

type clientConfig struct {
	path    string
	args    []string
	self    bool
	env     []string
	logger  hclog.Logger
	grace   time.Duration
	maxLine int
}

// WithCommand runs the worker as path with args, for example
// WithCommand("brokerkit", "worker"). path is looked up in $PATH if it has no
// slash.
func WithCommand(path string, args ...string) Option {
	return func(c *clientConfig) { c.path, c.args, c.self = path, args, false }
}

// WithSelf runs the worker as the current executable, with EnvWorker=1 in its
// environment and no arguments, so that MaybeRunWorker at the top of main turns
// the child into a worker. This lets a program ship as one binary.
func WithSelf() Option {
	return func(c *clientConfig) { c.path, c.args, c.self = "", nil, true }
}

// WithEnv adds variables ("KEY=value") to the worker's environment, which
// otherwise is the host's.
func WithEnv(kv ...string) Option {
	return func(c *clientConfig) { c.env = append(c.env, kv...) }
}

// WithLogger sets the logger that receives the host's own messages and, line
// by line, the worker's stderr (default: hclog to os.Stderr at info level).
func WithLogger(l hclog.Logger) Option {
	return func(c *clientConfig) { c.logger = l }
}

// WithGracePeriod bounds how long Close waits for the worker to disconnect and
// exit before it kills it (default 2s).
func WithGracePeriod(d time.Duration) Option {
	return func(c *clientConfig) { c.grace = d }
}

// WithMaxResponseBytes bounds one line from the worker (default
// DefaultMaxLineBytes). A longer line fails the call it answers, if the id can be
// read, with broker.ErrProtocol.
func WithMaxResponseBytes(n int) Option {
	return func(c *clientConfig) {
		if n > 0 {
			c.maxLine = n
		}
	}
}

// Client is a broker.Broker whose calls are served by a worker child process.
// It is safe for concurrent use; calls are multiplexed over the one pipe.
type Client struct {
	cfg    clientConfig
	log    hclog.Logger
	cmd    *exec.Cmd
	pid    int
	stdin  *os.File
	stdout *os.File
	stderr *os.File
	hub    broker.Hub

	nextID atomic.Uint64
	w      *pipeWriter

	mu      sync.Mutex
	pending map[uint64]*waiter
	closed  bool
	dead    error         // why the worker is unusable; set once
	deadCh  chan struct{} // closed when dead is set

	// The worker's output is read by whoever holds the read token (see lead):
	// a caller waiting for its answer, or the background reader when no call is
	// waiting. Fields under mu, except fr, which belongs to the token holder.
	fr          *frameReader
	lf          bool    // callers may read (stdout takes read deadlines)
	tokenHeld   bool    // someone is reading, or will
	owner       *waiter // the caller holding the token; nil: the background reader
	eof         bool    // the output has ended; the token is never given back
	interrupted bool    // a read deadline is set to wake the reader
	wake        chan struct{}
	idle        *time.Timer // wakes the background reader when the token lies idle
	idleArmed   bool

	exited     chan struct{} // closed when the child has been reaped
	exitStatus string
	readerDone chan struct{}
	stderrDone chan struct{}
	bg         sync.WaitGroup
	closeOnce  sync.Once
	writing    sync.WaitGroup // public requests registered and not yet written

	protocol int
}

type result struct {
	data  json.RawMessage
	err   error
	token bool // not an answer: the read token, passed to this caller
}

// waiter is a call waiting for its answer. ch holds at most the read token and
// the answer, so sends to it never block.
type waiter struct {
	ch chan result
}

// idleDelay is how long the read token may lie unused before the background
// reader takes it, to read events and notice the worker's end while no call is
// waiting. (Callers pass the token among themselves; handing it to a goroutine
// after every call would cost a thread wake-up per call.)
const idleDelay = time.Millisecond

var _ broker.Broker = (*Client)(nil)

// Start spawns a worker and says hello to it; the returned Client is a
// disconnected broker.Broker. ctx bounds the start-up only. If the worker cannot
// be started or does not answer, Start fails with an error matching
// broker.ErrUnavailable (or ctx's error) and leaves no process behind.
func Start(ctx context.Context, opts ...Option) (*Client, error) {
	cfg := clientConfig{grace: 2 * time.Second, maxLine: DefaultMaxLineBytes}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = hclog.New(&hclog.LoggerOptions{Name: "stdiojson", Output: os.Stderr, Level: hclog.Info})
	}
	env := os.Environ()
	path := cfg.path
	if cfg.self {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("%w: find own executable: %w", broker.ErrUnavailable, err)
		}
		path = exe
		env = append(env, EnvWorker+"=1")
	}
	if path == "" {
		return nil, fmt.Errorf("%w: no worker command (use WithCommand or WithSelf)", broker.ErrInvalidArgument)
	}
	env = append(env, cfg.env...)
	env = append(env, EnvParentPID+"="+strconv.Itoa(os.Getpid()))

	c := &Client{
		cfg:        cfg,
		log:        cfg.logger,
		pending:    make(map[uint64]*waiter),
		wake:       make(chan struct{}, 1),
		deadCh:     make(chan struct{}),
		exited:     make(chan struct{}),
		readerDone: make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	if err := c.spawn(path, env); err != nil {
		return nil, err
	}

	var hello helloData
	err := c.rawCall(ctx, CommandHello, &wireRequest{Protocol: ProtocolVersion, Events: true}, &hello, false)
	if err == nil && hello.Protocol != ProtocolVersion {
		err = fmt.Errorf("%w: worker speaks protocol %d, this client %d", broker.ErrProtocol, hello.Protocol, ProtocolVersion)
	}
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("stdiojson: start worker: %w", ctx.Err())
		}
		if !errors.Is(err, broker.ErrUnavailable) && !errors.Is(err, broker.ErrProtocol) {
			err = fmt.Errorf("%w: %w", broker.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("stdiojson: hello: %w", err)
	}
	c.protocol = hello.Protocol
	c.log.Debug("worker started", "pid", c.pid, "protocol", hello.Protocol, "events", hello.Events)
	return c, nil
}

func (c *Client) spawn(path string, env []string) error {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err1 := pipe()
	outR, outW, err2 := pipe()
	errR, errW, err3 := pipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		closeAll()
		return fmt.Errorf("%w: pipes for worker: %w", broker.ErrUnavailable, err)
	}
	cmd := exec.Command(path, c.cfg.args...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		closeAll()
		return fmt.Errorf("%w: start worker %s: %w", broker.ErrUnavailable, path, err)
	}
	inR.Close()
	outW.Close()
	errW.Close()
	c.cmd, c.pid = cmd, cmd.Process.Pid
	c.stdin, c.stdout, c.stderr = inW, outR, errR
	c.log = c.log.With("worker_pid", c.pid)

	c.w = newPipeWriter(inW)
	c.fr = newFrameReader(outR, c.cfg.maxLine)
	c.lf = outR.SetReadDeadline(time.Time{}) == nil
	c.idle = time.AfterFunc(time.Hour, c.kick)
	c.idle.Stop()
	c.wake <- struct{}{}
	c.bg.Add(3)
	go c.readLoop()
	go c.stderrLoop()
	go c.waitLoop()
	return nil
}

// Pid returns the worker's process id.
func (c *Client) Pid() int { return c.pid }

// Exited returns a channel that is closed once the worker process has exited
// and been reaped.
func (c *Client) Exited() <-chan struct{} { return c.exited }

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
		return c.deliver(id, result{err: fmt.Errorf("%w: response longer than %d bytes", broker.ErrProtocol, c.cfg.maxLine)})
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
		c.publish(in)
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
	return c.deliver(id, result{data: in.Data}) // parseInbound copied it out of the line
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

// stderrLoop forwards the worker's stderr into the logger, one entry per line.
// Lines in hclog's JSON format keep their level, message and fields.
func (c *Client) stderrLoop() {
	defer c.bg.Done()
	defer close(c.stderrDone)
	sc := bufio.NewScanner(c.stderr)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	log := c.log.Named("worker")
	for sc.Scan() {
		forwardLogLine(log, sc.Bytes())
	}
}

func forwardLogLine(log hclog.Logger, line []byte) {
	var m map[string]any
	if len(line) > 0 && line[0] == '{' && json.Unmarshal(line, &m) == nil {
		if msg, ok := m["@message"].(string); ok {
			level := hclog.Info
			if l, ok := m["@level"].(string); ok {
				if lv := hclog.LevelFromString(l); lv != hclog.NoLevel {
					level = lv
				}
			}
			args := make([]any, 0, 2*len(m))
			for k, v := range m {
				if !strings.HasPrefix(k, "@") {
					args = append(args, k, v)
				}
			}
			log.Log(level, msg, args...)
			return
		}
	}
	log.Info(string(line))
}

// waitLoop reaps the worker and then fails every call that is still waiting.
func (c *Client) waitLoop() {
	defer c.bg.Done()
	err := c.cmd.Wait()
	status := "exit status 0"
	if err != nil {
		status = err.Error()
	}
	c.exitStatus = status
	close(c.exited)
	c.kick() // someone must read the output to its end
	// Let the reader take what the worker wrote before it went; a grandchild
	// holding the pipe open must not keep us waiting.
	for _, done := range []struct {
		ch <-chan struct{}
		f  *os.File
	}{{c.readerDone, c.stdout}, {c.stderrDone, c.stderr}} {
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-done.ch:
		case <-t.C:
			done.f.Close()
			<-done.ch
		}
		t.Stop()
		done.f.Close()
	}
	c.die(fmt.Errorf("%w: worker (pid %d) exited: %s", broker.ErrUnavailable, c.pid, status))
}

// die marks the worker unusable and fails every call waiting for it.
func (c *Client) die(err error) {
	c.mu.Lock()
	if c.dead != nil {
		c.mu.Unlock()
		return
	}
	c.dead = err
	closed := c.closed
	pending := c.pending
	c.pending = nil
	close(c.deadCh)
	c.mu.Unlock()
	perr := err
	if closed { // the worker is ending because Close ended it: calls see ErrClosed
		perr = fmt.Errorf("%w (%v)", broker.ErrClosed, err)
	}
	for _, w := range pending {
		w.ch <- result{err: perr}
	}
	if !closed {
		c.log.Error("worker died", "error", err)
		c.hub.Publish(broker.Event{Kind: broker.EventConnectionLost, Message: err.Error()})
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func (c *Client) kill() {
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.log.Warn("kill worker", "error", err)
	}
}

// call makes one request on behalf of a Broker method.
func (c *Client) call(ctx context.Context, command string, req *wireRequest, out any) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return fmt.Errorf("stdiojson: %s: %w", command, broker.ErrClosed)
	}
	err := c.rawCall(ctx, command, req, out, true)
	if err != nil && !errors.Is(err, broker.ErrClosed) && ctx.Err() == nil {
		c.mu.Lock()
		closed = c.closed
		c.mu.Unlock()
		if closed { // Close overtook the call (its disconnect, or the worker's exit)
			return fmt.Errorf("stdiojson: %s: %w (%v)", command, broker.ErrClosed, err)
		}
	}
	return err
}

// rawCall sends a request and waits for its answer, ctx, or the worker's death.
// A public call fails with ErrClosed once Close has begun; Close's own requests
// (disconnect) and Start's hello are not public.
func (c *Client) rawCall(ctx context.Context, command string, req *wireRequest, out any, public bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stdiojson: %s: %w", command, err)
	}
	if req == nil {
		req = &wireRequest{}
	}
	id := c.nextID.Add(1)
	req.ID = strconv.AppendUint(nil, id, 10)
	req.Command = command
	line, err := encodeRequest(req)
	if err != nil {
		return fmt.Errorf("%w: encode %s: %w", broker.ErrInvalidArgument, command, err)
	}

	w := &waiter{ch: make(chan result, 2)}
	c.mu.Lock()
	if public && c.closed {
		c.mu.Unlock()
		return fmt.Errorf("stdiojson: %s: %w", command, broker.ErrClosed)
	}
	if c.dead != nil {
		err := c.dead
		if c.closed {
			err = broker.ErrClosed
		}
		c.mu.Unlock()
		return fmt.Errorf("stdiojson: %s: %w", command, err)
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
			return fmt.Errorf("stdiojson: %s: %w", command, broker.ErrClosed)
		case dead != nil:
			return fmt.Errorf("stdiojson: %s: %w", command, dead)
		}
		return fmt.Errorf("%w: stdiojson: %s: write to worker: %w", broker.ErrUnavailable, command, err)
	}
	r, err := c.await(ctx, id, w)
	if err != nil {
		return fmt.Errorf("stdiojson: %s: %w", command, err)
	}
	if r.err != nil {
		return fmt.Errorf("stdiojson: %s: %w", command, r.err)
	}
	if out == nil {
		return nil
	}
	if d, ok := out.(rawDecoder); ok {
		if err := d.decodeData(r.data); err != nil {
			return fmt.Errorf("%w: %s answer: %v", broker.ErrProtocol, command, err)
		}
		return nil
	}
	if err := json.Unmarshal(r.data, out); err != nil {
		return fmt.Errorf("%w: %s answer: %v", broker.ErrProtocol, command, err)
	}
	return nil
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

// Connect implements broker.Broker.
func (c *Client) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	req := &wireRequest{Host: p.Host, Port: p.Port, ClientID: p.ClientID, ReadOnly: p.ReadOnly, Timeout: p.Timeout.Seconds()}
	var d connectData
	if err := c.call(ctx, string(broker.OpConnect), req, &d); err != nil {
		return broker.ConnectInfo{}, err
	}
	return broker.ConnectInfo{Accounts: d.Accounts, ServerVersion: d.ServerVersion}, nil
}

// Disconnect implements broker.Broker.
func (c *Client) Disconnect(ctx context.Context) error {
	return c.call(ctx, string(broker.OpDisconnect), nil, nil)
}

// Accounts implements broker.Broker.
func (c *Client) Accounts(ctx context.Context) ([]string, error) {
	var d accountsData
	if err := c.call(ctx, string(broker.OpAccounts), nil, &d); err != nil {
		return nil, err
	}
	return d.Accounts, nil
}

// Positions implements broker.Broker.
func (c *Client) Positions(ctx context.Context) ([]broker.Position, error) {
	var r positionsResult
	if err := c.call(ctx, string(broker.OpPositions), nil, &r); err != nil {
		return nil, err
	}
	return r.positions, nil
}

// AccountSummary implements broker.Broker.
func (c *Client) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	var d summaryData
	if err := c.call(ctx, string(broker.OpAccountSummary), &wireRequest{Tags: tags}, &d); err != nil {
		return nil, err
	}
	return fromWireSummaries(d.Summaries), nil
}

// Ping implements broker.Broker.
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, string(broker.OpPing), nil, nil)
}

// Subscribe implements broker.Broker. Events are the worker's (connection lost
// and restored, gateway notices) plus a connection_lost event when the worker
// itself dies.
func (c *Client) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("stdiojson: subscribe: %w", broker.ErrClosed)
	}
	ch, err := c.hub.Subscribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("stdiojson: subscribe: %w", err)
	}
	return ch, nil
}

// Close implements broker.Broker. Calls in flight fail with broker.ErrClosed.
// Close asks the worker to disconnect, closes its stdin, waits up to the grace
// period (WithGracePeriod) for it to exit, kills it otherwise, and always reaps
// it. It returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		// Requests registered before closed was set are written before their
		// cancels below, so that the worker never runs one it will not be told to
		// cancel (which would hold its exit until its drain timeout).
		c.writing.Wait()
		c.mu.Lock()
		pending := c.pending
		if c.dead == nil {
			c.pending = make(map[uint64]*waiter)
		}
		c.mu.Unlock()
		for _, w := range pending {
			w.ch <- result{err: broker.ErrClosed}
		}
		c.mu.Lock()
		if c.tokenHeld && c.owner != nil && !c.eof {
			c.interruptLocked() // a caller reading must see its ErrClosed
		}
		c.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.grace)
		defer cancel()
		// Abandoned calls are canceled in the worker, so that it need not let
		// them finish once its input ends.
		for id := range pending {
			c.sendCancel(id)
		}
		if err := c.rawCall(ctx, string(broker.OpDisconnect), nil, nil, false); err != nil && !errors.Is(err, broker.ErrUnavailable) {
			c.log.Debug("disconnect at close", "error", err)
		}
		c.w.close(time.Until(deadline(ctx)))
		select {
		case <-c.exited:
		case <-ctx.Done():
			c.log.Warn("worker did not exit within the grace period; killing it", "grace", c.cfg.grace)
			c.kill()
		}
		c.bg.Wait()
		c.idle.Stop()
		c.die(fmt.Errorf("stdiojson: %w", broker.ErrClosed))
		c.hub.Close()
		c.log.Debug("worker stopped", "status", c.exitStatus)
	})
	return nil
}
