package fakes

import (
	"strings"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// MarketFaults are the market data misbehaviours the gateway injects. The
// zero value injects none.
type MarketFaults struct {
	// MarketDataError != 0 answers every REQ_MKT_DATA with this error (354,
	// 10089, 101, 200, 321, ...); 10167 is a warning followed by delayed data,
	// 10090 one followed by the live data.
	MarketDataError int64
	// HistoricalError != 0 answers every REQ_HISTORICAL_DATA with this error (162, 200, 321, ...).
	HistoricalError int64
	// ContractError != 0 answers every REQ_CONTRACT_DATA with this error (200, 321, ...).
	ContractError int64
	// MaxTickers bounds the simultaneous streams of a connection (error 101
	// beyond it); 0 means 100, IB's default.
	MaxTickers int
	// FirstTickDelay holds back the first ticks of every market data request.
	FirstTickDelay time.Duration
	// StreamStopsAfterTicks > 0: each moving stream goes silent after this
	// many random-walk steps, without any message.
	StreamStopsAfterTicks int
}

type (
	jsonInstrument struct {
		Contract        jsonContract `json:"contract"`
		PrimaryExchange string       `json:"primary_exchange,omitempty"`
		LongName        string       `json:"long_name,omitempty"`
		MinTick         string       `json:"min_tick,omitempty"`
		TimeZone        string       `json:"time_zone,omitempty"`
		TradingHours    string       `json:"trading_hours,omitempty"`
		LiquidHours     string       `json:"liquid_hours,omitempty"`
		ValidExchanges  string       `json:"valid_exchanges,omitempty"`
		DelayedOnly     bool         `json:"delayed_only,omitempty"`
		Halted          bool         `json:"halted,omitempty"`
		Quote           jsonQuote    `json:"quote"`
		TicksPerSecond  float64      `json:"ticks_per_second,omitempty"`
		Seed            int64        `json:"seed,omitempty"`
		StepInBidSize   bool         `json:"step_in_bid_size,omitempty"`
	}
	jsonQuote struct {
		Bid      string `json:"bid,omitempty"`
		Ask      string `json:"ask,omitempty"`
		Last     string `json:"last,omitempty"`
		Close    string `json:"close,omitempty"`
		Open     string `json:"open,omitempty"`
		High     string `json:"high,omitempty"`
		Low      string `json:"low,omitempty"`
		BidSize  string `json:"bid_size,omitempty"`
		AskSize  string `json:"ask_size,omitempty"`
		LastSize string `json:"last_size,omitempty"`
		Volume   string `json:"volume,omitempty"`
	}
	jsonPacing struct {
		MessagesPerSecond  int    `json:"messages_per_second,omitempty"`
		HistoricalRequests int    `json:"historical_requests,omitempty"`
		HistoricalWindow   string `json:"historical_window,omitempty"`
		IdenticalWithin    string `json:"identical_within,omitempty"`
	}
	jsonMarketFaults struct {
		MarketDataError       int64  `json:"market_data_error,omitempty"`
		HistoricalError       int64  `json:"historical_error,omitempty"`
		ContractError         int64  `json:"contract_error,omitempty"`
		MaxTickers            int    `json:"max_tickers,omitempty"`
		FirstTickDelay        string `json:"first_tick_delay,omitempty"`
		StreamStopsAfterTicks int    `json:"stream_stops_after_ticks,omitempty"`
	}
)

func decText(d broker.Decimal) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

func marshalInstruments(ins []Instrument) []jsonInstrument {
	var out []jsonInstrument
	for _, in := range ins {
		q := in.Quote
		out = append(out, jsonInstrument{Contract: marshalContract(in.Contract), PrimaryExchange: in.PrimaryExchange,
			LongName: in.LongName, MinTick: decText(in.MinTick), TimeZone: in.TimeZone, TradingHours: in.TradingHours,
			LiquidHours: in.LiquidHours, ValidExchanges: in.ValidExchanges, DelayedOnly: in.DelayedOnly,
			Halted: in.Halted, TicksPerSecond: in.TicksPerSecond, Seed: in.Seed, StepInBidSize: in.StepInBidSize,
			Quote: jsonQuote{Bid: decText(q.Bid), Ask: decText(q.Ask), Last: decText(q.Last), Close: decText(q.Close),
				Open: decText(q.Open), High: decText(q.High), Low: decText(q.Low), BidSize: decText(q.BidSize),
				AskSize: decText(q.AskSize), LastSize: decText(q.LastSize), Volume: decText(q.Volume)}})
	}
	return out
}

func unmarshalInstruments(js []jsonInstrument, bad func(string, ...any) error) ([]Instrument, error) {
	var out []Instrument
	for i, j := range js {
		c := j.Contract
		in := Instrument{Contract: broker.Contract{ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Expiry: c.Expiry,
			Right: c.Right, Multiplier: c.Multiplier, Exchange: c.Exchange, Currency: c.Currency,
			LocalSymbol: c.LocalSymbol, TradingClass: c.TradingClass}, PrimaryExchange: j.PrimaryExchange,
			LongName: j.LongName, TimeZone: j.TimeZone, TradingHours: j.TradingHours, LiquidHours: j.LiquidHours,
			ValidExchanges: j.ValidExchanges, DelayedOnly: j.DelayedOnly, Halted: j.Halted,
			TicksPerSecond: j.TicksPerSecond, Seed: j.Seed, StepInBidSize: j.StepInBidSize}
		q := j.Quote
		for _, d := range []struct {
			name string
			s    string
			dst  *broker.Decimal
		}{{"contract.strike", c.Strike, &in.Contract.Strike}, {"min_tick", j.MinTick, &in.MinTick},
			{"quote.bid", q.Bid, &in.Quote.Bid}, {"quote.ask", q.Ask, &in.Quote.Ask}, {"quote.last", q.Last, &in.Quote.Last},
			{"quote.close", q.Close, &in.Quote.Close}, {"quote.open", q.Open, &in.Quote.Open},
			{"quote.high", q.High, &in.Quote.High}, {"quote.low", q.Low, &in.Quote.Low},
			{"quote.bid_size", q.BidSize, &in.Quote.BidSize}, {"quote.ask_size", q.AskSize, &in.Quote.AskSize},
			{"quote.last_size", q.LastSize, &in.Quote.LastSize}, {"quote.volume", q.Volume, &in.Quote.Volume}} {
			if d.s == "" {
				continue
			}
			v, err := broker.ParseDecimal(d.s)
			if err != nil {
				return nil, bad("instruments[%d].%s: %v", i, d.name, err)
			}
			*d.dst = v
		}
		out = append(out, in)
	}
	return out, nil
}

func marshalPacing(p *Pacing) *jsonPacing {
	if p == nil {
		return nil
	}
	j := &jsonPacing{MessagesPerSecond: p.MessagesPerSecond, HistoricalRequests: p.HistoricalRequests}
	if p.HistoricalWindow != 0 {
		j.HistoricalWindow = p.HistoricalWindow.String()
	}
	if p.IdenticalWithin != 0 {
		j.IdenticalWithin = p.IdenticalWithin.String()
	}
	return j
}

func unmarshalPacing(j *jsonPacing, bad func(string, ...any) error) (*Pacing, error) {
	if j == nil {
		return nil, nil
	}
	p := &Pacing{MessagesPerSecond: j.MessagesPerSecond, HistoricalRequests: j.HistoricalRequests}
	for _, d := range []struct {
		name, s string
		dst     *time.Duration
	}{{"historical_window", j.HistoricalWindow, &p.HistoricalWindow}, {"identical_within", j.IdenticalWithin, &p.IdenticalWithin}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return nil, bad("pacing.%s: %v", d.name, err)
		}
		*d.dst = v
	}
	return p, nil
}

