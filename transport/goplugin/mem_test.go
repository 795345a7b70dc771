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
	"github.com/brokerkit/brokerkit/fakes"
)

// memBroker is a test-only in-memory broker.Broker: a fakes.Memory whose hook
// fails every operation with err when it is set (in-process tests) and treats
// AccountSummary tags that start with "!" as commands, so that tests can steer
// a memBroker running in a child process:
//
//	!block           block until the call's context is done
//	!print           write to stdout three ways (fmt.Println, os.Stdout, raw fd 1)
//	!event           publish a notice event (code 2104)
//	!panic           panic
//	!positions=N     replace the positions with N generated ones
//	!err=CODE:IB     fail with broker.ErrorFromCode(CODE, "scripted", IB)
type memBroker struct {
	*fakes.Memory
	mu  sync.Mutex
	err error // returned by every operation when set (in-process tests)
}

var memAccounts = []string{"DU111", "DU222"}

func newMemBroker() *memBroker {
	var sums []broker.AccountSummary
	for _, a := range memAccounts {
		vals := make(map[string]broker.SummaryValue, len(broker.DefaultSummaryTags))
		for i, tag := range broker.DefaultSummaryTags {
			vals[tag] = broker.SummaryValue{Value: strconv.Itoa(1000*i) + ".05", Currency: "USD"}
		}
		sums = append(sums, broker.AccountSummary{Account: a, Values: vals})
	}
	m := &memBroker{}
	m.Memory = fakes.NewMemory(fakes.Script{ServerVersion: 193, Accounts: memAccounts, Positions: genPositions(3),
		Summary: sums}, fakes.WithHook(m.hook))
	return m
}

// setPositions makes m serve ps.
func (m *memBroker) setPositions(ps []broker.Position) {
	s := m.Script()
	s.Positions = ps
	m.SetScript(s)
}

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

func (m *memBroker) hook(ctx context.Context, _ broker.Op, tags []string) error {
	m.mu.Lock()
	err := m.err
	m.mu.Unlock()
	if err != nil {
		return err
	}
	for _, tag := range tags {
		cmd, arg, _ := strings.Cut(tag, "=")
		switch cmd {
		case "!block":
			<-ctx.Done()
			return fmt.Errorf("mem: blocked call ended: %w", ctx.Err())
		case "!print":
			fmt.Println("stray fmt.Println mid-call")
			_, _ = os.Stdout.WriteString("stray os.Stdout write without newline")
			_, _ = syscall.Write(1, []byte("stray raw fd 1 write\n"))
		case "!event":
			m.Publish(broker.Event{Kind: broker.EventNotice, Code: broker.IBCodeMarketDataFarmOK, Message: "Market data farm connection is OK:usfarm"})
		case "!panic":
			panic("mem: scripted panic")
		case "!positions":
			n, err := strconv.Atoi(arg)
			if err != nil {
				return fmt.Errorf("%w: %v", broker.ErrInvalidArgument, err)
			}
			m.setPositions(genPositions(n))
		case "!err":
			code, ib, _ := strings.Cut(arg, ":")
			n, _ := strconv.ParseInt(ib, 10, 64)
			return broker.ErrorFromCode(code, "scripted", n)
		}
	}
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
