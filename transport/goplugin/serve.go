package goplugin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/internal/childproc"
)

// childLogger is the child's default logger: JSON lines on the real standard
// error, which go-plugin's host parses into its own logger. It is captured at
// init because go-plugin replaces os.Stderr once serving.
var childLogger = hclog.New(&hclog.LoggerOptions{
	Name:       "child",
	Level:      hclog.Debug,
	Output:     os.Stderr,
	JSONFormat: true,
})

// startedByHost reports whether a go-plugin host started this process.
func startedByHost() bool {
	return os.Getenv(Handshake.MagicCookieKey) == Handshake.MagicCookieValue
}

// In a process that a host started, the stdout guard goes up as early as a
// package can put it: before main, so that constructors and most package
// initialisers that print cannot break go-plugin's handshake (issue #199).
func init() {
	if startedByHost() {
		guardStdout(childLogger)
	}
}

// ServeOption configures Serve.
type ServeOption func(*serveOptions)

type serveOptions struct {
	log   hclog.Logger
	usage string
}

// WithUsage adds text to the explanation Serve prints when the program is run
// by hand, outside a host: typically how to start it through its host.
func WithUsage(text string) ServeOption {
	return func(o *serveOptions) { o.usage = text }
}

// WithServeLogger sets the child's logger. It must write to the process's
// standard error as JSON (hclog's JSONFormat) for the host to parse the lines
// into its own logger; the default does exactly that at Debug level.
func WithServeLogger(l hclog.Logger) ServeOption {
	return func(o *serveOptions) { o.log = l }
}

// ErrNotWorker is returned by RunWorker in a process that no host started.
var ErrNotWorker = errors.New("goplugin: not started by a host")

// RunWorker makes the current process a goplugin worker: it serves newBroker()
// to the host that started it and returns nil when the host ends the session,
// the Broker closed by then. It is the whole main of a worker program:
//
//	func main() {
//		if err := goplugin.RunWorker(context.Background(), func() broker.Broker { return ibkr.New() }); err != nil {
//			os.Exit(1)
//		}
//	}
//
// In a process a host started, this package guards go-plugin's handshake on
// stdout from the moment it is initialised (before main): anything else written
// to file descriptor 1, before or after the handshake, reaches the host's logger
// as a "stray write to stdout" instead of corrupting the protocol (Linux only).
// RunWorker also arranges for the process to exit when the host dies, and sets
// GOMAXPROCS to 1 (or to $BROKERKIT_WORKER_GOMAXPROCS, EnvWorkerProcs). When ctx
// is done, the worker closes its Broker and exits the process with status 2, as
// on SIGTERM: go-plugin's server cannot be stopped from the child's side. The
// child ignores SIGINT (go-plugin's choice: a Ctrl-C reaches host and child, and
// the host ends the session), so pass a ctx that a Ctrl-C does not cancel.
//
// Run by hand, outside a host, RunWorker prints what the program is and how to
// use it (see WithUsage) to stderr and returns ErrNotWorker, without calling
// newBroker. Unless WithServeLogger says otherwise, the worker logs JSON lines to
// stderr, which the host parses into its own logger.
func RunWorker(ctx context.Context, newBroker func() broker.Broker, opts ...ServeOption) error {
	var o serveOptions
	for _, opt := range opts {
		opt(&o)
	}
	if !startedByHost() {
		_, _ = io.WriteString(os.Stderr, handUsage(filepath.Base(os.Args[0]), o.usage))
		return ErrNotWorker
	}
	log := o.log
	if log == nil {
		log = childLogger
	}
	b := newBroker()
	childproc.SetProcs()
	watchHost(log, b)
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			log.Warn("context done; exiting", "cause", context.Cause(ctx))
			exitChild(log, b, 2)
		})
		defer stop()
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         map[string]plugin.Plugin{PluginName: &Plugin{Broker: b, Logger: log}},
		GRPCServer:      newGRPCServer(log),
		TLSProvider:     childTLSProvider,
		Logger:          log,
	})
	closeBroker(log, b)
	return nil
}

// Serve serves b to the host that started this process and returns when the host
// ends the session; b is closed by then. Run by hand, outside a host, it prints
// what the program is and how to use it (see WithUsage) to stderr and exits with
// status 1. See RunWorker.
//
// Deprecated: use RunWorker, the name both transports share; Serve goes in the
// next release.
func Serve(b broker.Broker, opts ...ServeOption) {
	if err := RunWorker(context.Background(), func() broker.Broker { return b }, opts...); err != nil {
		os.Exit(1)
	}
}

// handUsage is what a child run by hand prints instead of go-plugin's generic
// "This binary is a plugin" message.
func handUsage(prog, usage string) string {
	msg := prog + ": this is a brokerkit go-plugin child. It serves the Broker port (a session with TWS or IB\n" +
		"Gateway) over gRPC to the host process that starts it, and does nothing run by hand. A Go host starts it\n" +
		"with goplugin.Start(ctx, goplugin.WithCommand(path, args...)) from github.com/brokerkit/brokerkit/transport/goplugin,\n" +
		"which sets " + Handshake.MagicCookieKey + " and speaks go-plugin's handshake on the child's stdout.\n"
	if usage != "" {
		msg += strings.TrimRight(usage, "\n") + "\n"
	}
	return msg
}