func marshalMarketFaults(f MarketFaults) *jsonMarketFaults {
	if f == (MarketFaults{}) {
		return nil
	}
	j := &jsonMarketFaults{MarketDataError: f.MarketDataError, HistoricalError: f.HistoricalError,
		ContractError: f.ContractError, MaxTickers: f.MaxTickers, StreamStopsAfterTicks: f.StreamStopsAfterTicks}
	if f.FirstTickDelay != 0 {
		j.FirstTickDelay = f.FirstTickDelay.String()
	}
	return j
}

func unmarshalMarketFaults(j *jsonMarketFaults, bad func(string, ...any) error) (MarketFaults, error) {
	if j == nil {
		return MarketFaults{}, nil
	}
	f := MarketFaults{MarketDataError: j.MarketDataError, HistoricalError: j.HistoricalError,
		ContractError: j.ContractError, MaxTickers: j.MaxTickers, StreamStopsAfterTicks: j.StreamStopsAfterTicks}
	if j.FirstTickDelay != "" {
		d, err := time.ParseDuration(j.FirstTickDelay)
		if err != nil {
			return f, bad("faults.market.first_tick_delay: %v", err)
		}
		f.FirstTickDelay = d
	}
	return f, nil
}

// validateMarket checks the instruments, pacing and market faults.
func (s Script) validateMarket(bad func(string, ...any) error) error {
	for i, in := range s.Instruments {
		c := in.Contract
		if c.ConID <= 0 || c.Symbol == "" || c.SecType == "" {
			return bad("instrument %d: needs a positive con_id, a symbol and a sec_type", i)
		}
		all := strings.Join([]string{c.Symbol, c.SecType, c.Expiry, c.Right, c.Multiplier, c.Exchange, c.Currency,
			c.LocalSymbol, c.TradingClass, in.PrimaryExchange, in.LongName, in.TimeZone, in.TradingHours,
			in.LiquidHours, in.ValidExchanges}, "")
		if strings.IndexByte(all, 0) >= 0 {
			return bad("instrument %d: text contains NUL", i)
		}
		if in.MinTick.Rat().Sign() < 0 || in.TicksPerSecond < 0 || in.TicksPerSecond > 100000 {
			return bad("instrument %d: negative min tick or ticks per second not in 0..100000", i)
		}
		q := in.Quote
		if !q.Bid.IsZero() && !q.Ask.IsZero() && q.Bid.Rat().Cmp(q.Ask.Rat()) > 0 {
			return bad("instrument %d: bid %s above ask %s", i, q.Bid, q.Ask)
		}
	}
	if p := s.Pacing; p != nil && (p.MessagesPerSecond < 0 || p.HistoricalRequests < 0 || p.HistoricalWindow < 0 ||
		p.IdenticalWithin < 0) {
		return bad("negative pacing limit")
	}
	m := s.Faults.Market
	if m.MaxTickers < 0 || m.FirstTickDelay < 0 || m.StreamStopsAfterTicks < 0 {
		return bad("negative market fault")
	}
	return nil
}
