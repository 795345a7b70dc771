package goplugin

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/internal/childproc"
	"github.com/brokerkit/brokerkit/internal/grpclink"
)

// Environment variables the host sets for the child.
const (
	// EnvSelf marks a child started with WithSelf; MaybeRunWorker serves when it is "1".
	EnvSelf = "BROKERKIT_GOPLUGIN_SELF"
	// envHostPID carries the host's pid so that the child can tell when it is orphaned.
	envHostPID = "BROKERKIT_GOPLUGIN_HOST_PID"
)

// DefaultStartTimeout bounds Start when ctx has no deadline.
const DefaultStartTimeout = 30 * time.Second

// Option configures Start.
type Option func(*options)

type options struct {
	path  string
	args  []string
	self  bool
	log   hclog.Logger
	tls   tlsMode
	grace time.Duration
	env   []string
}

// DefaultGracePeriod is how long Close lets the child close its Broker and exit
// before it kills the child with SIGKILL (see WithGracePeriod).
const DefaultGracePeriod = 2 * time.Second

// WithGracePeriod bounds Close (default DefaultGracePeriod): the child gets that
// long to close its Broker and exit, then it is killed with SIGKILL, whatever it
// does (a child stopped with SIGSTOP, or one that stopped answering, included).
// A value <= 0 keeps the default.
func WithGracePeriod(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.grace = d
		}
	}
}

// WithCommand runs the child as path with args, for example
// WithCommand("/usr/local/bin/brokerkit", "plugin").
func WithCommand(path string, args ...string) Option {
	return func(o *options) { o.path, o.args, o.self = path, args, false }
}

// WithSelf runs the child as this very executable (os.Executable) with EnvSelf=1
// in its environment; the program must call MaybeRunWorker early in main.
func WithSelf() Option {
	return func(o *options) { o.path, o.args, o.self = "", nil, true }
}

// WithEnv adds variables ("KEY=value") to the child's environment, which
// otherwise is the host's.
func WithEnv(kv ...string) Option {
	return func(o *options) { o.env = append(o.env, kv...) }
}

// WithLogger sets the host's logger. The child's log lines and anything it writes
// to stdout or stderr land here, under the name "goplugin" (default: hclog to
// os.Stderr at info level, as the stdiojson transport's).
func WithLogger(l hclog.Logger) Option {
	return func(o *options) { o.log = l }
}

// tlsMode is how host and child secure their connection.
type tlsMode int

const (
	tlsOwn      tlsMode = iota // mutual TLS with brokerkit's per-start P-256 certificates (default)
	tlsGoPlugin                // go-plugin's AutoMTLS (per-start P-521 certificates)
	tlsNone                    // no TLS
)

// WithoutAutoMTLS turns off mutual TLS between host and child, which is on by
// default. The connection is a Unix socket readable only by this user either
// way; TLS costs a little latency and startup time.
func WithoutAutoMTLS() Option {
	return func(o *options) { o.tls = tlsNone }
}

// WithGoPluginAutoMTLS secures the connection with go-plugin's own AutoMTLS
// instead of brokerkit's default mutual TLS. Both make fresh certificates at
// every start and both sides verify each other's; go-plugin's are ECDSA P-521,
// whose key generation costs milliseconds on each side, where brokerkit's are
// P-256, made by the host for both sides and handed to the child in its
// environment (ADR 0004). Use it for a child built against a brokerkit older
// than that default, which serves go-plugin's AutoMTLS only.
func WithGoPluginAutoMTLS() Option {
	return func(o *options) { o.tls = tlsGoPlugin }
}

