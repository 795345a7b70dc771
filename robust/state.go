package robust

import (
	"fmt"
	"time"
)

// State is the connection state of a robust Broker.
type State int

// The connection states.
const (
	StateDisconnected State = iota // new, or after Disconnect or a failed Connect
	StateConnecting                // the user's Connect is in progress
	StateConnected                 // a session is open
	StateReconnecting              // the session was lost (or the gateway lost IB) and is being restored
	StateClosed                    // after Close
)

var stateNames = [...]string{"disconnected", "connecting", "connected", "reconnecting", "closed"}

// String returns disconnected, connecting, connected, reconnecting or closed.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText implements encoding.TextMarshaler with String.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Change is one notification of the state-change hook: the connection state or the
// breaker state (or both) changed.
type Change struct {
	Time        time.Time
	From, To    State        // connection state before and after
	BreakerFrom BreakerState // breaker state before
	Breaker     BreakerState // breaker state after
	Err         error        // the cause, when a failure caused the change
}

// Stats is a snapshot of a robust Broker's counters and state.
type Stats struct {
	State   State
	Breaker BreakerState

	Calls      int64 // calls of Connect, Accounts, Positions, AccountSummary and Ping
	Failures   int64 // attempts that failed for a reason counted by the breaker
	Retries    int64 // attempts after the first of a call
	Restarts   int64 // inner Brokers replaced by a fresh one from the Dialer
	Reconnects int64 // sessions re-established after a loss (on the same or a fresh inner Broker)

	LastError     error     // the most recent failure, nil if none
	LastErrorTime time.Time // when it happened

	ClientID  int64 // the client id of the current or last session
	WorkerPID int   // PID of the current inner Broker if it implements PIDer, else 0
}

// PIDer is implemented by inner Brokers that run in a child process; Stats reports
// the PID, so a runner can print it without robust importing any transport.
type PIDer interface {
	Pid() int
}

// Exiter is implemented by inner Brokers that can die on their own (a child
// process): the channel is closed when it has exited. A robust Broker watches it and
// replaces the inner Broker at once instead of waiting for a failed call or ping.
type Exiter interface {
	Exited() <-chan struct{}
}
