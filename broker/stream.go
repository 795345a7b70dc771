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

// QuoteUpdate is one change of a streamed instrument's top of book.
type QuoteUpdate struct {
	// Quote is the whole top of book after the change (the newest state, as
	// Snapshot's Quote; Time is when the Broker received the change). In a
	// gap marker alone it is zero but for Contract.
	Quote Quote
	// Gap, when not empty, says why the stream was interrupted (the session
	// was lost, the worker died, the gateway lost market data: IB 1101).
	// Changes may have been missed; values from before the gap are stale and
	// none from the old session follows it. A stream that restarts sends the
	// gap first (possibly merged into the first fresh value).
	Gap string
	// Dropped counts the changes conflated away since the previous value the
	// subscriber took (see Conflate).
	Dropped int64
}

// QuoteStreamer is the capability of streaming quotes (REQ_MKT_DATA, top of
// book). Every Broker of this module implements it; find it with a type
// assertion. docs/adr/0017 describes the shape, which reuses ADR 0014's.
type QuoteStreamer interface {
	// SubscribeQuotes subscribes to c's top of book, of the market data type
	// last set by SetMarketDataType, and returns a channel of its changes: one
	// QuoteUpdate per change the gateway reports, conflated (Conflate) so that
	// a subscriber that does not keep up finds the newest state and a count of
	// what it missed, and the Broker is never slowed. The channel is closed
	// when ctx is done (and the subscription is cancelled on the wire), on
	// Close and when the session ends; a decorator that restores sessions
	// (robust) subscribes again instead, keeps the channel open and sends a
	// gap first. It fails like Snapshot (ErrNotFound, ErrNotSubscribed,
	// ErrPacing for IB 101) and with ErrNotConnected without a session.
	SubscribeQuotes(ctx context.Context, c Contract) (<-chan QuoteUpdate, error)
}

// Conflate delivers u on ch, a channel of capacity 1 with a single sender, as
// Latest does, but a value it replaces is not lost without trace: u.Dropped
// grows by the replaced value's Dropped plus one, and the replaced value's
// Gap is kept when u has none, so that no gap marker is ever conflated away.
// It never blocks.
func Conflate(ch chan QuoteUpdate, u QuoteUpdate) {
	select {
	case ch <- u:
		return
	default:
	}
	select {
	case old := <-ch:
		u.Dropped += old.Dropped + 1
		if u.Gap == "" {
			u.Gap = old.Gap
		}
	default:
	}
	select {
	case ch <- u:
	default: // unreachable with a single sender
	}
}
