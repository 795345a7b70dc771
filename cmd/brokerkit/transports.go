package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/transport/goplugin"
	"github.com/brokerkit/brokerkit/transport/stdiojson"
)

// transports are the names --transport accepts.
var transports = []string{"inprocess", "stdiojson", "goplugin"}

// checkTransport reports a usage error for an unknown transport name.
func checkTransport(name string) error {
	for _, t := range transports {
		if t == name {
			return nil
		}
	}
	return fmt.Errorf("%w: unknown transport %q (want %s)", errUsage, name, strings.Join(transports, ", "))
}

// openBroker returns a disconnected Broker over the named transport.
func openBroker(ctx context.Context, transport string, log hclog.Logger) (broker.Broker, error) {
	if err := checkTransport(transport); err != nil {
		return nil, err
	}
	switch transport {
	case "inprocess":
		return ibkr.New(ibkr.WithLogger(log.Named("ibkr"))), nil
	case "stdiojson":
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return stdiojson.Dialer(stdiojson.WithCommand(exe, "worker"), stdiojson.WithLogger(log.Named("stdiojson")))(ctx)
	case "goplugin":
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return goplugin.Dialer(goplugin.WithCommand(exe, "plugin"), goplugin.WithLogger(log.Named("goplugin")))(ctx)
	default:
		return nil, fmt.Errorf("%w: transport %q is not built in", errUsage, transport)
	}
}

// runWorker serves the IBKR adapter on the process's own stdin and stdout
// (fd 0 and 1, which RunWorker takes over); logs go to stderr. With --robust the
// adapter is served inside robust.New (ADR 0008), so the worker itself keeps the
// session: it reconnects after gateway drops, follows 1100/1101/1102, retries
// idempotent requests, moves off a refused client id by --client-id-policy and
// pings the session; hosts see state changes as events after hello.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("worker", stderr)
	verbose := fs.Bool("v", false, "log at debug level")
	rf := robustWorkerFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log := workerLogger(stderr, *verbose)
	newBroker, err := rf.factory(log)
	if err != nil {
		return err
	}
	return stdiojson.RunWorker(ctx, newBroker, stdiojson.WithServeLogger(log.Named("stdiojson")))
}

// workerLogger logs JSON lines to stderr, which the host forwards into its own logger.
func workerLogger(stderr io.Writer, verbose bool) hclog.Logger {
	level := hclog.LevelFromString(os.Getenv(stdiojson.EnvLogLevel))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	if verbose {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{Name: "worker", Output: stderr, Level: level, JSONFormat: true})
}

// runPlugin serves the IBKR adapter as a go-plugin child; go-plugin's handshake
// goes to stdout, logs go to stderr as JSON lines that the host re-logs.
func runPlugin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("plugin", stderr)
	verbose := fs.Bool("v", false, "log at debug level")
	if err := parse(fs, args); err != nil {
		return err
	}
	log := workerLogger(stderr, *verbose)
	// Not ctx: a child ignores Ctrl-C (go-plugin's choice) and leaves its
	// shutdown to the host.
	err := goplugin.RunWorker(context.Background(), func() broker.Broker { return ibkr.New(ibkr.WithLogger(log.Named("ibkr"))) },
		goplugin.WithServeLogger(log.Named("goplugin")),
		goplugin.WithUsage("brokerkit starts it itself: brokerkit run --transport goplugin (or demo --transport goplugin)."))
	if errors.Is(err, goplugin.ErrNotWorker) {
		os.Exit(1) // as before: the usage is printed, the exit status is 1
	}
	return err
}
