package bench

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/brokerkit/brokerkit/broker"
)

// memBroker is a broker.Broker that answers from memory at once, so that what a
// benchmark through a transport measures is the transport alone.
type memBroker struct {
	accounts  []string
	positions []broker.Position
	hub       broker.Hub

	mu        sync.Mutex
	connected bool
	closed    bool
}

var _ broker.Broker = (*memBroker)(nil)

func newMemBroker(nPositions int) *memBroker {
	return &memBroker{accounts: slices.Clone(benchAccounts), positions: benchPositions(nPositions)}
}

var benchAccounts = []string{"DU111111", "DU222222"}

// benchPositions returns n positions with the kind of decimals a gateway sends;
// every fifth is an option, with a strike, expiry and multiplier.
func benchPositions(n int) []broker.Position {
	out := make([]broker.Position, n)
	for i := range out {
		sym := "SYM" + strconv.Itoa(i)
		out[i] = broker.Position{
			Account: benchAccounts[i%len(benchAccounts)],
			Contract: broker.Contract{
				ConID: int64(100000 + i), Symbol: sym, SecType: "STK",
				Exchange: "SMART", Currency: "USD", LocalSymbol: sym, TradingClass: "NMS",
			},
			Quantity: broker.MustDecimal(strconv.Itoa(i%997-400) + ".5"),
			AvgCost:  broker.MustDecimal(strconv.Itoa(1000+i) + ".125"),
		}
		if i%5 == 0 {
			c := &out[i].Contract
			c.SecType, c.Right, c.Strike, c.Expiry, c.Multiplier = "OPT", "C", broker.MustDecimal("187.5"), "20271217", "100"
		}
	}
	return out
}

func (m *memBroker) check() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return broker.ErrClosed
	case !m.connected:
		return broker.ErrNotConnected
	}
	return nil
}

func (m *memBroker) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if err := p.Validate(); err != nil {
		return broker.ConnectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return broker.ConnectInfo{}, broker.ErrClosed
	case m.connected:
		return broker.ConnectInfo{}, broker.ErrAlreadyConnected
	}
	m.connected = true
	return broker.ConnectInfo{Accounts: slices.Clone(m.accounts), ServerVersion: 193}, nil
}

func (m *memBroker) Disconnect(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return broker.ErrClosed
	}
	m.connected = false
	return nil
}

func (m *memBroker) Accounts(context.Context) ([]string, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	return slices.Clone(m.accounts), nil
}

func (m *memBroker) Positions(context.Context) ([]broker.Position, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	return slices.Clone(m.positions), nil
}

func (m *memBroker) AccountSummary(context.Context, ...string) ([]broker.AccountSummary, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	return []broker.AccountSummary{}, nil
}

func (m *memBroker) Ping(context.Context) error { return m.check() }

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
