package broker

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Broker is a connection to an Interactive Brokers gateway (TWS or IB Gateway).
//
// A Broker is safe for concurrent use by multiple goroutines. Every method that
// can block takes a context first; when the context is done before the call
// completes, the call returns promptly with an error for which errors.Is reports
// ctx.Err() (context.Canceled or context.DeadlineExceeded), and the Broker stays
// usable for other and later calls.
//
// Lifecycle: a new Broker is disconnected. Connect establishes the session;
// Disconnect ends it and may be followed by another Connect. Close releases
// everything the Broker holds (sockets, goroutines, child processes); after Close
// every method returns an error for which errors.Is reports ErrClosed.
//
// Errors: implementations return errors that errors.Is matches against this
// package's sentinels as documented on each method. Errors reported by the
// gateway carry an *APIError with IB's numeric code.
type Broker interface {
	// Connect opens a session with the gateway described by p and returns the
	// managed accounts and the negotiated server version.
	//
	// Connect fails with ErrInvalidArgument if p is invalid, ErrAlreadyConnected if
	// a session is open, ErrGatewayUnreachable if nothing accepts the TCP
	// connection, ErrTimeout if the handshake does not complete within p.Timeout,
	// ErrHandshakeFailed if the gateway closes or answers nonsense during the
	// handshake, and ErrClientIDInUse if the gateway refuses p.ClientID (IB code 326).
	// A failed Connect leaves the Broker disconnected, holding no socket.
	Connect(ctx context.Context, p ConnectParams) (ConnectInfo, error)

	// Disconnect ends the session and closes the socket to the gateway. It is
	// idempotent: disconnecting a disconnected Broker returns nil.
	Disconnect(ctx context.Context) error

	// Accounts returns the accounts managed by this session, in the gateway's order.
	// It fails with ErrNotConnected if there is no session.
	Accounts(ctx context.Context) ([]string, error)

	// Positions returns every position of every managed account, in the order the
	// gateway reported them, once the gateway has signalled the end of the list.
	// It fails with ErrNotConnected if there is no session.
	Positions(ctx context.Context) ([]Position, error)

	// AccountSummary returns the summary values of every managed account for the
	// given tags (DefaultSummaryTags when none are given), one AccountSummary per
	// account in the order the gateway first named each account. It fails with
	// ErrNotConnected if there is no session.
	AccountSummary(ctx context.Context, tags ...string) ([]AccountSummary, error)

	// AccountUpdates returns the values and portfolio of one managed account
	// (REQ_ACCOUNT_UPDATES), once the gateway has signalled the end of its first
	// download; the subscription does not outlive the call. account "" names the
	// only managed account. It fails with ErrNotConnected if there is no session
	// and with ErrInvalidArgument if account is not one of Accounts (or is "" while
	// the session manages several).
	AccountUpdates(ctx context.Context, account string) (AccountUpdate, error)

	// Executions returns the executions of the current day that match f, in the
	// gateway's order, each with its commission report, once the gateway has
	// signalled the end of the list. It fails with ErrNotConnected if there is
	// no session.
	Executions(ctx context.Context, f ExecutionFilter) ([]Execution, error)

	// OpenOrders returns the open orders of this client id (REQ_OPEN_ORDERS), in
	// the gateway's order, once the gateway has signalled the end of the list.
	// Each order appears once, in its latest state; an order the gateway reports
	// finished while the list is coming is left out. It fails with
	// ErrNotConnected if there is no session.
	OpenOrders(ctx context.Context) ([]Order, error)

	// CompletedOrders returns the completed orders the gateway reports
	// (REQ_COMPLETED_ORDERS, API orders and others), in the gateway's order, once
	// it has signalled the end of the list. It fails with ErrNotConnected if
	// there is no session.
	CompletedOrders(ctx context.Context) ([]Order, error)

	// Ping makes one round trip to the gateway (REQ_CURRENT_TIME) and returns nil
	// if it answered. It fails with ErrNotConnected if there is no session.
	Ping(ctx context.Context) error

	// ContractDetails returns the details of every instrument that c matches, in
	// the gateway's order: an exact lookup when c has a ConID, else a search by
	// every field c sets (Symbol alone finds every security type and exchange).
	// It fails with ErrNotFound when nothing matches (IB code 200) and with
	// ErrInvalidArgument when c names no instrument (no ConID, Symbol nor
	// LocalSymbol).
	ContractDetails(ctx context.Context, c Contract) ([]ContractDetails, error)

	// Snapshot returns one snapshot of c's top of book, exact decimals as the
	// gateway sent them, of the market data type last set by SetMarketDataType
	// (live by default). It fails with ErrNotFound when c matches no instrument
	// or several (IB code 200) and with ErrNotSubscribed when the session may
	// not see c's market data (IB codes 354 and 10089; 10089 says delayed data
	// is available through SetMarketDataType(MarketDataDelayed)). Warning 10167
	// (delayed data shown instead) is no error: the Quote's DataType says which.
	// The gateway's refusal of more tickers (IB code 101) is ErrPacing.
	Snapshot(ctx context.Context, c Contract) (Quote, error)

	// HistoricalBars returns the bars of c over r's window, oldest first. It
	// fails with ErrInvalidArgument when r is malformed (no Duration or BarSize)
	// or the gateway refuses it (IB code 321), with ErrNotFound when c matches no
	// instrument or several (200), and with ErrPacing when the gateway's
	// historical pacing refuses it (162).
	HistoricalBars(ctx context.Context, c Contract, r BarsRequest) ([]Bar, error)

	// SetMarketDataType sets the market data type of the session's later
	// snapshots; a new session starts with MarketDataLive. It fails with
	// ErrInvalidArgument for a type other than IB's four.
	//
	// ContractDetails, Snapshot, HistoricalBars and SetMarketDataType fail with
	// ErrNotConnected if there is no session.
	SetMarketDataType(ctx context.Context, t MarketDataType) error

	// Subscribe returns a channel of events (connection lost and restored, gateway
	// notices). The channel is closed when ctx is done or the Broker is closed.
	// Delivery is best effort: a subscriber that does not keep up loses events
	// rather than slowing the Broker. Subscribe on a closed Broker fails with ErrClosed.
	Subscribe(ctx context.Context) (<-chan Event, error)

	// Close disconnects if needed and releases every resource. It is idempotent and
	// safe to call concurrently with other methods, which then fail with ErrClosed.
	Close() error
}

