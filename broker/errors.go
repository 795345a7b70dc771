package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every Broker returns errors that errors.Is matches against these,
// in-process and across any transport.
var (
	ErrNotConnected       = errors.New("broker: not connected")
	ErrAlreadyConnected   = errors.New("broker: already connected")
	ErrTimeout            = errors.New("broker: timed out")
	ErrClientIDInUse      = errors.New("broker: client id already in use")
	ErrGatewayUnreachable = errors.New("broker: gateway unreachable")
	ErrHandshakeFailed    = errors.New("broker: API handshake failed")
	ErrUnavailable        = errors.New("broker: unavailable") // the worker or child process is dead or not answering
	ErrProtocol           = errors.New("broker: protocol violation")
	ErrClosed             = errors.New("broker: closed")
	ErrInvalidArgument    = errors.New("broker: invalid argument")
	ErrUnsupported        = errors.New("broker: unsupported operation")
	ErrNotFound           = errors.New("broker: not found")                           // IB code 200: no such instrument
	ErrNotSubscribed      = errors.New("broker: market data not subscribed")          // IB codes 354, 10089
	ErrPacing             = errors.New("broker: pacing limit of the gateway reached") // IB codes 100, 101, 162 (pacing)
	ErrReadOnly           = errors.New("broker: read-only session")                   // orders refused locally, or IB 321 in read-only mode
	ErrRejected           = errors.New("broker: order rejected")                      // IB codes 201, 110 and other refusals of an order
	// ErrOutcomeUnknown: an order (or cancel) was sent and its answer was lost
	// with the session or the caller's context; it may or may not have taken
	// effect. Reconcile by the order's key before sending it again.
	ErrOutcomeUnknown = errors.New("broker: outcome of the order unknown")
)

// APIError is an error the gateway reported with IB's numeric code
// (for example 326, client id in use; 504, not connected; 200, no security definition).
// errors.Is maps the codes IB documents onto this package's sentinels.
type APIError struct {
	ReqID   int64  // the request the error belongs to; -1 for a general notice
	Code    int64  // IB's error code
	Message string // IB's text
}

// Error returns IB's code, the request id and IB's text.
func (e *APIError) Error() string {
	return fmt.Sprintf("ib error %d (req %d): %s", e.Code, e.ReqID, e.Message)
}

// Is reports whether the IB code means target (see ibcodes.go): 326 is
// ErrClientIDInUse, 502 ErrGatewayUnreachable, 504 and 1100 ErrNotConnected,
// 200 ErrNotFound, 354 and 10089 ErrNotSubscribed, 100, 101 and 162 (a pacing
// violation; 162's other historical data errors are none) ErrPacing, 321
// ErrInvalidArgument (ErrReadOnly when its text says read-only mode), 201 and
// 110 ErrRejected, 10147 ErrNotFound.
func (e *APIError) Is(target error) bool {
	if e.Code == IBCodeHistoricalDataError && !strings.Contains(strings.ToLower(e.Message), "pacing") {
		return false // 162 is every historical data error; only its pacing violation is ErrPacing
	}
	if e.Code == IBCodeValidationError && strings.Contains(strings.ToLower(e.Message), "read-only") {
		return target == ErrReadOnly // 321 in read-only mode is the gateway's read-only refusal
	}
	s, ok := apiCodeSentinels[e.Code]
	return ok && s == target
}

var apiCodeSentinels = map[int64]error{
	IBCodeClientIDInUse:    ErrClientIDInUse,
	IBCodeConnectFail:      ErrGatewayUnreachable,
	IBCodeNotConnected:     ErrNotConnected,
	IBCodeConnectivityLost: ErrNotConnected,

	IBCodeNoSecurityDefinition:    ErrNotFound,
	IBCodeMarketDataNotSubscribed: ErrNotSubscribed,
	IBCodeDelayedAvailable:        ErrNotSubscribed,
	IBCodeMaxRateExceeded:         ErrPacing,
	IBCodeMaxTickers:              ErrPacing,
	IBCodeHistoricalDataError:     ErrPacing,
	IBCodeValidationError:         ErrInvalidArgument,
	IBCodeOrderRejected:           ErrRejected,
	IBCodePriceIncrement:          ErrRejected,
	IBCodeOrderNotFound:           ErrNotFound,
}

