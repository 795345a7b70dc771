package broker

import "context"

// AccountStreamer is the capability of streaming one account's updates. It is
// optional: find it with a type assertion (b.(broker.AccountStreamer)); every
// Broker of this module implements it, and a transport whose far side lacks it
// fails the call with ErrUnsupported. docs/adr/0014 describes the shape, which
// market data and order status will reuse.
type AccountStreamer interface {
	// SubscribeAccountUpdates subscribes to one managed account
	// (REQ_ACCOUNT_UPDATES; account "" names the only one) and returns a channel
	// of its whole state: the first AccountUpdate once the gateway has finished
	// its first download, then a new one after every change the gateway
	// reports. Delivery keeps the newest state: a subscriber that does not keep
	// up finds the latest AccountUpdate, older ones are dropped, and the Broker
	// is never slowed. The channel is closed when ctx is done, when the Broker is
	// closed or when the session ends (a decorator that restores sessions, such
	// as robust, subscribes again instead and keeps the channel open). It fails
	// like AccountUpdates: ErrNotConnected without a session, ErrInvalidArgument
	// for an account the session does not manage, ErrClosed after Close.
	SubscribeAccountUpdates(ctx context.Context, account string) (<-chan AccountUpdate, error)
}

// Latest delivers u on ch, a channel of capacity 1 with a single sender,
// replacing the value waiting there if the receiver has not taken it: the
// delivery AccountStreamer promises. It never blocks.
func Latest[T any](ch chan T, u T) {
	select {
	case ch <- u:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	select {
	case ch <- u:
	default: // unreachable with a single sender
	}
}

// Clone returns a copy of u that shares no slice with it.
func (u AccountUpdate) Clone() AccountUpdate {
	u.Values = append([]AccountValue{}, u.Values...)
	u.Portfolio = append([]PortfolioItem{}, u.Portfolio...)
	return u
}
