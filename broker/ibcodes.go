package broker

// IB message codes: the numeric codes TWS and IB Gateway send in ERR_MSG (and
// that an APIError or an Event carries), plus the ones scmhub/ibapi raises on
// the client side. They are named once here; adapters, fakes, decorators and
// transports use these names rather than the numbers. The list holds the codes
// brokerkit acts upon or scripts; IB documents many more.
const (
	// IBCodeMaxRateExceeded: "Max rate of messages per second has been exceeded."
	IBCodeMaxRateExceeded = 100
	// IBCodeMaxTickers: "Max number of tickers has been reached."
	IBCodeMaxTickers = 101
	// IBCodeHistoricalDataError: "Historical market data Service error message."
	IBCodeHistoricalDataError = 162
	// IBCodeNoSecurityDefinition: "No security definition has been found for the request."
	IBCodeNoSecurityDefinition = 200
	// IBCodeValidationError: "Error validating request" (real TWS: for example a
	// request refused in read-only mode).
	IBCodeValidationError = 321
	// IBCodeClientIDInUse: the client id is already in use; the gateway closes
	// the socket shortly after. It is ErrClientIDInUse.
	IBCodeClientIDInUse = 326
	// IBCodeMarketDataNotSubscribed: "Requested market data is not subscribed."
	IBCodeMarketDataNotSubscribed = 354

	// IBCodeAlreadyConnected (scmhub, client side): "Already connected."
	IBCodeAlreadyConnected = 501
	// IBCodeConnectFail (scmhub, client side): "Couldn't connect to TWS." It is
	// ErrGatewayUnreachable.
	IBCodeConnectFail = 502
	// IBCodeNotConnected (scmhub, client side): "Not connected." It is ErrNotConnected.
	IBCodeNotConnected = 504
	// IBCodeClientFirst and IBCodeClientLast bound the codes scmhub raises
	// itself (with request id -1) rather than the gateway: 501 to 599.
	IBCodeClientFirst = 501
	IBCodeClientLast  = 599

	// IBCodeConnectivityLost: the gateway lost its connection to IB; the socket
	// to the gateway is fine and the gateway reconnects by itself. It is
	// ErrNotConnected, and EventConnectionLost.
	IBCodeConnectivityLost = 1100
	// IBCodeRestoredDataLost: connectivity restored, market data lost
	// (resubscribe). EventConnectionRestored.
	IBCodeRestoredDataLost = 1101
	// IBCodeRestoredDataMaintained: connectivity restored, data maintained.
	// EventConnectionRestored.
	IBCodeRestoredDataMaintained = 1102

	// IBCodeDelayedAvailable: "Requested market data is not subscribed.
	// Delayed market data is available." (an error: the request gets nothing).
	IBCodeDelayedAvailable = 10089
	// IBCodeDisplayingDelayed: "Displaying delayed market data." (a warning:
	// delayed data follows).
	IBCodeDisplayingDelayed = 10167
	// IBCodePartlyNotSubscribed: "Part of requested market data is not
	// subscribed. Subscription-independent ticks are still active." (a
	// warning: the ticks the session may see follow).
	IBCodePartlyNotSubscribed = 10090

	// IBCodeDuplicateOrderID: "Duplicate order id" (an order id reused; brokerkit
	// never reuses one).
	IBCodeDuplicateOrderID = 103
	// IBCodePriceIncrement: "The price does not conform to the minimum price
	// variation for this contract." It is ErrRejected.
	IBCodePriceIncrement = 110
	// IBCodeOrderRejected: "Order rejected - reason: ..." It is ErrRejected.
	IBCodeOrderRejected = 201
	// IBCodeOrderNotFound: CANCEL_ORDER for an order that does not exist.
	IBCodeOrderNotFound = 10147

	// IBCodeMarketDataFarmOK: "Market data farm connection is OK" (a notice).
	IBCodeMarketDataFarmOK = 2104
	// IBCodeHistDataFarmOK: "HMDS data farm connection is OK" (a notice).
	IBCodeHistDataFarmOK = 2106
	// IBCodeSecDefDataFarmOK: "Sec-def data farm connection is OK" (a notice).
	IBCodeSecDefDataFarmOK = 2158
)

// IsClientIBCode reports whether code is one scmhub raises on the client side
// (IBCodeClientFirst to IBCodeClientLast) rather than one the gateway sent.
func IsClientIBCode(code int64) bool {
	return code >= IBCodeClientFirst && code <= IBCodeClientLast
}
