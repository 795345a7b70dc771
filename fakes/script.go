package fakes

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// Script is what the gateway serves: the answers to requests and the faults it
// injects. The zero Script is valid: versions up to 225, no accounts, next id 1.
//
// A Script loads from JSON (ParseScript, LoadScript) with decimals as JSON
// strings and durations as Go duration strings ("150ms"); see testdata/demo.json.
type Script struct {
	// ServerVersion is the highest server version the gateway offers, 0 meaning
	// DefaultServerVersion (225). It must be 0 or in MinServerVersion..MaxServerVersion.
	// The gateway answers min(ServerVersion, client's max) and refuses a client
	// whose range excludes that.
	ServerVersion int
	// Accounts are sent in MANAGED_ACCTS, joined with ",".
	Accounts []string
	// NextValidID is sent in NEXT_VALID_ID; 0 means 1.
	NextValidID int64
	// Positions are the POSITION_DATA rows, in order.
	Positions []broker.Position
	// Summary holds the ACCOUNT_SUMMARY rows: one entry per account, in order;
	// within an account, rows follow the order of the requested tags.
	Summary []broker.AccountSummary
	// Marks give the positions market prices and PnL for REQ_ACCT_DATA
	// (PORTFOLIO_VALUE), REQ_PNL and REQ_PNL_SINGLE; see Mark. Optional.
	Marks []Mark
	// Executions are what REQ_EXECUTIONS returns (filtered), in order. Optional.
	// The order simulator appends its fills (and moves Positions) live.
	Executions []Execution
	// Quotes are the scripted markets of the order simulator, one per symbol
	// (orders.go): an order for a symbol without one is rejected. Optional.
	Quotes []Quote
	// ReadOnlyAPI refuses every PLACE_ORDER with error 321, as a Gateway whose
	// API is configured read-only does.
	ReadOnlyAPI bool
	// Instruments are the contracts the gateway knows, for contract details,
	// market data and historical bars (contracts.go). Optional: without them
	// those requests get error 200.
	Instruments []Instrument
	// Pacing, if set, makes the gateway enforce IB's request limits on
	// connections accepted while this Script is current (pacing.go).
	Pacing *Pacing
	// Faults are injected on every connection accepted while this Script is current.
	Faults Faults
}

// Faults are the misbehaviours the gateway injects. The zero value injects none.
//
// "Requests" below count the framed messages a client sends after START_API
// (START_API itself is not counted), known or not, from 1.
type Faults struct {
	// StallHandshake: read the client's handshake and never reply; the socket
	// stays open until the client closes it or the Gateway closes.
	StallHandshake bool
	// CloseBeforeHandshake: read the client's handshake, then close without replying.
	CloseBeforeHandshake bool
	// ShortHandshake: answer the handshake with a frame holding only the version
	// field (no connection time), then keep the socket open.
	ShortHandshake bool
	// EmptyHandshake: answer the handshake with an empty frame (length 0), then
	// keep the socket open.
	EmptyHandshake bool
	// CloseAfterMessages > 0: close the connection once the gateway has sent this
	// many framed messages on it (the handshake reply counts as the first).
	CloseAfterMessages int
	// ReplyDelay is waited before answering each request that has an answer
	// (not before the handshake reply, the unprompted messages after START_API,
	// nor a cancel, which is not answered).
	ReplyDelay time.Duration
	// MalformedAfterRequests > 0: answer request number N with one malformed
	// message instead of its normal reply (see MalformedFields), then go on normally.
	MalformedAfterRequests int
	// MalformedFields, if set, is the malformed message to send. By default the
	// gateway sends the request's first normal reply message with a non-integer
	// ("not-an-int") where an integer belongs: CURRENT_TIME's time,
	// NEXT_VALID_ID's id, POSITION_DATA's conId, ACCOUNT_SUMMARY's reqId; for
	// any other request it sends "49","1","not-an-int". Beware that scmhub/ibapi
	// prints such a token to its process's stdout before ending the session.
	// The message always goes out as text, with a raw id from VersionRawIDs
	// (its first field must then be an integer message id, else the gateway
	// cannot encode it and closes the connection).
	MalformedFields []string
	// HalfOpenAfterRequests > 0: answer the first N requests, then keep the
	// socket open and reading but never send anything on it again (not even
	// notices, Notify or SendRaw).
	HalfOpenAfterRequests int
	// EmptyFrameRequest > 0: answer request number N with one empty frame
	// (length 0) instead of its normal reply, then go on normally.
	EmptyFrameRequest int
	// UnansweredRequest > 0: request number N gets no reply at all (a lost
	// CURRENT_TIME, say); later requests are answered normally.
	UnansweredRequest int
	// NoEndMarkerRequest > 0: request number N gets its rows but not its end
	// marker (POSITION_END, ACCOUNT_SUMMARY_END, ACCT_DOWNLOAD_END,
	// EXECUTION_DATA_END, OPEN_ORDER_END, COMPLETED_ORDERS_END,
	// POSITION_MULTI_END, ACCOUNT_UPDATE_MULTI_END); later requests are
	// answered normally.
	NoEndMarkerRequest int
	// EndlessPositions: answer REQ_POSITIONS with the script's rows (or one
	// built-in row if it has none) over and over, never POSITION_END, until the
	// client sends CANCEL_POSITIONS (or another REQ_POSITIONS, which restarts
	// the stream) or the connection ends. Requests read meanwhile are answered
	// between rows.
	EndlessPositions bool
	// Notices are sent on each connection, with id -1, each After its delay from
	// the gateway's reading START_API.
	Notices []TimedNotice
	// DropAfterOrder > 0: if the Nth PLACE_ORDER of the connection is a new
	// order the gateway accepts, keep it (it works and fills on) but reset the
	// connection before any ack (Gateway.DropNextOrder arms the same live).
	DropAfterOrder int
	// AckDelay is waited before acknowledging each new order (OPEN_ORDER and
	// ORDER_STATUS); the order works, and may fill, only after it.
	AckDelay time.Duration
	// RefuseClientIDs lists client ids refused at START_API with error 326, as if
	// another session held them.
	RefuseClientIDs []int64
	// Market holds the market data faults (marketdata_script.go).
	Market MarketFaults
}