// EnvWorkerProcs sets GOMAXPROCS for a child a host started (default 1; see
// Serve). It is the same variable as the stdiojson transport's EnvWorkerProcs.
const EnvWorkerProcs = childproc.EnvProcs

// EnvChildProcs is the old name of EnvWorkerProcs.
//
// Deprecated: use EnvWorkerProcs; EnvChildProcs goes in the next release.
const EnvChildProcs = EnvWorkerProcs

// MaybeRunWorker turns the process into a worker if a host started it with
// WithSelf, and returns otherwise. Call it first thing in main, before anything
// writes to stdout. In a worker it never returns: it runs RunWorker and exits,
// with status 0 after a normal shutdown and 1 if the worker failed. Programs that
// ship one binary for both halves call it first thing in main.
func MaybeRunWorker(newBroker func() broker.Broker, opts ...ServeOption) {
	if os.Getenv(EnvSelf) != "1" || !startedByHost() {
		return
	}
	_ = os.Unsetenv(EnvSelf) // not inherited by processes the child may start
	if err := RunWorker(context.Background(), newBroker, opts...); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// MaybeServe serves newBroker() and exits the process if this process was started
// by a host with WithSelf; otherwise it returns at once.
//
// Deprecated: use MaybeRunWorker, the name both transports share; MaybeServe
// goes in the next release.
func MaybeServe(newBroker func() broker.Broker, opts ...ServeOption) {
	MaybeRunWorker(newBroker, opts...)
}

// closeBroker closes b, bounded so that a stuck Broker cannot keep a dying child alive.
func closeBroker(log hclog.Logger, b broker.Broker) {
	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		if err != nil {
			log.Warn("closing broker", "error", err)
		}
	case <-time.After(closeTimeout):
		log.Warn("closing broker timed out", "after", closeTimeout)
	}
}

// hostPID returns the host's pid as the host announced it, or 0.
func hostPID() int {
	pid, err := strconv.Atoi(os.Getenv(envHostPID))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// hostPollInterval is how often the child checks that its host is alive, as a
// backstop for the parent-death signal.
const hostPollInterval = 250 * time.Millisecond

// watchParent calls exit once ppid is no longer the process's parent, polling
// every hostPollInterval until ctx ends.
func watchParent(ctx context.Context, log hclog.Logger, ppid int, exit func(int)) {
	t := time.NewTicker(hostPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getppid() != ppid {
				log.Warn("host process died; exiting", "host_pid", ppid)
				exit(2)
				return
			}
		}
	}
}

// handshakeRE matches go-plugin's handshake line (see go-plugin's server.go):
// core-version|app-version|network|address|protocol[|server-cert[|mux]].
var handshakeRE = regexp.MustCompile(
	`` + strconv.Itoa(plugin.CoreProtocolVersion) + `\|[0-9]+\|(?:tcp|unix)\|[^|\n]+\|(?:grpc|netrpc)(?:\|[^|\n]*)*\n$`)

// findHandshake returns where go-plugin's handshake line starts in line, which
// ends with a newline; what comes before it is stray output written without one.
func findHandshake(line []byte) (int, bool) {
	loc := handshakeRE.FindIndex(line)
	if loc == nil {
		return 0, false
	}
	return loc[0], true
}

// maxStdoutLine bounds the stray output filterStdout buffers before logging it.
const maxStdoutLine = 64 << 10

// filterStdout reads what the process writes to fd 1: the first handshake line
// goes to the host through real, everything else is logged as stray output.
// It returns when r reaches EOF or fails.
func filterStdout(r io.Reader, real io.Writer, log hclog.Logger) {
	br := bufio.NewReaderSize(r, maxStdoutLine)
	handshook := false
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			stray := line
			if !handshook {
				if i, ok := findHandshake(line); ok {
					stray = line[:i]
					rememberSocket(line[i:])
					if _, werr := real.Write(line[i:]); werr != nil {
						log.Error("writing handshake", "error", werr)
					}
					handshook = true
				}
			}
			if s := trimNewline(stray); len(s) > 0 {
				log.Warn("stray write to stdout", "text", string(s))
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// servedSocket is the path of the Unix socket go-plugin listens on in this
// child, learnt from the handshake line; exit paths that bypass go-plugin's own
// cleanup (host death, SIGTERM) remove it.
var servedSocket atomic.Pointer[string]

func rememberSocket(handshake []byte) {
	parts := strings.Split(strings.TrimSpace(string(handshake)), "|")
	if len(parts) >= 4 && parts[2] == "unix" {
		servedSocket.Store(&parts[3])
	}
}

// exitChild closes b, removes the served socket and exits with code.
func exitChild(log hclog.Logger, b broker.Broker, code int) {
	closeBroker(log, b)
	if p := servedSocket.Load(); p != nil {
		_ = os.Remove(*p)
	}
	os.Exit(code)
}
