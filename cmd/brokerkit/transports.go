package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/transport/stdiojson"
)

// openBroker returns a disconnected Broker over the named transport.
func openBroker(ctx context.Context, transport string, log hclog.Logger) (broker.Broker, error) {
	switch transport {
	case "inprocess":
		return ibkr.New(ibkr.WithLogger(log.Named("ibkr"))), nil
	case "stdiojson":
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return stdiojson.Start(ctx, stdiojson.WithCommand(exe, "worker"), stdiojson.WithLogger(log.Named("stdiojson")))
	default:
		return nil, fmt.Errorf("%w: unknown transport %q (want inprocess, stdiojson or goplugin)", errUsage, transport)
	}
}

// runWorker serves the IBKR adapter on the process's own stdin and stdout
// (fd 0 and 1, which RunWorker takes over); logs go to stderr.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("worker", stderr)
	verbose := fs.Bool("v", false, "log at debug level")
	if err := parse(fs, args); err != nil {
		return err
	}
	log := workerLogger(stderr, *verbose)
	return stdiojson.RunWorker(ctx, func() broker.Broker {
		return ibkr.New(ibkr.WithLogger(log.Named("ibkr")))
	}, stdiojson.WithServeLogger(log.Named("stdiojson")))
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

func runPlugin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("not wired yet")
}

func runRunner(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("not wired yet")
}
