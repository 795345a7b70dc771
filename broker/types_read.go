package broker

// Types of the read-side operations (AccountUpdates, Executions, OpenOrders,
// CompletedOrders). Every decimal is an exact Decimal; the JSON tags are the
// shape the stdiojson protocol and the CLI's --json carry (docs/adr/0014), with
// decimals as JSON strings.

// AccountValue is one ACCT_VALUE row: a key such as "NetLiquidation" or
// "CashBalance", its value as the gateway's text, and its currency. A key may
// appear once per currency.
type AccountValue struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

// PortfolioItem is one PORTFOLIO_VALUE row: a position with its market side.
type PortfolioItem struct {
	Account       string   `json:"account"`
	Contract      Contract `json:"contract"`
	Position      Decimal  `json:"position"`
	MarketPrice   Decimal  `json:"market_price"`
	MarketValue   Decimal  `json:"market_value"`
	AvgCost       Decimal  `json:"avg_cost"`
	UnrealizedPnL Decimal  `json:"unrealized_pnl"`
	RealizedPnL   Decimal  `json:"realized_pnl"`
}

// AccountUpdate is the state of one account as REQ_ACCOUNT_UPDATES reports it:
// its values and portfolio, each in the order the gateway first sent it (a
// later row for the same key and currency, or the same contract, replaces the
// earlier one), and the gateway's last update time ("15:04").
type AccountUpdate struct {
	Account    string          `json:"account"`
	Values     []AccountValue  `json:"values"`
	Portfolio  []PortfolioItem `json:"portfolio"`
	UpdateTime string          `json:"update_time"`
}

// ExecutionFilter selects executions as IB's ExecutionFilter does: a zero
// field matches any execution. Since is "yyyymmdd hh:mm:ss" (or with "-" in
// place of the space) and keeps executions at or after it.
type ExecutionFilter struct {
	ClientID int64  `json:"client_id,omitempty"`
	Account  string `json:"account,omitempty"`
	Since    string `json:"since,omitempty"`
	Symbol   string `json:"symbol,omitempty"`
	SecType  string `json:"sec_type,omitempty"`
	Exchange string `json:"exchange,omitempty"`
	Side     string `json:"side,omitempty"` // BUY or SELL, as IB's filter takes it
}

// Execution is one fill with its commission report. Commission and
// CommissionCurrency are zero when the gateway sent no COMMISSION_REPORT for it
// before the end of the list; RealizedPnL is zero when the gateway reports none
// (an opening fill).
type Execution struct {
	ExecID             string   `json:"exec_id"`
	OrderID            int64    `json:"order_id"`
	PermID             int64    `json:"perm_id"`
	ClientID           int64    `json:"client_id"`
	Account            string   `json:"account"`
	Contract           Contract `json:"contract"`
	Time               string   `json:"time"` // as the gateway sends it, e.g. "20261201 15:04:05 US/Eastern"
	Exchange           string   `json:"exchange"`
	Side               string   `json:"side"` // BOT or SLD
	Shares             Decimal  `json:"shares"`
	Price              Decimal  `json:"price"`
	CumQty             Decimal  `json:"cum_qty"`
	AvgPrice           Decimal  `json:"avg_price"`
	OrderRef           string   `json:"order_ref"`
	Commission         Decimal  `json:"commission"`
	CommissionCurrency string   `json:"commission_currency"`
	RealizedPnL        Decimal  `json:"realized_pnl"`
}

// Order is a read-only view of one open or completed order. Prices the order
// does not have (a market order's limit price) are zero.
type Order struct {
	OrderID       int64    `json:"order_id"`
	PermID        int64    `json:"perm_id"`
	ClientID      int64    `json:"client_id"`
	Account       string   `json:"account"`
	Contract      Contract `json:"contract"`
	Action        string   `json:"action"`     // BUY or SELL
	OrderType     string   `json:"order_type"` // LMT, MKT, STP, ...
	TotalQuantity Decimal  `json:"total_quantity"`
	LimitPrice    Decimal  `json:"limit_price"`
	AuxPrice      Decimal  `json:"aux_price"`
	TIF           string   `json:"tif"`
	OrderRef      string   `json:"order_ref"`
	Status        string   `json:"status"` // Submitted, Filled, Cancelled, ...
	Filled        Decimal  `json:"filled"`
}
