package broker

import (
	"fmt"
	"strconv"
	"time"
)

// Contract identifies an instrument as the gateway describes it.
//
// Its JSON form (the field tags) is the one the stdiojson protocol and the CLI's
// --json use for the read-side operations (docs/adr/0014).
type Contract struct {
	ConID        int64   `json:"con_id"`
	Symbol       string  `json:"symbol"`
	SecType      string  `json:"sec_type"` // STK, OPT, FUT, CASH, ...
	Expiry       string  `json:"expiry"`   // lastTradeDateOrContractMonth
	Strike       Decimal `json:"strike"`
	Right        string  `json:"right"` // P or C for options
	Multiplier   string  `json:"multiplier"`
	Exchange     string  `json:"exchange"`
	Currency     string  `json:"currency"`
	LocalSymbol  string  `json:"local_symbol"`
	TradingClass string  `json:"trading_class"`
}

// Position is one holding of one account.
type Position struct {
	Account  string
	Contract Contract
	Quantity Decimal // may be fractional or negative
	AvgCost  Decimal
}

// SummaryValue is one account summary value. Value is the gateway's text exactly:
// most tags are decimal amounts (use Decimal), some are words (AccountType).
type SummaryValue struct {
	Value    string
	Currency string
}

// Decimal parses Value as an exact decimal.
func (v SummaryValue) Decimal() (Decimal, error) { return ParseDecimal(v.Value) }

// AccountSummary holds the summary values of one account, keyed by tag.
type AccountSummary struct {
	Account string
	Values  map[string]SummaryValue
}

// DefaultSummaryTags are the tags AccountSummary requests when given none.
var DefaultSummaryTags = []string{
	"AccountType", "NetLiquidation", "TotalCashValue", "SettledCash", "AccruedCash",
	"BuyingPower", "EquityWithLoanValue", "GrossPositionValue", "InitMarginReq",
	"MaintMarginReq", "AvailableFunds", "ExcessLiquidity", "Cushion", "Leverage",
}

// ContractDetails is what the gateway knows about one instrument (CONTRACT_DATA).
type ContractDetails struct {
	Contract        Contract
	PrimaryExchange string
	LongName        string  // the gateway's text exactly, e.g. "APPLE INC"
	MinTick         Decimal // smallest price increment
	TimeZone        string  // e.g. "US/Eastern"
	TradingHours    string  // as TWS sends it: "20261202:0400-20261202:2000;..."
	LiquidHours     string
	ValidExchanges  string // comma-separated
}

// MarketDataType is the kind of market data the gateway sends (REQ_MARKET_DATA_TYPE).
type MarketDataType int

// The market data types IB defines; the numbers are IB's.
const (
	MarketDataLive          MarketDataType = 1 // real time
	MarketDataFrozen        MarketDataType = 2 // the last values recorded at the close
	MarketDataDelayed       MarketDataType = 3 // delayed 15-20 minutes
	MarketDataDelayedFrozen MarketDataType = 4 // delayed values recorded at the close
)

// String returns "live", "frozen", "delayed" or "delayed-frozen".
func (t MarketDataType) String() string {
	switch t {
	case MarketDataLive:
		return "live"
	case MarketDataFrozen:
		return "frozen"
	case MarketDataDelayed:
		return "delayed"
	case MarketDataDelayedFrozen:
		return "delayed-frozen"
	}
	return "MarketDataType(" + strconv.Itoa(int(t)) + ")"
}

// ParseMarketDataType reads String's names; anything else wraps ErrInvalidArgument.
func ParseMarketDataType(s string) (MarketDataType, error) {
	for t := MarketDataLive; t <= MarketDataDelayedFrozen; t++ {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("%w: market data type %q", ErrInvalidArgument, s)
}

// Valid reports whether t is one of IB's four types.
func (t MarketDataType) Valid() bool { return t >= MarketDataLive && t <= MarketDataDelayedFrozen }

// Quote is one snapshot of an instrument's top of book. Contract is the
// contract as the caller named it. A price or size the gateway did not send is
// zero (IsZero); exact decimals as the gateway sent them.
type Quote struct {
	Contract                   Contract
	Bid, Ask, Last             Decimal
	BidSize, AskSize, LastSize Decimal
	Open, High, Low, Close     Decimal
	Volume                     Decimal
	Halted                     bool
	DataType                   MarketDataType // the type the gateway announced for this snapshot
	LastTime                   time.Time      // the last trade's time (LAST_TIMESTAMP); zero if not sent
	Time                       time.Time      // when the snapshot completed
}

// BarsRequest says which historical bars HistoricalBars asks for, in IB's terms.
type BarsRequest struct {
	End        time.Time // the end of the window; zero means now
	Duration   string    // "N S|D|W|M|Y", e.g. "1 D"
	BarSize    string    // "1 secs" ... "1 day", e.g. "5 mins"
	WhatToShow string    // TRADES, MIDPOINT, BID, ASK, BID_ASK; "" means TRADES
	UseRTH     bool      // regular trading hours only
}

// Bar is one historical bar. Time is the bar's start.
type Bar struct {
	Time                   time.Time
	Open, High, Low, Close Decimal
	Volume, WAP            Decimal
	Count                  int64
}