// Defaults applied by ConnectParams.WithDefaults.
const (
	DefaultHost           = "127.0.0.1"
	DefaultPort           = 4002 // IB Gateway, paper account
	DefaultConnectTimeout = 10 * time.Second
)

// ConnectParams says where and how to connect.
type ConnectParams struct {
	Host     string        // gateway host; DefaultHost if empty
	Port     int           // gateway API port; DefaultPort if zero
	ClientID int64         // API client id; must be unique among the gateway's live sessions
	ReadOnly bool          // ask for a read-only session
	Timeout  time.Duration // bound on TCP connect plus API handshake; DefaultConnectTimeout if zero
}

// WithDefaults returns p with zero fields replaced by their defaults.
func (p ConnectParams) WithDefaults() ConnectParams {
	if p.Host == "" {
		p.Host = DefaultHost
	}
	if p.Port == 0 {
		p.Port = DefaultPort
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultConnectTimeout
	}
	return p
}

// Validate reports, wrapping ErrInvalidArgument, what is wrong with p after defaults.
func (p ConnectParams) Validate() error {
	p = p.WithDefaults()
	switch {
	case p.Port < 1 || p.Port > 65535:
		return fmt.Errorf("%w: port %d out of range 1..65535", ErrInvalidArgument, p.Port)
	case p.ClientID < 0 || p.ClientID > 2147483647:
		return fmt.Errorf("%w: client id %d out of range 0..2147483647", ErrInvalidArgument, p.ClientID)
	case p.Timeout < 0:
		return fmt.Errorf("%w: negative timeout %v", ErrInvalidArgument, p.Timeout)
	}
	return nil
}

// Addr returns host:port after defaults.
func (p ConnectParams) Addr() string {
	p = p.WithDefaults()
	return net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
}

// ConnectInfo is what a successful Connect learned.
type ConnectInfo struct {
	Accounts      []string // managed accounts, in the gateway's order
	ServerVersion int      // negotiated TWS API server version
}
