package goplugin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/brokerkit/brokerkit/broker"
)

// memBroker is a test-only in-memory broker.Broker. Tags passed to
// AccountSummary that start with "!" are commands, so that tests can steer a
// memBroker running in a child process:
//
//	!block           block until the call's context is done
//	!print           write to stdout three ways (fmt.Println, os.Stdout, raw fd 1)
//	!event           publish a notice event (code 2104)
//	!panic           panic
//	!positions=N     replace the positions with N generated ones
//	!err=CODE:IB     fail with broker.ErrorFromCode(CODE, "scripted", IB)
type memBroker struct {
	mu        sync.Mutex
	connected bool
	closed    bool
	positions []broker.Position
	err       error // returned by every call but Close when set (in-process tests)
	hub       broker.Hub
}

var memAccounts = []string{"DU111", "DU222"}

func newMemBroker() *memBroker { return &memBroker{positions: genPositions(3)} }

// genPositions returns n deterministic positions with exact, fractional and
// negative decimals.
func genPositions(n int) []broker.Position {
	out := make([]broker.Position, n)
	for i := range out {
		out[i] = broker.Position{
			Account: memAccounts[i%len(memAccounts)],
			Contract: broker.Contract{
				ConID: int64(265598 + i), Symbol: "SYM" + strconv.Itoa(i), SecType: "STK",
				Strike: broker.MustDecimal(fmt.Sprintf("%d.125", i)), Exchange: "NASDAQ",
				Currency: "USD", LocalSymbol: "SYM" + strconv.Itoa(i), TradingClass: "NMS",
			},
			Quantity: broker.MustDecimal(fmt.Sprintf("-%d.0000000000000000000001", i+1)),
			AvgCost:  broker.MustDecimal(fmt.Sprintf("%d.25", 100+i)),
		}
	}
	return out
}

func (m *memBroker) state(ctx context.Context, needConn bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return broker.ErrClosed
	case m.err != nil:
		return m.err
	case needConn && !m.connected:
		return broker.ErrNotConnected
	}
	return nil
}

func (m *memBroker) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if err := m.state(ctx, false); err != nil {
		return broker.ConnectInfo{}, err
	}
	if err := p.Validate(); err != nil {
		return broker.ConnectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.connected {
		return broker.ConnectInfo{}, broker.ErrAlreadyConnected
	}
	m.connected = true
	return broker.ConnectInfo{Accounts: append([]string(nil), memAccounts...), ServerVersion: 193}, nil
}

func (m *memBroker) Disconnect(ctx context.Context) error {
	if err := m.state(ctx, false); err != nil {
		return err
	}
	m.mu.Lock()
	m.connected = false
	m.mu.Unlock()
	return nil
}

func (m *memBroker) Accounts(ctx context.Context) ([]string, error) {
	if err := m.state(ctx, true); err != nil {
		return nil, err
	}
	return append([]string(nil), memAccounts...), nil
}

func (m *memBroker) Positions(ctx context.Context) ([]broker.Position, error) {
	if err := m.state(ctx, true); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]broker.Position(nil), m.positions...), nil
}

func (m *memBroker) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	if err := m.state(ctx, true); err != nil {
		return nil, err
	}
	var plain []string
	for _, tag := range tags {
		cmd, arg, _ := strings.Cut(tag, "=")
		switch cmd {
		case "!block":
			<-ctx.Done()
			return nil, fmt.Errorf("mem: blocked call ended: %w", ctx.Err())
		case "!print":
			fmt.Println("stray fmt.Println mid-call")
			_, _ = os.Stdout.WriteString("stray os.Stdout write without newline")
			_, _ = syscall.Write(1, []byte("stray raw fd 1 write\n"))
		case "!event":
			m.hub.Publish(broker.Event{Kind: broker.EventNotice, Code: 2104, Message: "Market data farm connection is OK:usfarm"})
		case "!panic":
			panic("mem: scripted panic")
		case "!positions":
			n, err := strconv.Atoi(arg)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", broker.ErrInvalidArgument, err)
			}
			m.mu.Lock()
			m.positions = genPositions(n)
			m.mu.Unlock()
		case "!err":
			code, ib, _ := strings.Cut(arg, ":")
			n, _ := strconv.ParseInt(ib, 10, 64)
			return nil, broker.ErrorFromCode(code, "scripted", n)
		default:
			plain = append(plain, tag)
		}
	}
	if len(tags) == 0 {
		plain = broker.DefaultSummaryTags
	}
	out := make([]broker.AccountSummary, 0, len(memAccounts))
	for _, a := range memAccounts {
		vals := make(map[string]broker.SummaryValue, len(plain))
		for i, tag := range plain {
			vals[tag] = broker.SummaryValue{Value: strconv.Itoa(1000*i) + ".05", Currency: "USD"}
		}
		out = append(out, broker.AccountSummary{Account: a, Values: vals})
	}
	return out, nil
}

func (m *memBroker) Ping(ctx context.Context) error { return m.state(ctx, true) }

func (m *memBroker) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	if err := m.state(ctx, false); err != nil && err != broker.ErrNotConnected {
		return nil, err
	}
	return m.hub.Subscribe(ctx)
}

func (m *memBroker) Close() error {
	m.mu.Lock()
	m.closed, m.connected = true, false
	m.mu.Unlock()
	m.hub.Close()
	return nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (loggers of both halves).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