// wireCodes is the one table of stable error codes that transports put on the wire.
// Codes are never renamed or reused; new ones may be added.
var wireCodes = []struct {
	code string
	err  error
}{
	{CodeNotConnected, ErrNotConnected},
	{CodeAlreadyConnected, ErrAlreadyConnected},
	{CodeTimeout, ErrTimeout},
	{CodeClientIDInUse, ErrClientIDInUse},
	{CodeGatewayUnreachable, ErrGatewayUnreachable},
	{CodeHandshakeFailed, ErrHandshakeFailed},
	{CodeUnavailable, ErrUnavailable},
	{CodeProtocol, ErrProtocol},
	{CodeClosed, ErrClosed},
	{CodeInvalidArgument, ErrInvalidArgument},
	{CodeUnsupported, ErrUnsupported},
	{CodeNotFound, ErrNotFound},
	{CodeNotSubscribed, ErrNotSubscribed},
	{CodePacing, ErrPacing},
	{CodeReadOnly, ErrReadOnly},
	{CodeRejected, ErrRejected},
	{CodeOutcomeUnknown, ErrOutcomeUnknown},
	{CodeCanceled, context.Canceled},
	{CodeDeadlineExceeded, context.DeadlineExceeded},
}

// Wire codes of the sentinels (see ErrorCode): stable, never renamed or reused.
const (
	CodeNotConnected       = "not_connected"       // ErrNotConnected
	CodeAlreadyConnected   = "already_connected"   // ErrAlreadyConnected
	CodeTimeout            = "timeout"             // ErrTimeout
	CodeClientIDInUse      = "client_id_in_use"    // ErrClientIDInUse
	CodeGatewayUnreachable = "gateway_unreachable" // ErrGatewayUnreachable
	CodeHandshakeFailed    = "handshake_failed"    // ErrHandshakeFailed
	CodeUnavailable        = "unavailable"         // ErrUnavailable
	CodeProtocol           = "protocol"            // ErrProtocol
	CodeClosed             = "closed"              // ErrClosed
	CodeInvalidArgument    = "invalid_argument"    // ErrInvalidArgument
	CodeUnsupported        = "unsupported"         // ErrUnsupported
	CodeNotFound           = "not_found"           // ErrNotFound
	CodeNotSubscribed      = "not_subscribed"      // ErrNotSubscribed
	CodePacing             = "pacing"              // ErrPacing
	CodeReadOnly           = "read_only"           // ErrReadOnly
	CodeRejected           = "rejected"            // ErrRejected
	CodeOutcomeUnknown     = "outcome_unknown"     // ErrOutcomeUnknown
	CodeCanceled           = "canceled"            // context.Canceled
	CodeDeadlineExceeded   = "deadline_exceeded"   // context.DeadlineExceeded
)

// Error codes with no sentinel.
const (
	CodeAPIError = "api_error" // a gateway error whose IB code maps to no sentinel
	CodeInternal = "internal"  // anything else
)

// ErrorCodes lists every wire code ErrorCode can return, in a stable order.
func ErrorCodes() []string {
	out := make([]string, 0, len(wireCodes)+2)
	for _, c := range wireCodes {
		out = append(out, c.code)
	}
	return append(out, CodeAPIError, CodeInternal)
}

// ErrorCode returns the stable wire code of err: CodeOutcomeUnknown if it
// matches ErrOutcomeUnknown (an order sent and then a lost session or context
// must reach the far side as such, whatever else it wraps), else the code of
// the first sentinel it matches, else CodeAPIError if it holds an *APIError,
// else CodeInternal. ErrorCode(nil) is "".
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, ErrOutcomeUnknown) {
		return CodeOutcomeUnknown
	}
	for _, c := range wireCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	var api *APIError
	if errors.As(err, &api) {
		return CodeAPIError
	}
	return CodeInternal
}

// IBCode returns the IB code of the *APIError in err's chain, or 0.
func IBCode(err error) int64 {
	var api *APIError
	if errors.As(err, &api) {
		return api.Code
	}
	return 0
}

// ErrorFromCode rebuilds, on the far side of a transport, an error from its wire
// code, message and IB code (0 if none). The result matches the same sentinel
// with errors.Is as the original did and, if ibCode is not 0, holds an *APIError
// for errors.As. Its Error() is message. An unknown code yields an error matching
// ErrProtocol, so a newer peer's codes are never silently dropped.
func ErrorFromCode(code, message string, ibCode int64) error {
	e := &remoteError{msg: message}
	for _, c := range wireCodes {
		if c.code == code {
			e.errs = append(e.errs, c.err)
		}
	}
	if ibCode != 0 {
		e.errs = append(e.errs, &APIError{ReqID: -1, Code: ibCode, Message: message})
	}
	if len(e.errs) == 0 && code != CodeAPIError && code != CodeInternal {
		e.errs = append(e.errs, ErrProtocol)
		e.msg = fmt.Sprintf("unknown error code %q: %s", code, message)
	}
	if e.msg == "" {
		e.msg = code
	}
	return e
}

type remoteError struct {
	msg  string
	errs []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.errs }
