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
	"github.com/brokerkit/brokerkit/fakes"
)

// memBroker is an in-memory broker.Broker for the transport's own tests: a
// fakes.Memory serving two accounts, n positions and every default summary tag,
// whose Connect fails for client ids 326 (an *broker.APIError with that code)
// and 502 (ErrGatewayUnreachable), and whose AccountSummary understands control
// tags, so that tests can steer it from the far side of a pipe:
//
//	wait:NAME     block until release:NAME (or the call's context ends)
//	release:NAME  open gate NAME
//	stdout:TEXT   print TEXT to os.Stdout and write it to file descriptor 1
//	ibcode:N      fail with an *broker.APIError of code N
//	event:KIND    publish an event of that kind (IB code 2104)
//	panic         panic
//	exit:N        exit the process with status N
type memBroker struct {
	*fakes.Memory

	mu    sync.Mutex
	gates map[string]chan struct{}
}

func newMemBroker(nPositions int) *memBroker {
	accounts := []string{"DU111111", "DU222222"}
	var sums []broker.AccountSummary
	for i, a := range accounts {
		vals := map[string]broker.SummaryValue{}
		for _, tag := range broker.DefaultSummaryTags {
			vals[tag] = broker.SummaryValue{Value: strconv.Itoa(100000*(i+1)) + ".25", Currency: "USD"}
		}
		sums = append(sums, broker.AccountSummary{Account: a, Values: vals})
	}
	m := &memBroker{gates: make(map[string]chan struct{})}
	m.Memory = fakes.NewMemory(fakes.Script{ServerVersion: 176, Accounts: accounts,
		Positions: makePositions(nPositions), Summary: sums}, fakes.WithHook(m.hook))
	return m
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

// accounts and positions return what m serves, for assertions.
func (m *memBroker) accounts() []string           { return m.Script().Accounts }
func (m *memBroker) positions() []broker.Position { return m.Script().Positions }

func (m *memBroker) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
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
	return m.Memory.Connect(ctx, p)
}

func (m *memBroker) isConnected() bool { return m.Connected() }

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

// hook runs the control tags of an AccountSummary call.
func (m *memBroker) hook(ctx context.Context, _ broker.Op, tags []string) error {
	for _, tag := range tags {
		verb, arg, _ := strings.Cut(tag, ":")
		switch verb {
		case "wait":
			select {
			case <-m.gate(arg):
			case <-ctx.Done():
				return ctx.Err()
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
			return &broker.APIError{ReqID: 9, Code: code, Message: "scripted error " + arg}
		case "event":
			var kind broker.EventKind
			if err := kind.UnmarshalText([]byte(arg)); err != nil {
				return err
			}
			m.Publish(broker.Event{Kind: kind, Code: broker.IBCodeMarketDataFarmOK, Message: "Market data farm connection is OK:usfarm"})
		case "panic":
			panic("scripted panic")
		case "exit":
			code, _ := strconv.Atoi(arg)
			os.Exit(code)
		}
	}
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