// TimedNotice is an ERR_MSG (id -1) the gateway sends After a delay from START_API.
type TimedNotice struct {
	After   time.Duration
	Code    int64
	Message string // "" means NoticeText(Code)
}

// DefaultScript returns a realistic demo: two paper accounts, positions in
// stocks (one fractional, one short), an option, EUR.USD and a future, marks
// for three of them, two executions, a full account summary for both accounts, and
// the instruments of DefaultInstruments. testdata/demo.json holds the same Script.
func DefaultScript() Script {
	d := broker.MustDecimal
	const a1, a2 = "DU1234567", "DU7654321"
	return Script{
		ServerVersion: DefaultServerVersion,
		Accounts:      []string{a1, a2},
		NextValidID:   1,
		Positions: []broker.Position{
			{Account: a1, Contract: broker.Contract{ConID: 265598, Symbol: "AAPL", SecType: "STK", Exchange: "NASDAQ",
				Currency: "USD", LocalSymbol: "AAPL", TradingClass: "NMS"}, Quantity: d("100"), AvgCost: d("150.25")},
			{Account: a1, Contract: broker.Contract{ConID: 756733, Symbol: "SPY", SecType: "STK", Exchange: "ARCA",
				Currency: "USD", LocalSymbol: "SPY", TradingClass: "SPY"}, Quantity: d("0.5"), AvgCost: d("512.34")},
			{Account: a1, Contract: broker.Contract{ConID: 730264138, Symbol: "AAPL", SecType: "OPT", Expiry: "20261218",
				Strike: d("200"), Right: "C", Multiplier: "100", Exchange: "SMART", Currency: "USD",
				LocalSymbol: "AAPL  261218C00200000", TradingClass: "AAPL"}, Quantity: d("-2"), AvgCost: d("1523.5")},
			{Account: a2, Contract: broker.Contract{ConID: 12087792, Symbol: "EUR", SecType: "CASH", Exchange: "IDEALPRO",
				Currency: "USD", LocalSymbol: "EUR.USD", TradingClass: "EUR.USD"}, Quantity: d("25000"), AvgCost: d("1.08455")},
			{Account: a2, Contract: broker.Contract{ConID: 495512563, Symbol: "ES", SecType: "FUT", Expiry: "20261218",
				Multiplier: "50", Exchange: "CME", Currency: "USD", LocalSymbol: "ESZ6", TradingClass: "ES"},
				Quantity: d("1"), AvgCost: d("290012.5")},
			{Account: a2, Contract: broker.Contract{ConID: 272093, Symbol: "MSFT", SecType: "STK", Exchange: "NASDAQ",
				Currency: "USD", LocalSymbol: "MSFT", TradingClass: "NMS"}, Quantity: d("-10.25"), AvgCost: d("410.1")},
		},
		Marks: []Mark{
			{Account: a1, ConID: 265598, MarketPrice: d("189.5"), UnrealizedPnL: d("3925"), DailyPnL: d("-120.5")},
			{Account: a1, ConID: 756733, MarketPrice: d("530.12"), UnrealizedPnL: d("8.89"), RealizedPnL: d("12.5"),
				DailyPnL: d("1.05")},
			{Account: a2, ConID: 495512563, MarketPrice: d("5825.25"), UnrealizedPnL: d("1250"), DailyPnL: d("-612.5")},
		},
		Executions: []Execution{
			{ExecID: "0000e0d5.6745a3b1.01.01", OrderID: 11, PermID: 1804436631, ClientID: 1, Account: a1,
				Contract: broker.Contract{ConID: 265598, Symbol: "AAPL", SecType: "STK", Exchange: "NASDAQ",
					Currency: "USD", LocalSymbol: "AAPL", TradingClass: "NMS"},
				Time: "20261201 15:30:01 US/Eastern", Exchange: "ISLAND", Side: "BOT", Shares: d("100"),
				Price: d("150.25"), OrderRef: "demo", Commission: d("1.0035"), CommissionCurrency: "USD"},
			{ExecID: "0000e0d5.6745a3b2.01.01", OrderID: 12, PermID: 1804436632, ClientID: 1, Account: a1,
				Contract: broker.Contract{ConID: 756733, Symbol: "SPY", SecType: "STK", Exchange: "ARCA",
					Currency: "USD", LocalSymbol: "SPY", TradingClass: "SPY"},
				Time: "20261201 15:45:12 US/Eastern", Exchange: "ARCA", Side: "SLD", Shares: d("0.25"),
				Price: d("562.34"), Commission: d("0.35"), CommissionCurrency: "USD", RealizedPnL: d("12.5")},
		},
		Instruments: DefaultInstruments(),
		Summary: []broker.AccountSummary{
			{Account: a1, Values: summaryValues("INDIVIDUAL", "USD", map[string]string{
				"NetLiquidation": "100523.45", "TotalCashValue": "84012.07", "SettledCash": "84012.07",
				"AccruedCash": "12.5", "BuyingPower": "402048.28", "EquityWithLoanValue": "100523.45",
				"GrossPositionValue": "17779.52", "InitMarginReq": "4221.3", "MaintMarginReq": "3377.04",
				"AvailableFunds": "96302.15", "ExcessLiquidity": "97146.41", "Cushion": "0.966406", "Leverage": "0.18",
			})},
			{Account: a2, Values: summaryValues("INDIVIDUAL", "EUR", map[string]string{
				"NetLiquidation": "51234.5", "TotalCashValue": "-1200.75", "SettledCash": "-1200.75",
				"AccruedCash": "0", "BuyingPower": "153703.5", "EquityWithLoanValue": "51234.5",
				"GrossPositionValue": "312345.12", "InitMarginReq": "16845.25", "MaintMarginReq": "13476.2",
				"AvailableFunds": "34389.25", "ExcessLiquidity": "37758.3", "Cushion": "0.736961", "Leverage": "6.1",
			})},
		},
	}
}

