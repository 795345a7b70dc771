package conformance

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// TB is the part of testing.TB the cases and factories use. *testing.T
// implements it, and so does the recorder of Record and Run. Fatalf and Skipf
// must not return (testing.T calls runtime.Goexit; a recorder must do the same).
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
	Cleanup(func())
	Context() context.Context
	Name() string
}

var _ TB = (*testing.T)(nil)

// Env is what a case hands the factory: its own fake gateway and ready-to-use
// connection parameters for it.
type Env struct {
	Gateway  *fakes.Gateway
	Addr     string // "127.0.0.1:PORT"
	Host     string
	Port     int
	ClientID int64
	// Params connect to Gateway as ClientID, with a Timeout of DefaultConnectTimeout.
	Params broker.ConnectParams
}

// Factory returns a new, disconnected Broker for env. It should register the
// Broker's Close with t.Cleanup. Run, Record and RunStateMachine all take a
// Factory; t is the case's TB (a recorder under Run and Record, the check's
// *rapid.T under RunStateMachine), so a factory must not assume a *testing.T.
type Factory func(t TB, env Env) broker.Broker

// Features declares the optional capabilities of the Broker under test. The
// zero value describes a plain Broker such as the in-process adapter: a lost
// session stays lost until the caller connects again.
type Features struct {
	// Reconnects says the Broker restores a lost session by itself (a
	// reconnecting decorator). TestGatewayDrop then expects calls to succeed
	// again after the gateway drops the connection, instead of failing with
	// broker.ErrNotConnected.
	Reconnects bool

	// TimeoutSlack is how much later than ConnectParams.Timeout a Connect to a
	// stalled gateway may return broker.ErrTimeout; 0 means DefaultTimeoutSlack.
	// Transports that cross a process boundary may need more.
	TimeoutSlack time.Duration

	// Crash, if set, says the Broker runs its client in a process that can
	// crash, and crashes it: it must kill that process the way a crash would
	// (SIGKILL; see KillPID) and return once the kill was sent. TestChildCrash
	// then expects, with Reconnects, calls to succeed again with the right data,
	// and without it, every call to fail at once with broker.ErrUnavailable.
	// TestChildCrash skips itself, naming this field, when Crash is nil.
	Crash func(t TB, b broker.Broker)

	// ServerVersion, if not 0, caps the server version of every case's fake
	// gateway (fakes.WithMaxServerVersion), to run the kit at one version of a
	// matrix; 0 means fakes.DefaultServerVersion, the newest. The Broker's
	// client must accept it: Connect is expected to report exactly this version.
	ServerVersion int

	// CaseTimeout is the watchdog of Run and Record on one case; 0 means
	// CaseTimeout. A slow transport may need more; a harness testing the
	// kit itself, less.
	CaseTimeout time.Duration
}

func (f Features) serverVersion() int {
	if f.ServerVersion != 0 {
		return f.ServerVersion
	}
	return fakes.DefaultServerVersion
}

// KillPID sends SIGKILL to pid, for Features.Crash hooks; it fails t if it cannot.
// Brokers whose client runs in a child usually report its pid (Pid() on the
// transports' clients, Stats().WorkerPID on robust).
func KillPID(t TB, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("conformance: no process to kill (pid %d)", pid)
	}
	p, err := os.FindProcess(pid)
	if err == nil {
		err = p.Kill()
	}
	if err != nil {
		t.Fatalf("conformance: kill %d: %v", pid, err)
	}
}

// Defaults of the kit.
const (
	DefaultConnectTimeout = 2 * time.Second         // Env.Params.Timeout
	DefaultTimeoutSlack   = 1500 * time.Millisecond // see Features.TimeoutSlack
	CallTimeout           = 5 * time.Second         // bound on any single call of a case
	CaseTimeout           = 30 * time.Second        // watchdog on a whole case (Run, Record)
	EnvClientID           = 7                       // Env.ClientID
)

func (f Features) caseTimeout() time.Duration {
	if f.CaseTimeout > 0 {
		return f.CaseTimeout
	}
	return CaseTimeout
}

