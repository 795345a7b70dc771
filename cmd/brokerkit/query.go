package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/robust"
)

// connFlags are the flags that say where the gateway is and how long to wait.
type connFlags struct {
	params      broker.ConnectParams
	callTimeout time.Duration
}

// connectFlags registers the flags that say where the gateway is and how long
// each step may take.
func connectFlags(fs *flag.FlagSet) *connFlags {
	c := &connFlags{}
	p := &c.params
	fs.StringVar(&p.Host, "host", broker.DefaultHost, "gateway host")
	fs.IntVar(&p.Port, "port", broker.DefaultPort, "gateway API port (4001/4002 IB Gateway live/paper, 7496/7497 TWS)")
	fs.Int64Var(&p.ClientID, "client-id", 1, "API client id (0..2147483647)")
	fs.BoolVar(&p.ReadOnly, "readonly", true, "ask for a read-only API session")
	fs.DurationVar(&p.Timeout, "timeout", 10*time.Second, "connect and API handshake timeout")
	fs.DurationVar(&c.callTimeout, "call-timeout", 10*time.Second, "timeout of each call after the handshake")
	return c
}

// check reports bad connection flags as a usage error.
func (c *connFlags) check() error {
	if err := c.params.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if c.params.Timeout <= 0 || c.callTimeout <= 0 {
		return fmt.Errorf("%w: --timeout and --call-timeout must be positive", errUsage)
	}
	return nil
}

// connect connects b, bounding the whole step (child start-up included) a little
// beyond --timeout so that the adapter's own handshake timeout, with its
// explanation, fires first.
func (c *connFlags) connect(ctx context.Context, b broker.Broker) (broker.ConnectInfo, error) {
	cctx, cancel := context.WithTimeout(ctx, c.params.Timeout+2*time.Second)
	defer cancel()
	info, err := b.Connect(cctx, c.params)
	if err != nil {
		return info, withAddr(err, c.params.Addr())
	}
	return info, nil
}

// call runs one call bounded by --call-timeout, naming the flag when it expires.
func (c *connFlags) call(ctx context.Context, what string, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	err := f(cctx)
	// A child's deadline (sent with the call) may expire just before ours does.
	if err != nil && ctx.Err() == nil && (cctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("%s: no answer from %s within %v (--call-timeout): %w", what, c.params.Addr(), c.callTimeout, err)
	}
	return err
}

// withAddr names the gateway's address in err exactly once: it adds it if err
// does not name it, and drops the repeats that wrapped errors add (a dial
// error names it again).
func withAddr(err error, addr string) error {
	msg := err.Error()
	i := strings.Index(msg, addr)
	switch {
	case i < 0:
		return fmt.Errorf("connect to %s: %w", addr, err)
	case strings.Count(msg, addr) == 1:
		return err
	}
	rest := strings.ReplaceAll(msg[i+len(addr):], " "+addr+":", ":")
	return &rewordedError{msg: msg[:i+len(addr)] + strings.ReplaceAll(rest, addr, ""), err: err}
}

// rewordedError is err with another message; errors.Is and As still see err.
type rewordedError struct {
	msg string
	err error
}

func (e *rewordedError) Error() string { return e.msg }
func (e *rewordedError) Unwrap() error { return e.err }

// disconnect ends the session within a bounded time, even after ctx ended.
func disconnect(ctx context.Context, b broker.Broker) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = b.Disconnect(dctx)
}

// runQuery returns the command that runs one query against any gateway.
func runQuery(what string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(what, stderr)
		c := connectFlags(fs)
		asJSON := fs.Bool("json", false, "print JSON instead of a table")
		transport := fs.String("transport", "inprocess", "inprocess, stdiojson or goplugin")
		verbose := fs.Bool("v", false, "log to stderr")
		rf := readFlags(what, fs)
		if err := parse(fs, args); err != nil {
			return err
		}
		if err := rf.check(what); err != nil {
			return err
		}
		if err := c.check(); err != nil {
			return err
		}
		b, err := openBroker(ctx, *transport, newLogger(stderr, *verbose))
		if err != nil {
			return err
		}
		defer b.Close()
		info, err := c.connect(ctx, b)
		if err != nil {
			return err
		}
		defer disconnect(ctx, b)
		p := c.params.WithDefaults()
		r := report{}
		switch what {
		case "accounts":
			r.Accounts = info.Accounts
		case "positions":
			err = c.call(ctx, what, func(ctx context.Context) (err error) {
				r.Positions, err = b.Positions(ctx)
				return err
			})
		case "summary":
			err = c.call(ctx, what, func(ctx context.Context) (err error) {
				r.Summary, err = b.AccountSummary(ctx)
				return err
			})
		case "portfolio":
			accounts := info.Accounts
			if rf.account != "" {
				accounts = []string{rf.account}
			}
			r.Updates = []broker.AccountUpdate{}
			for _, acct := range accounts {
				if err = c.call(ctx, what, func(ctx context.Context) error {
					u, err := b.AccountUpdates(ctx, acct)
					r.Updates = append(r.Updates, u)
					return err
				}); err != nil {
					break
				}
			}
		case "executions":
			err = c.call(ctx, what, func(ctx context.Context) (err error) {
				r.Executions, err = b.Executions(ctx, rf.filter)
				return err
			})
		case "orders":
			err = c.call(ctx, what, func(ctx context.Context) (err error) {
				if rf.completed {
					r.Orders, err = b.CompletedOrders(ctx)
				} else {
					r.Orders, err = b.OpenOrders(ctx)
				}
				r.OrdersTitle = map[bool]string{false: "Open orders", true: "Completed orders"}[rf.completed]
				return err
			})
		case "ping":
			r.Gateway = &jsonGateway{Host: p.Host, Port: p.Port, ClientID: p.ClientID, ServerVersion: info.ServerVersion, Transport: *transport}
			err = c.call(ctx, what, func(ctx context.Context) error {
				start := time.Now()
				if err := b.Ping(ctx); err != nil {
					return err
				}
				rtt := float64(time.Since(start).Microseconds()) / 1000
				r.RTTMS = &rtt
				return nil
			})
		}
		if err != nil {
			return err
		}
		return r.write(stdout, *asJSON)
	}
}

