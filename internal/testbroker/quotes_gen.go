package testbroker

import (
	"time"

	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
)

// QuoteUpdates draws the QuoteUpdates a transport must carry exactly:
// decimals of up to 50 digits, times to the nanosecond, counts up to 2^62,
// gaps, and gap markers (a quote that is zero but for its contract).
func QuoteUpdates() *rapid.Generator[broker.QuoteUpdate] {
	dec := rapid.Custom(func(t *rapid.T) broker.Decimal {
		return broker.MustDecimal(rapid.StringMatching(`-?[0-9]{1,25}(\.[0-9]{1,25})?`).Draw(t, "decimal"))
	})
	when := rapid.Custom(func(t *rapid.T) time.Time {
		return time.Unix(rapid.Int64Range(0, 4e9).Draw(t, "s"), rapid.Int64Range(0, 999_999_999).Draw(t, "ns")).UTC()
	})
	return rapid.Custom(func(t *rapid.T) broker.QuoteUpdate {
		c := broker.Contract{ConID: rapid.Int64().Draw(t, "conid"), Symbol: rapid.String().Draw(t, "symbol"),
			SecType: "OPT", Strike: dec.Draw(t, "strike"), Currency: rapid.String().Draw(t, "ccy")}
		u := broker.QuoteUpdate{Quote: broker.Quote{Contract: c}, Dropped: rapid.Int64Range(0, 1<<62).Draw(t, "dropped")}
		if rapid.Bool().Draw(t, "gap") {
			u.Gap = rapid.StringN(1, 40, -1).Draw(t, "why")
			if rapid.Bool().Draw(t, "marker") {
				return u
			}
		}
		q := &u.Quote
		for _, d := range []*broker.Decimal{&q.Bid, &q.Ask, &q.Last, &q.BidSize, &q.AskSize, &q.LastSize, &q.Open,
			&q.High, &q.Low, &q.Close, &q.Volume} {
			*d = dec.Draw(t, "field")
		}
		q.Halted = rapid.Bool().Draw(t, "halted")
		q.DataType = broker.MarketDataType(rapid.IntRange(1, 4).Draw(t, "type"))
		q.Time = when.Draw(t, "time")
		if rapid.Bool().Draw(t, "last time") {
			q.LastTime = when.Draw(t, "last_time")
		}
		return u
	})
}
