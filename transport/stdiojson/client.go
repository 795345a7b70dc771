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
	pending map[uint64]chan result
	closed  bool
	dead    error         // why the worker is unusable; set once
	deadCh  chan struct{} // closed when dead is set

	exited     chan struct{} // closed when the child has been reaped
	exitStatus string
	readerDone chan struct{}
	stderrDone chan struct{}
	bg         sync.WaitGroup
	closeOnce  sync.Once

	protocol int
}

type result struct {
	data json.RawMessage
	err  error
}

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
		pending:    make(map[uint64]chan result),
		deadCh:     make(chan struct{}),
		exited:     make(chan struct{}),
		readerDone: make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	if err := c.spawn(path, env); err != nil {
		return nil, err
	}

	var hello helloData
	err := c.rawCall(ctx, CommandHello, &wireRequest{Protocol: ProtocolVersion, Events: true}, &hello)
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

// readLoop reads the worker's stdout and routes each line.
func (c *Client) readLoop() {
	defer c.bg.Done()
	lr := newLineReader(c.stdout, c.cfg.maxLine)
	for {
		line, err := lr.next()
		if errors.Is(err, errLineTooLong) {
			id, _ := parseID(peekID(line))
			c.log.Error("line from worker too long", "limit", c.cfg.maxLine)
			c.deliver(id, result{err: fmt.Errorf("%w: response longer than %d bytes", broker.ErrProtocol, c.cfg.maxLine)})
			continue
		}
		if err != nil {
			break
		}
		if len(bytesTrimSpace(line)) == 0 {
			continue
		}
		in, err := parseInbound(line)
		if err != nil {
			c.log.Warn("ignoring line from worker", "error", err)
			continue
		}
		if in.Event != "" {
			c.publish(in)
			continue
		}
		id, ok := parseID(in.ID)
		if !ok {
			c.log.Warn("ignoring response without a request id", "status", in.Status, "code", in.Code, "error", in.Error)
			continue
		}
		if in.Status == statusError {
			c.deliver(id, result{err: broker.ErrorFromCode(in.Code, in.Error, in.IBCode)})
		} else {
			c.deliver(id, result{data: in.Data})
		}
	}
	close(c.readerDone)
	// The worker closed its output; it should be exiting. Make sure it does.
	t := time.NewTimer(c.cfg.grace)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
		c.log.Warn("worker closed its output but did not exit; killing it")
		c.kill()
	}
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
func (c *Client) deliver(id uint64, r result) {
	c.mu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ok {
		ch <- r
	}
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
	for _, ch := range pending {
		ch <- result{err: err}
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
	return c.rawCall(ctx, command, req, out)
}

// rawCall sends a request and waits for its answer, ctx, or the worker's death.
func (c *Client) rawCall(ctx context.Context, command string, req *wireRequest, out any) error {
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

	ch := make(chan result, 1)
	c.mu.Lock()
	if c.dead != nil {
		err := c.dead
		c.mu.Unlock()
		return fmt.Errorf("stdiojson: %s: %w", command, err)
	}
	c.pending[id] = ch
	c.mu.Unlock()

	if err := c.w.write(line); err != nil {
		// The worker is going or gone: the pipe broke or Close closed it. The
		// waiter's verdict, if it comes, is the better error.
		c.forget(id)
		c.mu.Lock()
		dead := c.dead
		c.mu.Unlock()
		if dead != nil {
			return fmt.Errorf("stdiojson: %s: %w", command, dead)
		}
		return fmt.Errorf("%w: stdiojson: %s: write to worker: %w", broker.ErrUnavailable, command, err)
	}
	select {
	case r := <-ch:
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
	case <-ctx.Done():
		if c.forget(id) {
			c.sendCancel(id)
		}
		return fmt.Errorf("stdiojson: %s: %w", command, ctx.Err())
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
		pending := c.pending
		if c.dead == nil {
			c.pending = make(map[uint64]chan result)
		}
		c.mu.Unlock()
		for _, ch := range pending {
			ch <- result{err: broker.ErrClosed}
		}

		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.grace)
		defer cancel()
		// Abandoned calls are canceled in the worker, so that it need not let
		// them finish once its input ends.
		for id := range pending {
			c.sendCancel(id)
		}
		if err := c.rawCall(ctx, string(broker.OpDisconnect), nil, nil); err != nil && !errors.Is(err, broker.ErrUnavailable) {
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
		c.die(fmt.Errorf("stdiojson: %w", broker.ErrClosed))
		c.hub.Close()
		c.log.Debug("worker stopped", "status", c.exitStatus)
	})
	return nil
}
