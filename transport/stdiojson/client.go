package stdiojson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
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

// DefaultGracePeriod is how long Close lets the worker disconnect and exit
// before it kills it (see WithGracePeriod).
const DefaultGracePeriod = 2 * time.Second

// WithGracePeriod bounds how long Close waits for the worker to disconnect and
// exit before it kills it (default DefaultGracePeriod). A value <= 0 keeps the
// default, as in the goplugin transport.
func WithGracePeriod(d time.Duration) Option {
	return func(c *clientConfig) {
		if d > 0 {
			c.grace = d
		}
	}
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

	nextID  atomic.Uint64
	nextSub atomic.Uint64 // names of subscriptions (stream.go)
	w       *lineWriter

	mu      sync.Mutex
	pending map[uint64]*waiter
	streams map[string]*clientStream // live subscriptions, by name (stream.go)
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
	data   json.RawMessage
	fastID json.RawMessage // the id, when the data was cut out by fastSuccess (see reparse)
	err    error
	token  bool // not an answer: the read token, passed to this caller
	lost   bool // err is not the worker's answer: it died, Close came, or its answer was unreadable
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
	cfg := clientConfig{grace: DefaultGracePeriod, maxLine: DefaultMaxLineBytes}
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

// Pid returns the worker's process id.
func (c *Client) Pid() int { return c.pid }

// Exited returns a channel that is closed once the worker process has exited
// and been reaped.
func (c *Client) Exited() <-chan struct{} { return c.exited }

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
