package broker

// Op names an operation of the Broker port. It is the one place that says which
// operations are safe to repeat: decorators that retry (package robust) retry only
// idempotent ones, and an operation that is not listed here is never retried.
type Op string

// The operations of the port. The string values double as command names on the wire.
const (
	OpConnect           Op = "connect"
	OpDisconnect        Op = "disconnect"
	OpAccounts          Op = "get_accounts"
	OpPositions         Op = "get_positions"
	OpAccountSummary    Op = "get_account_summary"
	OpPing              Op = "ping"
	OpAccountUpdates    Op = "get_account_updates"
	OpExecutions        Op = "get_executions"
	OpOpenOrders        Op = "get_open_orders"
	OpCompletedOrders   Op = "get_completed_orders"
	OpContractDetails   Op = "get_contract_details"
	OpSnapshot          Op = "get_snapshot"
	OpHistoricalBars    Op = "get_historical_bars"
	OpSetMarketDataType Op = "set_market_data_type"
	OpPlaceOrder        Op = "place_order"
	OpModifyOrder       Op = "modify_order"
	OpCancelOrder       Op = "cancel_order"
)

var idempotentOps = map[Op]bool{
	OpConnect:           true, // a failed connect leaves nothing behind; a retried one is a fresh attempt
	OpDisconnect:        true,
	OpAccounts:          true,
	OpPositions:         true,
	OpAccountSummary:    true,
	OpPing:              true,
	OpAccountUpdates:    true, // reading is safe to repeat
	OpExecutions:        true,
	OpOpenOrders:        true,
	OpCompletedOrders:   true,
	OpContractDetails:   true, // reading is safe
	OpSnapshot:          true,
	OpHistoricalBars:    true, // a repeat counts against IB's pacing; the adapter's queue keeps it within
	OpSetMarketDataType: true, // setting the same type twice is setting it once
	// OpPlaceOrder, OpModifyOrder and OpCancelOrder are deliberately absent:
	// never retried blindly. robust makes PlaceOrder exactly-once by its key
	// (reconciliation, docs/adr/0016), not by repeating it.
}

// Idempotent reports whether op may be repeated without changing its effect.
// Unknown operations are not idempotent.
func (op Op) Idempotent() bool { return idempotentOps[op] }

// Ops lists the operations of the port.
func Ops() []Op {
	return []Op{OpConnect, OpDisconnect, OpAccounts, OpPositions, OpAccountSummary, OpPing,
		OpAccountUpdates, OpExecutions, OpOpenOrders, OpCompletedOrders,
		OpContractDetails, OpSnapshot, OpHistoricalBars, OpSetMarketDataType,
		OpPlaceOrder, OpModifyOrder, OpCancelOrder}
}