// Start launches the child process, completes go-plugin's handshake and returns a
// Client speaking to the Broker the child serves. The Client is disconnected until
// Connect. ctx bounds the start only, not the Client's life; if ctx ends first,
// Start returns an error matching ctx.Err() at once and the child is killed in the
// background as soon as go-plugin gives it up (at the latest after ctx's deadline,
// or DefaultStartTimeout if it has none). A child that fails to start or to
// handshake yields an error matching broker.ErrUnavailable.
func Start(ctx context.Context, opts ...Option) (*Client, error) {
	o := options{grace: DefaultGracePeriod}
	for _, opt := range opts {
		opt(&o)
	}
	log := o.log
	if log == nil {
		log = hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Info})
	}
	log = log.Named("goplugin")

	var cmd *exec.Cmd
	switch {
	case o.self:
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("goplugin: start: %w: %w", broker.ErrUnavailable, err)
		}
		cmd = exec.Command(exe)
		cmd.Env = append(cmd.Env, EnvSelf+"=1")
	case o.path != "":
		cmd = exec.Command(o.path, o.args...)
	default:
		return nil, fmt.Errorf("goplugin: start: %w: no command (use WithCommand or WithSelf)", broker.ErrInvalidArgument)
	}
	// Our variables come after the inherited ones so that they win (go-plugin
	// would append the host's environment after cmd.Env; SkipHostEnv below).
	cmd.Env = append(append(append(os.Environ(), cmd.Env...), o.env...), envHostPID+"="+strconv.Itoa(os.Getpid()))
	// The kernel sends the child SIGKILL when the host dies: SIGKILL because it
	// is the one signal a stopped (SIGSTOP) child cannot leave pending; the child
	// has nothing to clean up that the kernel does not (its socket file is gone
	// once the host has connected). It fires when the host thread that forked the
	// child exits, so it is a first line only; the child's own watch (watchHost)
	// is the backstop. Linux only.
	cmd.SysProcAttr = childproc.SysProcAttr(syscall.SIGKILL, false)

	var hostTLS *tls.Config
	if o.tls == tlsOwn {
		cfg, childEnv, err := grpclink.MutualTLS()
		if err != nil {
			return nil, fmt.Errorf("goplugin: start: %w: %w", broker.ErrUnavailable, err)
		}
		hostTLS = cfg
		cmd.Env = append(cmd.Env, envTLS+"="+childEnv)
	}

	timeout := DefaultStartTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("goplugin: start: %w", err)
	}
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          map[string]plugin.Plugin{PluginName: &Plugin{Logger: log}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SkipHostEnv:      true, // cmd.Env already holds it
		Logger:           log,
		AutoMTLS:         o.tls == tlsGoPlugin,
		TLSConfig:        hostTLS,
		StartTimeout:     timeout,
		SyncStdout:       lineLogger(log.Named("stdout")),
		SyncStderr:       lineLogger(log.Named("stderr")),
		GRPCDialOptions:  grpclink.DialOptions(),
	})

	type result struct {
		raw   any
		err   error
		ready bool // the host's connection to the child's socket is up
	}
	res := make(chan result, 1)
	go func() {
		cp, err := pc.Client()
		if err != nil {
			res <- result{err: err}
			return
		}
		raw, err := cp.Dispense(PluginName)
		ready := false
		if g, ok := cp.(*plugin.GRPCClient); ok && err == nil {
			rctx, cancel := context.WithTimeout(ctx, timeout)
			ready = awaitReady(rctx, g.Conn)
			cancel()
		}
		res <- result{raw: raw, err: err, ready: ready}
	}()
	// abandon ends a child that will not be used, within the grace period
	// whatever it does, and removes its socket file.
	abandon := func() {
		gctx, cancel := context.WithTimeout(context.Background(), o.grace)
		defer cancel()
		stopChild(gctx, pc.Kill, cmd.Process, pc.Exited, log)
		if cfg := pc.ReattachConfig(); cfg != nil {
			if a, ok := cfg.Addr.(*net.UnixAddr); ok {
				_ = os.Remove(a.Name)
			}
		}
	}
	var r result
	select {
	case <-ctx.Done():
		// go-plugin's Start holds its lock until the handshake ends or times out
		// (StartTimeout, derived from ctx's deadline), and Kill needs that lock:
		// return now and kill the child as soon as go-plugin lets go of it.
		go func() {
			<-res
			abandon()
		}()
		return nil, fmt.Errorf("goplugin: start: %w", ctx.Err())
	case r = <-res:
	}
	if r.err != nil {
		abandon()
		return nil, fmt.Errorf("goplugin: start %s: %w: %w", cmd.Path, broker.ErrUnavailable, r.err)
	}
	c, ok := r.raw.(*Client)
	if !ok {
		abandon()
		return nil, fmt.Errorf("goplugin: start: %w: dispensed %T", broker.ErrProtocol, r.raw)
	}
	c.kill, c.proc, c.grace = pc.Kill, cmd.Process, o.grace
	if cfg := pc.ReattachConfig(); cfg != nil {
		c.pid = cfg.Pid
		if a, ok := cfg.Addr.(*net.UnixAddr); ok {
			c.socket = a.Name
		}
	}
	if r.ready && c.socket != "" {
		// The connection is up and is never redialed (see awaitReady): the file
		// is no longer needed, and removing it now means that no exit of either
		// process, a SIGKILL included, can leave it behind.
		if err := os.Remove(c.socket); err != nil {
			log.Debug("removing the child's socket file", "path", c.socket, "error", err)
		}
	}
	log.Debug("child started", "path", cmd.Path, "pid", c.pid)
	return c, nil
}

// awaitReady waits until conn is connected, or fails to, or ctx ends; it
// reports whether the connection is up. The connection then stays up as long as
// the child lives: go-plugin keeps streams open on it, so gRPC never idles it,
// and nothing on a Unix socket to a live process breaks it.
func awaitReady(ctx context.Context, conn *grpc.ClientConn) bool {
	conn.Connect()
	for {
		st := conn.GetState()
		switch st {
		case connectivity.Ready:
			return true
		case connectivity.TransientFailure, connectivity.Shutdown:
			return false // calls will say why; the socket file stays for a redial
		}
		if !conn.WaitForStateChange(ctx, st) {
			return false
		}
	}
}

// lineLogger returns a writer that logs each write as one line at Info level.
// It receives what the child writes to os.Stdout and os.Stderr after the
// handshake (go-plugin's SyncStdout, SyncStderr).
func lineLogger(l hclog.Logger) *logWriter { return &logWriter{l: l} }

type logWriter struct{ l hclog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	w.l.Info("child output", "text", string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