// queryReadFlags are the flags of the read-side queries.
type queryReadFlags struct {
	account         string
	filter          broker.ExecutionFilter
	open, completed bool
}

// readFlags registers the flags of query what, if it has any.
func readFlags(what string, fs *flag.FlagSet) *queryReadFlags {
	rf := &queryReadFlags{}
	switch what {
	case "portfolio":
		fs.StringVar(&rf.account, "account", "", "one managed account (default: every managed account)")
	case "executions":
		f := &rf.filter
		fs.StringVar(&f.Account, "account", "", "only this account's executions")
		fs.StringVar(&f.Symbol, "symbol", "", "only this symbol")
		fs.StringVar(&f.SecType, "sec-type", "", "only this security type (STK, OPT, ...)")
		fs.StringVar(&f.Exchange, "exchange", "", "only this exchange")
		fs.StringVar(&f.Side, "side", "", "only BUY or SELL")
		fs.StringVar(&f.Since, "since", "", `only at or after "yyyymmdd hh:mm:ss"`)
		fs.Int64Var(&f.ClientID, "exec-client-id", 0, "only executions of orders placed by this API client id (0: any)")
	case "orders":
		fs.BoolVar(&rf.open, "open", false, "the open orders of this client id (the default)")
		fs.BoolVar(&rf.completed, "completed", false, "the completed orders")
	}
	return rf
}

// check reports contradictory read flags as a usage error.
func (rf *queryReadFlags) check(what string) error {
	if what == "orders" && rf.open && rf.completed {
		return fmt.Errorf("%w: --open and --completed exclude each other", errUsage)
	}
	return nil
}

// describe turns an error into one line with a hint for the common failures.
func describe(err error) string {
	msg := err.Error()
	hint := ""
	switch {
	case isDNSFailure(msg):
		hint = " (the host name does not resolve: check --host)"
	case errors.Is(err, broker.ErrGatewayUnreachable):
		hint = " (is TWS or IB Gateway running, with the API enabled on that port?)"
	case errors.Is(err, broker.ErrClientIDInUse):
		hint = " (another session uses this client id: pick another with --client-id)"
	case strings.Contains(msg, "(--call-timeout)"):
		hint = " (the gateway completed the handshake but did not answer the call)"
	case errors.Is(err, broker.ErrTimeout):
		hint = " (the gateway accepted the connection but did not complete the API handshake; check its API settings and trusted IPs)"
	case errors.Is(err, broker.ErrNotSubscribed):
		hint = " (no market data subscription for it: try --type delayed)"
	case errors.Is(err, broker.ErrNotFound):
		hint = " (no such instrument: check the symbol, --sec-type, --exchange and --currency)"
	case errors.Is(err, broker.ErrReadOnly) && broker.IBCode(err) != 0:
		hint = " (the gateway's API is read-only: clear \"Read-Only API\" in its API settings to trade)"
	case errors.Is(err, broker.ErrReadOnly):
		hint = " (the session is read-only: without --readonly, order and cancel connect read-write)"
	case errors.Is(err, robust.ErrCircuitOpen):
		hint = " (calls are refused for a while after repeated failures; see the log above)"
	case errors.Is(err, broker.ErrUnavailable):
		hint = " (the worker process died; see its log above)"
	}
	msg = strings.TrimPrefix(msg, "giving up after 1 attempt(s): ")
	return strings.ReplaceAll(msg, "\n", " ") + hint
}

// isDNSFailure reports a failed host name lookup (net.DNSError reads "lookup
// HOST[ on SERVER]: ..."). It reads the message, as a *net.DNSError does not
// survive a process boundary.
func isDNSFailure(msg string) bool {
	return strings.Contains(msg, ": lookup ")
}
