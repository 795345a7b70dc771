package stdiojson

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
)

// memBroker is an in-memory broker.Broker for the transport's own tests. Its
// AccountSummary understands control tags, so that tests can steer it from the
// far side of a pipe:
//
//	wait:NAME     block until release:NAME (or the call's context ends)
//	release:NAME  open gate NAME
//	stdout:TEXT   print TEXT to os.Stdout and write it to file descriptor 1
//	ibcode:N      fail with an *broker.APIError of code N
//	event:KIND    publish an event of that kind (IB code 2104)
//	panic         panic
//	exit:N        exit the process with status N
type memBroker struct {
	accounts  []string
	positions []broker.Position

	mu        sync.Mutex
	connected bool
	closed    bool
	gates     map[string]chan struct{}
	hub       broker.Hub
}

func newMemBroker(nPositions int) *memBroker {
	return &memBroker{
		accounts:  []string{"DU111111", "DU222222"},
		positions: makePositions(nPositions),
		gates:     make(map[string]chan struct{}),
	}
}

// makePositions returns n deterministic positions with exact decimals that a
// float64 could not carry.
func makePositions(n int) []broker.Position {
	out := make([]broker.Position, n)
	for i := range out {
		out[i] = broker.Position{
			Account: []string{"DU111111", "DU222222"}[i%2],
			Contract: broker.Contract{
				ConID: int64(100000 + i), Symbol: "SYM" + strconv.Itoa(i), SecType: "STK",
				Exchange: "SMART", Currency: "USD", LocalSymbol: "SYM" + strconv.Itoa(i), TradingClass: "NMS",
			},
			Quantity: broker.MustDecimal(strconv.Itoa(i%997-400) + ".000000000000000000" + strconv.Itoa(i%10+1)),
			AvgCost:  broker.MustDecimal("123456789012345678." + strconv.Itoa(1000+i)),
		}
		if i%5 == 0 {
			out[i].Contract.SecType, out[i].Contract.Right = "OPT", "C"
			out[i].Contract.Strike = broker.MustDecimal("187.5")
			out[i].Contract.Expiry, out[i].Contract.Multiplier = "20270115", "100"
		}
	}
	return out
}

var _ broker.Broker = (*memBroker)(nil)

func (m *memBroker) check() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return broker.ErrClosed
	}
	if !m.connected {
		return broker.ErrNotConnected
	}
	return nil
}

func (m *memBroker) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if err := p.Validate(); err != nil {
		return broker.ConnectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return broker.ConnectInfo{}, err
	}
	switch p.ClientID {
	case 326:
		return broker.ConnectInfo{}, fmt.Errorf("connect: %w", &broker.APIError{ReqID: -1, Code: 326, Message: "client id is already in use"})
	case 502:
		return broker.ConnectInfo{}, fmt.Errorf("%w: dial %s: connection refused", broker.ErrGatewayUnreachable, p.Addr())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return broker.ConnectInfo{}, broker.ErrClosed
	}
	if m.connected {
		return broker.ConnectInfo{}, broker.ErrAlreadyConnected
	}
	m.connected = true
	return broker.ConnectInfo{Accounts: append([]string(nil), m.accounts...), ServerVersion: 176}, nil
}

func (m *memBroker) Disconnect(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return broker.ErrClosed
	}
	m.connected = false
	return nil
}

func (m *memBroker) isConnected() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.connected
}

func (m *memBroker) Accounts(ctx context.Context) ([]string, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	return append([]string(nil), m.accounts...), nil
}

func (m *memBroker) Positions(ctx context.Context) ([]broker.Position, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	return append([]broker.Position(nil), m.positions...), nil
}

func (m *memBroker) gate(name string) chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.gates[name]
	if !ok {
		g = make(chan struct{})
		m.gates[name] = g
	}
	return g
}

func (m *memBroker) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		tags = broker.DefaultSummaryTags
	}
	for _, tag := range tags {
		verb, arg, _ := strings.Cut(tag, ":")
		switch verb {
		case "wait":
			select {
			case <-m.gate(arg):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case "release":
			g := m.gate(arg)
			m.mu.Lock()
			select {
			case <-g:
			default:
				close(g)
			}
			m.mu.Unlock()
		case "stdout":
			fmt.Println(arg)
			syscall.Write(1, []byte(arg+" (fd 1)\n"))
		case "ibcode":
			code, _ := strconv.ParseInt(arg, 10, 64)
			return nil, &broker.APIError{ReqID: 9, Code: code, Message: "scripted error " + arg}
		case "event":
			var kind broker.EventKind
			if err := kind.UnmarshalText([]byte(arg)); err != nil {
				return nil, err
			}
			m.hub.Publish(broker.Event{Kind: kind, Code: 2104, Message: "Market data farm connection is OK:usfarm"})
		case "panic":
			panic("scripted panic")
		case "exit":
			code, _ := strconv.Atoi(arg)
			os.Exit(code)
		}
	}
	out := make([]broker.AccountSummary, 0, len(m.accounts))
	for i, a := range m.accounts {
		vals := map[string]broker.SummaryValue{}
		for _, tag := range tags {
			if strings.Contains(tag, ":") || tag == "panic" {
				continue
			}
			vals[tag] = broker.SummaryValue{Value: strconv.Itoa(100000*(i+1)) + ".25", Currency: "USD"}
		}
		out = append(out, broker.AccountSummary{Account: a, Values: vals})
	}
	return out, nil
}

func (m *memBroker) Ping(ctx context.Context) error { return m.check() }

func (m *memBroker) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	return m.hub.Subscribe(ctx)
}

func (m *memBroker) Close() error {
	m.mu.Lock()
	m.closed, m.connected = true, false
	m.mu.Unlock()
	m.hub.Close()
	return nil
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for capturing logs.
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

// testLogger returns a logger into a buffer that is printed if the test fails.
func testLogger(t interface {
	Cleanup(func())
	Failed() bool
	Logf(string, ...any)
}) (hclog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return hclog.New(&hclog.LoggerOptions{Name: "test", Output: buf, Level: hclog.Trace}), buf
}