// summaryValues builds a summary map: AccountType, Cushion and Leverage carry
// no currency, every other value carries cur.
func summaryValues(accountType, cur string, amounts map[string]string) map[string]broker.SummaryValue {
	m := map[string]broker.SummaryValue{"AccountType": {Value: accountType}}
	for tag, v := range amounts {
		c := cur
		if tag == "Cushion" || tag == "Leverage" {
			c = ""
		}
		m[tag] = broker.SummaryValue{Value: v, Currency: c}
	}
	return m
}

// Validate reports, wrapping broker.ErrInvalidArgument, what in s cannot be
// served: a server version out of range, NUL in any text (it would split a
// field), a comma in an account name, a multiplier that is not "" or a decimal,
// or a negative count or delay in Faults.
func (s Script) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: script: "+format, append([]any{broker.ErrInvalidArgument}, a...)...)
	}
	if s.ServerVersion != 0 && (s.ServerVersion < MinServerVersion || s.ServerVersion > MaxServerVersion) {
		return bad("server version %d not 0 or in %d..%d", s.ServerVersion, MinServerVersion, MaxServerVersion)
	}
	if s.NextValidID < 0 {
		return bad("negative next valid id %d", s.NextValidID)
	}
	for i, a := range s.Accounts {
		if a == "" || strings.ContainsAny(a, ",\x00") {
			return bad("account %d (%q) is empty or contains a comma or NUL", i, a)
		}
	}
	for i, p := range s.Positions {
		c := p.Contract
		for _, f := range []string{p.Account, c.Symbol, c.SecType, c.Expiry, c.Right, c.Multiplier, c.Exchange,
			c.Currency, c.LocalSymbol, c.TradingClass} {
			if strings.IndexByte(f, 0) >= 0 {
				return bad("position %d: text contains NUL", i)
			}
		}
		if c.Multiplier != "" {
			if _, err := broker.ParseDecimal(c.Multiplier); err != nil {
				return bad("position %d: multiplier %q is not a number", i, c.Multiplier)
			}
		}
	}
	for i, a := range s.Summary {
		if strings.IndexByte(a.Account, 0) >= 0 {
			return bad("summary %d: account contains NUL", i)
		}
		for tag, v := range a.Values {
			if tag == "" || strings.IndexByte(tag+v.Value+v.Currency, 0) >= 0 {
				return bad("summary %d: tag %q is empty or contains NUL", i, tag)
			}
		}
	}
	if err := s.validateAccountData(bad); err != nil {
		return err
	}
	if err := s.validateQuotes(bad); err != nil {
		return err
	}
	if err := s.validateMarket(bad); err != nil {
		return err
	}
	f := s.Faults
	if f.CloseAfterMessages < 0 || f.MalformedAfterRequests < 0 || f.HalfOpenAfterRequests < 0 || f.ReplyDelay < 0 ||
		f.UnansweredRequest < 0 || f.NoEndMarkerRequest < 0 || f.EmptyFrameRequest < 0 || f.DropAfterOrder < 0 ||
		f.AckDelay < 0 {
		return bad("negative fault count or delay")
	}
	if f.MalformedFields != nil {
		if _, err := AppendFrame(nil, f.MalformedFields...); err != nil {
			return bad("malformed fields cannot be framed: %v", err)
		}
	}
	for i, n := range f.Notices {
		if n.After < 0 || strings.IndexByte(n.Message, 0) >= 0 {
			return bad("notice %d: negative delay or NUL in message", i)
		}
	}
	return nil
}

