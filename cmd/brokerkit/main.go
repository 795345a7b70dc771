// Command brokerkit runs brokerkit's main job against the embedded fake IB Gateway
// (or a real one), serves the fake gateway standalone, and hosts the out-of-process
// workers that the transports spawn.
//
// Usage:
//
//	brokerkit demo [--json] [--transport inprocess|stdiojson|goplugin] [--script FILE]
//	brokerkit gateway [--listen 127.0.0.1:4002] [--script FILE | --record FILE --upstream HOST:PORT [--redact] | --replay FILE]
//	brokerkit accounts|positions|summary|ping [--host H] [--port P] [--client-id N] [--timeout D] [--call-timeout D] [--json]
//	brokerkit contract SYMBOL [--sec-type STK --exchange SMART --currency USD] [--json]
//	brokerkit quote SYMBOL... [--stream [--count N]] [--type live|frozen|delayed|delayed-frozen] [--json]
//	brokerkit bars SYMBOL [--duration 1D] [--bar 5m] [--json|--csv]
//	brokerkit orders [--open|--completed] [--json]
//	brokerkit order buy|sell QTY SYMBOL [--limit P] [--stop P] [--key K] [--tif DAY] [--outside-rth] [--live] [--wait] [--json]
//	brokerkit cancel ORDER_ID [--live] [--json]
//	brokerkit run [--symbols AAPL,MSFT] [--transport ...] [--host H --port P --client-id N] [--interval 1s] [--duration D] [--max-failures N]
//	brokerkit version [--json]
//	brokerkit worker    (the stdiojson worker: JSON lines on stdin/stdout)
//	brokerkit plugin    (the go-plugin child)
//
// Exit status: 0 on success, 1 when the job failed (one line on stderr says why),
// 2 on a usage error. `run` exits 1 when --max-failures consecutive ticks failed,
// when no tick succeeded within --duration, or when the last tick before a
// SIGINT/SIGTERM failed. Help (-h, --help) goes to stdout.
//
// Every command connects read-only (ConnectParams.ReadOnly) except order and
// cancel, which refuse a live-trading port (4001, 7496) without --live, with
// exit status 2 and before connecting.
//
// Only the tool's own output reaches stdout: before running a command, main
// moves it to a private descriptor and points fd 1 at stderr, so that text a
// library prints (scmhub prints undecodable tokens sent by the gateway) goes to
// stderr instead of into a table or JSON document.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/brokerkit/brokerkit/internal/stdoutguard"
)

// errUsage marks errors that deserve exit status 2.
var errUsage = errors.New("usage")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "connect to the embedded fake gateway, print accounts, positions, summary and a quote, and fill one order", runDemo},
		{"gateway", "serve the scripted fake IB Gateway until interrupted", runGateway},
		{"accounts", "print the managed accounts of a gateway", runQuery("accounts")},
		{"positions", "print the positions of a gateway", runQuery("positions")},
		{"summary", "print the account summary of a gateway", runQuery("summary")},
		{"portfolio", "print the account values and portfolio (market value, PnL) of a gateway's accounts", runQuery("portfolio")},
		{"executions", "print today's executions with their commissions", runQuery("executions")},
		{"orders", "print the open (--open) or completed (--completed) orders", runQuery("orders")},
		{"order", "place one order: order buy|sell QTY SYMBOL [--limit P] [--stop P] [--key K] [--wait] (--live for ports 4001/7496)", runOrder},
		{"cancel", "cancel one order: cancel ORDER_ID (--live for ports 4001/7496)", runCancel},
		{"ping", "make one round trip to a gateway", runQuery("ping")},
		{"contract", "print the contract details of a symbol (or con id)", runMarket("contract")},
		{"quote", "print a snapshot quote of one or more symbols, or stream them (--stream)", runMarket("quote")},
		{"bars", "print historical bars of a symbol (--duration 1D --bar 5m, --json or --csv)", runMarket("bars")},
		{"run", "keep a robust connection and report positions every interval as JSON lines", runRunner},
		{"version", "print the versions of brokerkit, Go, scmhub/ibapi and the protocols", runVersion},
		{"worker", "serve the IBKR adapter as a stdiojson worker on stdin/stdout", runWorker},
		{"plugin", "serve the IBKR adapter as a go-plugin child", runPlugin},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stdout, err := guardStdout(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "brokerkit: protect stdout: %v\n", err)
		os.Exit(1)
	}
	code := Main(ctx, os.Args[1:], stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// guardStdout returns where the command's own output goes: a private duplicate
// of fd 1, with fd 1 and os.Stdout pointed at stderr (see stdoutguard). The
// worker and plugin commands guard their protocol streams themselves.
func guardStdout(args []string) (io.Writer, error) {
	if len(args) > 0 && (args[0] == "worker" || args[0] == "plugin") {
		return os.Stdout, nil
	}
	fd, err := stdoutguard.Take()
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "/dev/stdout"), nil
}

// Main runs the command line and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var help *helpRequest
		switch {
		case err == nil:
			return 0
		case errors.As(err, &help):
			help.print(stdout, c.summary)
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "brokerkit %s: %v (see 'brokerkit %s -h')\n", c.name, err, c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "brokerkit %s: %s\n", c.name, describe(err))
			return 1
		}
	}
	fmt.Fprintf(stderr, "brokerkit: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: brokerkit <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'brokerkit <command> -h' for the flags of one command.")
}

// newFlagSet returns a flag set that prints nothing itself: parse turns its
// errors into errUsage (one line on stderr) and -h into a helpRequest, which
// Main prints to stdout. The stderr parameter is unused; it is kept so that
// every command builds its flags the same way.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("brokerkit "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// helpRequest is the error parse returns for -h or --help; it wraps flag.ErrHelp.
type helpRequest struct{ fs *flag.FlagSet }

func (h *helpRequest) Error() string { return flag.ErrHelp.Error() }
func (h *helpRequest) Unwrap() error { return flag.ErrHelp }

// print writes the command's usage and flags to w.
func (h *helpRequest) print(w io.Writer, summary string) {
	fmt.Fprintf(w, "usage: %s [flags]\n\n%s.\n\nflags:\n", h.fs.Name(), summary)
	h.fs.SetOutput(w)
	h.fs.PrintDefaults()
	h.fs.SetOutput(io.Discard)
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpRequest{fs}
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}
