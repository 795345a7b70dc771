package robust

import (
	"context"

	"github.com/brokerkit/brokerkit/broker"
)

// Reconciliation: reading the gateway's state of one order, by key (before
// placing it again) or by id (after a modify or cancel whose outcome is
// unknown). Each read goes through this Broker's own OpenOrders,
// CompletedOrders and Executions, so it waits for the restored session and
// retries as those idempotent operations allow.

// findKey looks key up as an orderRef in the open orders, the completed
// orders and the executions of the current session, in that order.
func (b *Broker) findKey(ctx context.Context, key string) (broker.PlacedOrder, bool, error) {
	open, err := b.OpenOrders(ctx)
	if err != nil {
		return broker.PlacedOrder{}, false, err
	}
	for _, o := range open {
		if o.OrderRef == key {
			return placedFrom(o), true, nil
		}
	}
	done, err := b.CompletedOrders(ctx)
	if err != nil {
		return broker.PlacedOrder{}, false, err
	}
	var found *broker.Order
	for i, o := range done {
		if o.OrderRef == key {
			found = &done[i]
			break
		}
	}
	if found != nil && found.OrderID != 0 {
		return placedFrom(*found), true, nil
	}
	// IB's completed orders carry no order id: an execution of the order has it.
	execs, err := b.Executions(ctx, broker.ExecutionFilter{})
	if err != nil {
		if found != nil {
			return placedFrom(*found), true, nil
		}
		return broker.PlacedOrder{}, false, err
	}
	for _, e := range execs {
		if e.OrderRef == key || (found != nil && found.PermID != 0 && e.PermID == found.PermID) {
			if found != nil {
				po := placedFrom(*found)
				po.OrderID = e.OrderID
				return po, true, nil
			}
			return broker.PlacedOrder{OrderID: e.OrderID, PermID: e.PermID, Key: key}, true, nil
		}
	}
	if found != nil {
		return placedFrom(*found), true, nil
	}
	return broker.PlacedOrder{}, false, nil
}

func placedFrom(o broker.Order) broker.PlacedOrder {
	return broker.PlacedOrder{OrderID: o.OrderID, PermID: o.PermID, Key: o.OrderRef, Status: o.Status}
}

// orderState is what reconciliation learned of an order id.
type orderState int

const (
	orderAbsent   orderState = iota // not at the gateway for this client id
	orderWorking                    // open: it can still change
	orderTerminal                   // filled, cancelled or inactive
)

// findID reads the state of this client's order id: open (with its latest
// terms), terminal (in the completed orders or with executions) or absent.
// An order with neither fills nor an open entry is found among the completed
// orders only if this Broker placed it (IB's completed orders carry no order
// id); another is reported absent.
func (b *Broker) findID(ctx context.Context, id int64) (broker.Order, orderState, error) {
	cid := b.Stats().ClientID
	mine := func(client int64) bool { return client == cid || client == 0 }
	open, err := b.OpenOrders(ctx)
	if err != nil {
		return broker.Order{}, orderAbsent, err
	}
	for _, o := range open {
		if o.OrderID == id && mine(o.ClientID) {
			if broker.TerminalStatus(o.Status) {
				return o, orderTerminal, nil
			}
			return o, orderWorking, nil
		}
	}
	done, err := b.CompletedOrders(ctx)
	if err != nil {
		return broker.Order{}, orderAbsent, err
	}
	// IB's completed orders carry no order id: the perm id or key of an
	// order this Broker placed identifies it.
	po, known := b.keys.byID(id)
	for _, o := range done {
		switch {
		case o.OrderID == id && mine(o.ClientID),
			known && po.PermID != 0 && o.PermID == po.PermID,
			known && po.PermID == 0 && o.OrderRef == po.Key:
			return o, orderTerminal, nil
		}
	}
	execs, err := b.Executions(ctx, broker.ExecutionFilter{ClientID: cid})
	if err != nil {
		return broker.Order{}, orderAbsent, err
	}
	for _, e := range execs {
		if e.OrderID == id && mine(e.ClientID) {
			// Not open any more, and it traded: it was filled.
			return broker.Order{OrderID: id, PermID: e.PermID, ClientID: e.ClientID, OrderRef: e.OrderRef,
				Contract: e.Contract, Status: broker.StatusFilled, Filled: e.CumQty}, orderTerminal, nil
		}
	}
	return broker.Order{}, orderAbsent, nil
}