// Clone returns a deep copy of s.
func (s Script) Clone() Script {
	s.Accounts = slices.Clone(s.Accounts)
	s.Positions = slices.Clone(s.Positions)
	if s.Summary != nil {
		sum := make([]broker.AccountSummary, len(s.Summary))
		for i, a := range s.Summary {
			sum[i] = broker.AccountSummary{Account: a.Account, Values: maps.Clone(a.Values)}
		}
		s.Summary = sum
	}
	s.Marks = slices.Clone(s.Marks)
	s.Executions = slices.Clone(s.Executions)
	s.Quotes = slices.Clone(s.Quotes)
	s.Faults.MalformedFields = slices.Clone(s.Faults.MalformedFields)
	s.Faults.Notices = slices.Clone(s.Faults.Notices)
	s.Faults.RefuseClientIDs = slices.Clone(s.Faults.RefuseClientIDs)
	s.Instruments = slices.Clone(s.Instruments)
	if s.Pacing != nil {
		p := *s.Pacing
		s.Pacing = &p
	}
	return s
}

func (s Script) serverVersion() int {
	if s.ServerVersion == 0 {
		return DefaultServerVersion
	}
	return s.ServerVersion
}

func (s Script) nextValidID() int64 {
	if s.NextValidID == 0 {
		return 1
	}
	return s.NextValidID
}