func (f Features) slack() time.Duration {
	if f.TimeoutSlack > 0 {
		return f.TimeoutSlack
	}
	return DefaultTimeoutSlack
}

// Case is one property of the contract.
type Case struct {
	Name string
	Test func(t TB, newBroker Factory, f Features)
}

// Cases lists every case Run runs, in order.
func Cases() []Case {
	return append([]Case{
		{"Connect", TestConnect},
		{"InvalidParams", TestInvalidParams},
		{"Positions", TestPositions},
		{"AccountSummary", TestAccountSummary},
		{"AccountUpdates", TestAccountUpdates},
		{"AccountUpdatesStream", TestAccountUpdatesStream},
		{"Executions", TestExecutions},
		{"Orders", TestOrders},
		{"OrderPlace", TestOrderPlace},
		{"OrderLimitFill", TestOrderLimitFill},
		{"OrderCancel", TestOrderCancel},
		{"OrderReadOnly", TestOrderReadOnly},
		{"OrderKeyReuse", TestOrderKeyReuse},
		{"OrderReject", TestOrderReject},
		{"OrderCancelMid", TestOrderCancelMid},
		{"Ping", TestPing},
		{"NotConnected", TestNotConnected},
		{"Reconnect", TestReconnect},
		{"AlreadyConnected", TestAlreadyConnected},
		{"ClientIDInUse", TestClientIDInUse},
		{"StalledHandshake", TestStalledHandshake},
		{"CloseBeforeHandshake", TestCloseBeforeHandshake},
		{"Unreachable", TestUnreachable},
		{"Cancellation", TestCancellation},
		{"Concurrent", TestConcurrent},
		{"GatewayDrop", TestGatewayDrop},
		{"Notices", TestNotices},
		{"Close", TestClose},
		{"CancelledContext", TestCancelledContext},
		{"CancelMidCall", TestCancelMidCall},
		{"ExpiredDeadline", TestExpiredDeadline},
		{"SubscribeCancel", TestSubscribeCancel},
		{"CloseInFlight", TestCloseInFlight},
		{"SlowSubscriber", TestSlowSubscriber},
		{"ChildCrash", TestChildCrash},
		{"ContractDetails", TestContractDetails},
		{"Snapshot", TestSnapshot},
		{"HistoricalBars", TestHistoricalBars},
		{"MarketDataCancel", TestMarketDataCancel},
		{"Pacing", TestPacing},
	}, quoteStreamCases()...)
}

// NewEnv starts a fake gateway serving s on 127.0.0.1:0, closed by t.Cleanup,
// and returns its Env. Cases call it; it is exported for tests of single cases.
func NewEnv(t TB, s fakes.Script) Env {
	t.Helper()
	return newEnv(t, Features{}, s)
}

// newEnv is NewEnv with the gateway's version capped by f.ServerVersion.
// caseRecordLimits keep every request and connection of one case.
var caseRecordLimits = fakes.RecordLimits{Requests: 1 << 20, Bytes: 1 << 30, Closed: 1 << 16}

func newEnv(t TB, f Features, s fakes.Script) Env {
	t.Helper()
	// A case reads the gateway's records to see requests arrive: keep them all
	// (a case lives seconds), not the latest DefaultRecordLimits.
	g, err := fakes.NewGateway(s, fakes.WithMaxServerVersion(f.ServerVersion), fakes.WithRecordLimits(caseRecordLimits))
	if err != nil {
		t.Fatalf("conformance: start fake gateway: %v", err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return Env{
		Gateway:  g,
		Addr:     g.Addr(),
		Host:     g.Host(),
		Port:     g.Port(),
		ClientID: EnvClientID,
		Params:   broker.ConnectParams{Host: g.Host(), Port: g.Port(), ClientID: EnvClientID, Timeout: DefaultConnectTimeout},
	}
}

// callCtx is the context of one call: the case's context bounded by CallTimeout.
func callCtx(t TB) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), CallTimeout)
}
