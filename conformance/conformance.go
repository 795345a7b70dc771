package conformance

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// TB is the part of testing.TB the cases use. *testing.T implements it; so can
// a recorder that runs a case and inspects its failures. Fatalf must not return
// (testing.T calls runtime.Goexit; a recorder must do the same).
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
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
// Broker's Close with t.Cleanup.
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
	// Run skips TestChildCrash, naming this field, when Crash is nil.
	Crash func(t TB, b broker.Broker)

	// ServerVersion, if not 0, caps the server version of every case's fake
	// gateway (fakes.WithMaxServerVersion), to run the kit at one version of a
	// matrix; 0 means fakes.DefaultServerVersion, the newest. The Broker's
	// client must accept it: Connect is expected to report exactly this version.
	ServerVersion int
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
	CaseTimeout           = 30 * time.Second        // watchdog on a whole case
	EnvClientID           = 7                       // Env.ClientID
)

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
	return []Case{
		{"Connect", TestConnect},
		{"InvalidParams", TestInvalidParams},
		{"Positions", TestPositions},
		{"AccountSummary", TestAccountSummary},
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
		{"ChildCrash", TestChildCrash},
	}
}

// Run runs every case of Cases as a subtest of t, each against a fresh gateway
// and a fresh Broker from newBroker.
func Run(t *testing.T, newBroker func(t *testing.T, env Env) broker.Broker, f Features) {
	t.Helper()
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			if c.Name == "ChildCrash" && f.Crash == nil {
				t.Skip("Features.Crash is nil: this Broker has no child process to crash")
			}
			c.Test(t, func(_ TB, env Env) broker.Broker { return newBroker(t, env) }, f)
		})
	}
}

// NewEnv starts a fake gateway serving s on 127.0.0.1:0, closed by t.Cleanup,
// and returns its Env. Cases call it; it is exported for tests of single cases.
func NewEnv(t TB, s fakes.Script) Env {
	t.Helper()
	return newEnv(t, Features{}, s)
}

// newEnv is NewEnv with the gateway's version capped by f.ServerVersion.
func newEnv(t TB, f Features, s fakes.Script) Env {
	t.Helper()
	g, err := fakes.NewGateway(s, fakes.WithMaxServerVersion(f.ServerVersion))
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

// begin arms the case watchdog; the returned function disarms it.
func begin(t TB) func() {
	name := t.Name()
	timer := time.AfterFunc(CaseTimeout, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		panic(fmt.Sprintf("conformance: case %s hung for %v; goroutines:\n%s", name, CaseTimeout, buf))
	})
	return func() { timer.Stop() }
}

// callCtx is the context of one call: the case's context bounded by CallTimeout.
func callCtx(t TB) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), CallTimeout)
}
