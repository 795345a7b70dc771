package broker

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
