// Package testbroker is the in-memory broker.Broker the transports' tests serve,
// in process or in a re-executed child: a fakes.Memory whose AccountSummary
// tags steer it in one language, the same on both sides of any transport:
//
//	wait:NAME     block until release:NAME (or the call's context ends)
//	release:NAME  open gate NAME
//	block         block until the call's context ends (see WaitBlocked)
//	stdout:TEXT   print TEXT with fmt.Println and write "TEXT (fd 1)" to file descriptor 1
//	print         write to stdout three ways (fmt.Println, os.Stdout without a newline, raw fd 1)
//	ibcode:N      fail with an *broker.APIError of code N (request id 9)
//	err:CODE:N    fail with broker.ErrorFromCode(CODE, "scripted", N)
//	event:KIND    publish an event of that kind (IB code 2104); "event" alone publishes a notice
//	positions:N   serve N positions made by the Broker's generator from now on
//	ticks:SYM:N   push N quote ticks of stock SYM (fakes.Memory.SetQuote): tick i has
//	              bid i.01, ask i.02, last i.015, sizes i (TickQuote)
//	gap:SYM:WHY   send a gap marker with reason WHY to SYM's quote streams
//	quotestreams:N wait until N quote streams are live (or the call's context ends)
//	panic         panic
//	exit:N        exit the process with status N
//
// PlaceOrder runs its order's key as one such tag first (keys may hold ':'),
// so "exit:7", "block" or "err:unavailable:0" steer an order the same way;
// any other key places the order on fakes.Memory's order book.
//
// Other tags pass through to fakes.Memory. Connect refuses two client ids the
// way the gateway would: broker.IBCodeClientIDInUse (326) with an
// *broker.APIError of that code, and broker.IBCodeConnectFail (502) with
// broker.ErrGatewayUnreachable. SetErr fails every operation (in-process tests).
//
// It is a test helper: only tests and the test binaries' child modes import it.
package testbroker

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// BlockedNote is the line a Broker writes to its note writer (see SetBlockNote)
// when a "block" or "wait:" call starts blocking, so that a test on the far side
// of a process boundary can wait for the call to be in flight.
const BlockedNote = "testbroker: call blocked"

// Broker is the steerable in-memory broker.Broker; see the package doc.
type Broker struct {
	*fakes.Memory
	gen func(n int) []broker.Position

	mu      sync.Mutex
	err     error // returned by every operation when set
	gates   map[string]chan struct{}
	blocked int           // calls that have started blocking, ever
	changed chan struct{} // closed and replaced when blocked grows
	note    io.Writer
}

// New returns a Broker serving s; gen makes the positions of "positions:N" (nil:
// none).
func New(s fakes.Script, gen func(n int) []broker.Position) *Broker {
	b := &Broker{gen: gen, gates: map[string]chan struct{}{}, changed: make(chan struct{})}
	b.Memory = fakes.NewMemory(s, fakes.WithHook(b.hook))
	return b
}

// SetErr makes every operation fail with err (nil: succeed again).
func (b *Broker) SetErr(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

// SetBlockNote makes b write BlockedNote and a newline to w whenever a call
// starts blocking (w is typically os.Stderr in a child, which the host logs).
func (b *Broker) SetBlockNote(w io.Writer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.note = w
}

// SetPositions makes b serve ps.
func (b *Broker) SetPositions(ps []broker.Position) {
	s := b.Script()
	s.Positions = ps
	b.SetScript(s)
}

// WaitBlocked waits until n calls in all have started blocking ("block" or
// "wait:"), or ctx is done.
func (b *Broker) WaitBlocked(ctx context.Context, n int) error {
	for {
		b.mu.Lock()
		got, ch := b.blocked, b.changed
		b.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("testbroker: wait for %d blocked call(s) (have %d): %w", n, got, ctx.Err())
		}
	}
}

// Connect refuses client ids 326 and 502 (see the package doc) and otherwise
// connects the Memory.
func (b *Broker) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if err := p.Validate(); err != nil {
		return broker.ConnectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return broker.ConnectInfo{}, err
	}
	switch p.ClientID {
	case broker.IBCodeClientIDInUse:
		return broker.ConnectInfo{}, fmt.Errorf("connect: %w", &broker.APIError{ReqID: -1, Code: broker.IBCodeClientIDInUse, Message: "client id is already in use"})
	case broker.IBCodeConnectFail:
		return broker.ConnectInfo{}, fmt.Errorf("%w: dial %s: connection refused", broker.ErrGatewayUnreachable, p.Addr())
	}
	return b.Memory.Connect(ctx, p)
}

func (b *Broker) gate(name string) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	g, ok := b.gates[name]
	if !ok {
		g = make(chan struct{})
		b.gates[name] = g
	}
	return g
}

