package stdiojson

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/internal/childproc"
)

// Environment variables of the worker process.
const (
	// EnvWorker, set to "1" in a process's environment, makes MaybeRunWorker turn
	// that process into a worker. WithSelf sets it for the child it starts.
	EnvWorker = "BROKERKIT_STDIOJSON_WORKER"
	// EnvParentPID is set by Start to the host's pid; a worker that finds a
	// different parent at start-up knows its host is already gone and exits.
	EnvParentPID = "BROKERKIT_STDIOJSON_PARENT_PID"
	// EnvLogLevel names the level of RunWorker's default logger (trace, debug,
	// info, warn, error; default info).
	EnvLogLevel = "BROKERKIT_LOG_LEVEL"
	// EnvWorkerProcs sets GOMAXPROCS for the worker process (default 1; see
	// RunWorker). The same variable governs the goplugin transport's child.
	EnvWorkerProcs = childproc.EnvProcs
)

// RunWorker makes the current process a stdiojson worker: it protects the
// protocol stream from stray writes to stdout (the stream moves to a private
// duplicate of file descriptor 1; fd 1 and os.Stdout then point at stderr),
// arranges to be signalled when its parent dies (Linux), and serves the Broker
// returned by newBroker on stdin and the protected stream until stdin ends, the
// process receives SIGTERM or SIGINT, or ctx is done. Then it disconnects, closes
// the Broker and returns nil; it returns an error only if the worker could not
// run or its output failed.
//
// RunWorker sets GOMAXPROCS to 1 (or to $BROKERKIT_WORKER_GOMAXPROCS): the
// worker waits far more than it computes, and one P spares it the thread
// wake-ups that would otherwise dominate each round trip.
//
// Unless WithServeLogger says otherwise, the worker logs JSON lines to stderr,
// which Client forwards into its own logger. RunWorker changes process-wide state
// (file descriptors, os.Stdout, signal handling): call it from main only.
func RunWorker(ctx context.Context, newBroker func() broker.Broker, opts ...ServeOption) error {
	childproc.SetProcs()
	proto, err := takeStdout()
	if err != nil {
		return fmt.Errorf("stdiojson: protect stdout: %w", err)
	}
	defer proto.Close()

	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "stdiojson-worker",
		Output:     os.Stderr,
		JSONFormat: true,
		Level:      hclog.LevelFromString(os.Getenv(EnvLogLevel)),
	})
	opts = append([]ServeOption{WithServeLogger(logger)}, opts...)
	logger = newServeConfig(opts).logger

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// SIGKILL, as the host asked at spawn (sysProcAttr): a stopped worker
	// must die with its host too.
	if err := childproc.SetParentDeathSignal(syscall.SIGKILL); err != nil {
		logger.Warn("cannot watch for parent death", "error", err)
	}
	if want, err := strconv.Atoi(os.Getenv(EnvParentPID)); err == nil && want != os.Getppid() {
		logger.Warn("parent is already gone; exiting", "expected_parent", want, "parent", os.Getppid())
		cancel(errors.New("parent gone"))
	}

	b := newBroker()
	logger.Debug("worker serving", "pid", os.Getpid(), "protocol", ProtocolVersion)
	err = Serve(ctx, b, takeStdin(), proto, opts...)
	if cerr := b.Close(); cerr != nil {
		logger.Warn("close broker", "error", cerr)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		logger.Debug("worker stopped", "reason", context.Cause(ctx))
		return nil
	}
	return err
}

// MaybeRunWorker turns the process into a worker if EnvWorker is set in its
// environment (as WithSelf arranges), and returns otherwise. Call it first thing
// in main, before anything writes to stdout. In a worker it never returns: it
// runs RunWorker and exits, with status 0 after a normal shutdown and 1 if the
// worker failed.
func MaybeRunWorker(newBroker func() broker.Broker, opts ...ServeOption) {
	if os.Getenv(EnvWorker) != "1" {
		return
	}
	// Children of the worker are not workers.
	_ = os.Unsetenv(EnvWorker)
	if err := RunWorker(context.Background(), newBroker, opts...); err != nil {
		fmt.Fprintln(os.Stderr, "stdiojson worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
