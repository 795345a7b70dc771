package broker

// Contract identifies an instrument as the gateway describes it.
type Contract struct {
	ConID        int64
	Symbol       string
	SecType      string // STK, OPT, FUT, CASH, ...
	Expiry       string // lastTradeDateOrContractMonth
	Strike       Decimal
	Right        string // P or C for options
	Multiplier   string
	Exchange     string
	Currency     string
	LocalSymbol  string
	TradingClass string
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