// startBlocking counts a call that starts blocking and announces it.
func (b *Broker) startBlocking() {
	b.mu.Lock()
	b.blocked++
	close(b.changed)
	b.changed = make(chan struct{})
	w := b.note
	b.mu.Unlock()
	if w != nil {
		_, _ = io.WriteString(w, BlockedNote+"\n")
	}
}

// hook fails with the error of SetErr, else runs the steering tags.
func (b *Broker) hook(ctx context.Context, _ broker.Op, tags []string) error {
	b.mu.Lock()
	err := b.err
	b.mu.Unlock()
	if err != nil {
		return err
	}
	for _, tag := range tags {
		verb, arg, _ := strings.Cut(tag, ":")
		switch verb {
		case "wait":
			g := b.gate(arg)
			b.startBlocking()
			select {
			case <-g:
			case <-ctx.Done():
				return ctx.Err()
			}
		case "release":
			g := b.gate(arg)
			b.mu.Lock()
			select {
			case <-g:
			default:
				close(g)
			}
			b.mu.Unlock()
		case "block":
			b.startBlocking()
			<-ctx.Done()
			return fmt.Errorf("testbroker: blocked call ended: %w", ctx.Err())
		case "stdout":
			fmt.Println(arg)
			_, _ = syscall.Write(1, []byte(arg+" (fd 1)\n"))
		case "print":
			fmt.Println("stray fmt.Println mid-call")
			_, _ = os.Stdout.WriteString("stray os.Stdout write without newline")
			_, _ = syscall.Write(1, []byte("stray raw fd 1 write\n"))
		case "ibcode":
			code, _ := strconv.ParseInt(arg, 10, 64)
			return &broker.APIError{ReqID: 9, Code: code, Message: "scripted error " + arg}
		case "err":
			code, ib, _ := strings.Cut(arg, ":")
			n, _ := strconv.ParseInt(ib, 10, 64)
			return broker.ErrorFromCode(code, "scripted", n)
		case "event":
			kind := broker.EventNotice
			if arg != "" {
				if err := kind.UnmarshalText([]byte(arg)); err != nil {
					return err
				}
			}
			b.Publish(broker.Event{Kind: kind, Code: broker.IBCodeMarketDataFarmOK, Message: fakes.NoticeText(broker.IBCodeMarketDataFarmOK)})
		case "positions":
			n, err := strconv.Atoi(arg)
			if err != nil {
				return fmt.Errorf("%w: %v", broker.ErrInvalidArgument, err)
			}
			var ps []broker.Position
			if b.gen != nil {
				ps = b.gen(n)
			}
			b.SetPositions(ps)
		case "ticks", "gap":
			sym, rest, _ := strings.Cut(arg, ":")
			if err := b.quotes(verb, broker.Contract{Symbol: sym, SecType: "STK"}, rest); err != nil {
				return err
			}
		case "quotestreams":
			n, err := strconv.Atoi(arg)
			if err != nil {
				return fmt.Errorf("%w: %v", broker.ErrInvalidArgument, err)
			}
			if err := b.WaitQuoteStreams(ctx, n); err != nil {
				return err
			}
		case "panic":
			panic("testbroker: scripted panic")
		case "exit":
			code, _ := strconv.Atoi(arg)
			os.Exit(code)
		}
	}
	return nil
}

// quotes runs the "ticks" and "gap" tags for contract c.
func (b *Broker) quotes(verb string, c broker.Contract, arg string) error {
	if verb == "gap" {
		_, err := b.QuoteGap(c, arg)
		return err
	}
	n, err := strconv.Atoi(arg)
	if err != nil {
		return fmt.Errorf("%w: %v", broker.ErrInvalidArgument, err)
	}
	for i := 1; i <= n; i++ {
		if _, err := b.SetQuote(c, TickQuote(i)); err != nil {
			return err
		}
	}
	return nil
}

// TickQuote is the quote of tick i of the "ticks" tag.
func TickQuote(i int) fakes.InstrumentQuote {
	n := strconv.Itoa(i)
	d := broker.MustDecimal
	return fakes.InstrumentQuote{Bid: d(n + ".01"), Ask: d(n + ".02"), Last: d(n + ".015"), BidSize: d(n), AskSize: d(n),
		LastSize: d(n), Volume: d(n + "00.5")}
}

// PlaceOrder implements broker.OrderTrader: r.Key steers it as a tag (see the
// package doc), then fakes.Memory places it.
func (b *Broker) PlaceOrder(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := b.hook(ctx, broker.OpPlaceOrder, []string{r.Key}); err != nil {
		return broker.PlacedOrder{}, err
	}
	return b.Memory.PlaceOrder(ctx, r)
}
