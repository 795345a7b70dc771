package fakes

import (
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes/internal/twspb"
)

// This file holds the scripted instruments and the contract requests:
// REQ_CONTRACT_DATA (CONTRACT_DATA, CONTRACT_DATA_END) and REQ_MATCHING_SYMBOLS
// (SYMBOL_SAMPLES). See docs/adr/0012-fake-market-data.md.

// Messages and versions of the contract and market data requests.
const (
	outTickPrice         = 1
	outTickSize          = 2
	outContractData      = 10
	outHistoricalData    = 17
	outTickGeneric       = 45
	outTickString        = 46
	outContractDataEnd   = 52
	outTickSnapshotEnd   = 57
	outMarketDataType    = 58
	outSymbolSamples     = 79
	outTickReqParams     = 81
	outHistoricalDataEnd = 108

	inReqMatchingSymbols = 81

	minVerSmartComponents = 114 // REQ_MKT_DATA gains regulatorySnapshot
	minVerMarketRules     = 126 // CONTRACT_DATA gains marketRuleIds
	minVerSizeRules       = 164 // CONTRACT_DATA drops its version field
	minVerBondIssuerID    = 176 // REQ_CONTRACT_DATA gains issuerId; SYMBOL_SAMPLES gains description, issuerId
	minVerLastTradeDate   = 182 // CONTRACT_DATA gains lastTradeDate
	minVerIneligibility   = 186 // CONTRACT_DATA gains ineligibility reasons
	minVerHistoricalEnd   = 196 // HISTORICAL_DATA_END is its own message

	versionProtobufContractData = 205 // MIN_SERVER_VER_PROTOBUF_CONTRACT_DATA
	versionProtobufMarketData   = 206 // MIN_SERVER_VER_PROTOBUF_MARKET_DATA
	versionProtobufHistorical   = 208 // MIN_SERVER_VER_PROTOBUF_HISTORICAL_DATA
	versionProtobufRest2        = 212 // MIN_SERVER_VER_PROTOBUF_REST_MESSAGES_2: matching symbols
)

// Instrument is one contract the gateway knows: what REQ_CONTRACT_DATA and
// REQ_MATCHING_SYMBOLS find, and what REQ_MKT_DATA and REQ_HISTORICAL_DATA
// quote. Contract.Exchange is the routing exchange ("SMART", "IDEALPRO").
type Instrument struct {
	Contract        broker.Contract
	PrimaryExchange string
	LongName        string
	MinTick         broker.Decimal // zero means 0.01
	TimeZone        string         // e.g. "US/Eastern"
	TradingHours    string         // as TWS sends it: "20261202:0400-20261202:2000;..."
	LiquidHours     string
	ValidExchanges  string // comma-separated
	// DelayedOnly: the session has no live subscription for it. Live or
	// frozen market data gets error 10089; delayed types get warning 10167
	// and delayed tick types, as IB does.
	DelayedOnly bool
	// Halted: the instrument is halted (TICK_GENERIC halted = 1).
	Halted bool
	Quote  InstrumentQuote
	// TicksPerSecond > 0 moves a streaming quote by a random walk seeded by
	// Seed (0: the con id), one tick of MinTick per step; 0 keeps it static.
	TicksPerSecond float64
	Seed           int64
	// StepInBidSize ends every random-walk step with a TICK_SIZE bid size
	// equal to the step's number (1, 2, ...), so that a subscriber's bid size
	// names the newest step it has seen: with WithTickHook, a latency
	// benchmark matches what it received to when the gateway wrote it.
	StepInBidSize bool
}

// InstrumentQuote is an instrument's top of book when a subscription starts.
type InstrumentQuote struct {
	Bid, Ask, Last, Close, Open, High, Low broker.Decimal
	BidSize, AskSize, LastSize, Volume     broker.Decimal
}

func (in Instrument) minTick() broker.Decimal {
	if in.MinTick.IsZero() {
		return broker.MustDecimal("0.01")
	}
	return in.MinTick
}

func (in Instrument) seed() uint64 {
	if in.Seed != 0 {
		return uint64(in.Seed)
	}
	return uint64(in.Contract.ConID)
}

// DefaultInstruments returns the instruments of DefaultScript: the stocks,
// option, future and currency pair of its positions, plus one delayed-only
// stock (IBM) and one halted stock (GME).
func DefaultInstruments() []Instrument {
	d := broker.MustDecimal
	const (
		usHours  = "20261202:0400-20261202:2000;20261203:0400-20261203:2000"
		usLiquid = "20261202:0930-20261202:1600;20261203:0930-20261203:1600"
		fxHours  = "20261201:1715-20261202:1700;20261202:1715-20261203:1700"
		stkExchs = "SMART,AMEX,NYSE,CBOE,ARCA,ISLAND,NASDAQ,BATS,IEX"
	)
	stk := func(conID int64, sym, primary, tc, name string, q InstrumentQuote, rate float64) Instrument {
		return Instrument{Contract: broker.Contract{ConID: conID, Symbol: sym, SecType: "STK", Exchange: "SMART",
			Currency: "USD", LocalSymbol: sym, TradingClass: tc}, PrimaryExchange: primary, LongName: name,
			MinTick: d("0.01"), TimeZone: "US/Eastern", TradingHours: usHours, LiquidHours: usLiquid,
			ValidExchanges: stkExchs, Quote: q, TicksPerSecond: rate}
	}
	q := func(bid, ask, last, closePx, bs, as, ls, vol string) InstrumentQuote {
		return InstrumentQuote{Bid: d(bid), Ask: d(ask), Last: d(last), Close: d(closePx), Open: d(closePx), High: d(ask),
			Low: d(bid), BidSize: d(bs), AskSize: d(as), LastSize: d(ls), Volume: d(vol)}
	}
	ibm := stk(8314, "IBM", "NYSE", "IBM", "INTL BUSINESS MACHINES CORP", q("241.1", "241.15", "241.12", "239.5", "200", "300", "100", "2104533"), 0)
	ibm.DelayedOnly = true
	gme := stk(36285627, "GME", "NYSE", "GME", "GAMESTOP CORP-CLASS A", q("22.1", "22.14", "22.12", "25.9", "500", "400", "10", "50123456"), 0)
	gme.Halted = true
	return []Instrument{
		stk(265598, "AAPL", "NASDAQ", "NMS", "APPLE INC", q("189.49", "189.51", "189.5", "188.2", "300", "200", "100", "45210034.5"), 10),
		stk(272093, "MSFT", "NASDAQ", "NMS", "MICROSOFT CORP", q("415.2", "415.25", "415.22", "412.8", "100", "100", "50", "18325001"), 5),
		stk(756733, "SPY", "ARCA", "SPY", "SPDR S&P 500 ETF TRUST", q("530.11", "530.13", "530.12", "528.01", "1200", "900", "300", "61234500"), 20),
		ibm, gme,
		{Contract: broker.Contract{ConID: 12087792, Symbol: "EUR", SecType: "CASH", Exchange: "IDEALPRO", Currency: "USD",
			LocalSymbol: "EUR.USD", TradingClass: "EUR.USD"}, LongName: "European Monetary Union Euro",
			MinTick: d("0.00005"), TimeZone: "US/Eastern", TradingHours: fxHours, LiquidHours: fxHours,
			ValidExchanges: "IDEALPRO", Quote: InstrumentQuote{Bid: d("1.0845"), Ask: d("1.08455"), Close: d("1.0832"),
				Open: d("1.0832"), High: d("1.0861"), Low: d("1.0821"), BidSize: d("5000000"), AskSize: d("3500000")},
			TicksPerSecond: 50},
		{Contract: broker.Contract{ConID: 495512563, Symbol: "ES", SecType: "FUT", Expiry: "20261218", Multiplier: "50",
			Exchange: "CME", Currency: "USD", LocalSymbol: "ESZ6", TradingClass: "ES"}, LongName: "E-mini S&P 500",
			MinTick: d("0.25"), TimeZone: "US/Central", TradingHours: fxHours, LiquidHours: usLiquid,
			ValidExchanges: "CME", Quote: q("5825", "5825.25", "5825.25", "5810.5", "12", "9", "1", "1023456")},
		{Contract: broker.Contract{ConID: 730264138, Symbol: "AAPL", SecType: "OPT", Expiry: "20261218", Strike: d("200"),
			Right: "C", Multiplier: "100", Exchange: "SMART", Currency: "USD", LocalSymbol: "AAPL  261218C00200000",
			TradingClass: "AAPL"}, LongName: "APPLE INC", MinTick: d("0.01"), TimeZone: "US/Eastern",
			TradingHours: usLiquid, LiquidHours: usLiquid, ValidExchanges: "SMART,CBOE,ISE,PHLX,AMEX,BOX",
			Quote: q("15.1", "15.3", "15.2", "14.85", "20", "31", "2", "1520")},
	}
}

// reqContract is the contract a request names, in the 12 text fields every
// contract request carries: conId, symbol, secType, expiry, strike, right,
// multiplier, exchange, primaryExchange, currency, localSymbol, tradingClass.
type reqContract struct {
	ConID                                                      int64
	Symbol, SecType, Expiry, Strike, Right, Multiplier         string
	Exchange, PrimaryExchange, Currency, LocalSymbol, TradingC string
}

func contractFieldsAt(f []string, i int) reqContract {
	return reqContract{ConID: intField(f, i, 0), Symbol: field(f, i+1), SecType: field(f, i+2), Expiry: field(f, i+3),
		Strike: field(f, i+4), Right: field(f, i+5), Multiplier: field(f, i+6), Exchange: field(f, i+7),
		PrimaryExchange: field(f, i+8), Currency: field(f, i+9), LocalSymbol: field(f, i+10), TradingC: field(f, i+11)}
}

// contractText is the inverse of contractFieldsAt, for protobuf requests.
func contractText(c *twspb.Contract) []string {
	strike := ""
	if c.Strike != nil && c.GetStrike() != 0 {
		strike = strconv.FormatFloat(c.GetStrike(), 'f', -1, 64)
	}
	mult := ""
	if c.Multiplier != nil && c.GetMultiplier() != 0 {
		mult = strconv.FormatFloat(c.GetMultiplier(), 'f', -1, 64)
	}
	return []string{optInt32(c.ConId), c.GetSymbol(), c.GetSecType(), c.GetLastTradeDateOrContractMonth(), strike,
		c.GetRight(), mult, c.GetExchange(), c.GetPrimaryExch(), c.GetCurrency(), c.GetLocalSymbol(),
		c.GetTradingClass()}
}

// empty reports whether the request names no contract at all (malformed).
func (r reqContract) empty() bool {
	return r.ConID <= 0 && r.Symbol == "" && r.LocalSymbol == ""
}

// matches reports whether in is what r asks for: by con id when it has one,
// else by every field it sets (case-insensitive; exchange "SMART" or one of
// the instrument's valid exchanges).
func (r reqContract) matches(in Instrument) bool {
	c := in.Contract
	if r.ConID > 0 {
		return r.ConID == c.ConID
	}
	eq := func(want, have string) bool { return want == "" || strings.EqualFold(want, have) }
	if r.Strike != "" && r.Strike != "0" {
		s, err := broker.ParseDecimal(r.Strike)
		if err != nil || s.Rat().Cmp(c.Strike.Rat()) != 0 {
			return false
		}
	}
	exch := r.Exchange == "" || strings.EqualFold(r.Exchange, c.Exchange) ||
		strings.Contains(","+strings.ToUpper(in.ValidExchanges)+",", ","+strings.ToUpper(r.Exchange)+",")
	mult := r.Multiplier == "" || r.Multiplier == "0" || strings.EqualFold(strings.TrimSuffix(r.Multiplier, ".0"), c.Multiplier)
	return eq(r.Symbol, c.Symbol) && eq(r.SecType, c.SecType) && eq(r.Expiry, c.Expiry) && eq(r.Right, c.Right) &&
		eq(r.Currency, c.Currency) && eq(r.LocalSymbol, c.LocalSymbol) && eq(r.TradingC, c.TradingClass) &&
		eq(r.PrimaryExchange, in.PrimaryExchange) && exch && mult
}

// find returns the instruments r matches, in script order.
func (s Script) find(r reqContract) []Instrument {
	var out []Instrument
	for _, in := range s.Instruments {
		if r.matches(in) {
			out = append(out, in)
		}
	}
	return out
}

// lookup returns the one instrument r names, or the error IB sends: 321 for
// no contract at all, 200 for none or several.
func (s Script) lookup(v int, reqID int64, r reqContract) (Instrument, []string) {
	if r.empty() {
		return Instrument{}, errorFields(v, reqID, CodeValidationError,
			"Error validating request.-'bN' : cause - Please enter a local symbol or an expiry")
	}
	found := s.find(r)
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Instrument{}, errorFields(v, reqID, CodeNoSecurityDefinition, textNoSecurityDefinition)
	default:
		return Instrument{}, errorFields(v, reqID, CodeNoSecurityDefinition,
			"The contract description specified for "+r.Symbol+" is ambiguous.")
	}
}

// replyContractData answers REQ_CONTRACT_DATA "9,8,reqId,contract(12),
// includeExpired,secIdType,secId[,issuerId]" with one CONTRACT_DATA per
// matching instrument and CONTRACT_DATA_END.
func replyContractData(sc Script, v int, fields []string) [][]string {
	reqID := intField(fields, 2, -1)
	if code := sc.Faults.Market.ContractError; code != 0 {
		return [][]string{errorFields(v, reqID, code, NoticeText(code))}
	}
	r := contractFieldsAt(fields, 3)
	if r.empty() {
		_, e := sc.lookup(v, reqID, r)
		return [][]string{e}
	}
	found := sc.find(r)
	if len(found) == 0 {
		return [][]string{errorFields(v, reqID, CodeNoSecurityDefinition, textNoSecurityDefinition)}
	}
	out := make([][]string, 0, len(found)+1)
	for _, in := range found {
		out = append(out, contractDataFields(v, reqID, in))
	}
	return append(out, []string{itoa(outContractDataEnd), "1", i64(reqID)})
}

// contractDataFields is CONTRACT_DATA at version v (scmhub's
// processContractDataMsg): version 8 below 164, none from it.
func contractDataFields(v int, reqID int64, in Instrument) []string {
	c := in.Contract
	f := []string{itoa(outContractData)}
	if v < minVerSizeRules {
		f = append(f, "8")
	}
	f = append(f, i64(reqID), c.Symbol, c.SecType, c.Expiry)
	if v >= minVerLastTradeDate {
		f = append(f, c.Expiry)
	}
	f = append(f, c.Strike.String(), c.Right, c.Exchange, c.Currency, c.LocalSymbol, marketName(in), c.TradingClass,
		i64(c.ConID), in.minTick().String())
	if v >= 110 && v < minVerSizeRules { // MIN_SERVER_VER_MD_SIZE_MULTIPLIER
		f = append(f, "1")
	}
	f = append(f, c.Multiplier, orderTypes(c.SecType), in.ValidExchanges, "1", "0", in.LongName, in.PrimaryExchange,
		contractMonth(c), industry(c), "", "", in.TimeZone, in.TradingHours, in.LiquidHours, "", "", "0")
	if v >= 121 { // MIN_SERVER_VER_AGG_GROUP
		f = append(f, "1")
	}
	if v >= 122 { // MIN_SERVER_VER_UNDERLYING_INFO
		f = append(f, "", "")
	}
	if v >= minVerMarketRules {
		f = append(f, "26")
	}
	if v >= 134 { // MIN_SERVER_VER_REAL_EXPIRATION_DATE
		f = append(f, c.Expiry)
	}
	if v >= 152 { // MIN_SERVER_VER_STOCK_TYPE
		f = append(f, stockType(c))
	}
	if v >= 163 && v < minVerSizeRules { // MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT
		f = append(f, "1")
	}
	if v >= minVerSizeRules {
		f = append(f, "1", "1", "1")
	}
	if v >= minVerIneligibility {
		f = append(f, "0")
	}
	return f
}

func marketName(in Instrument) string {
	if in.Contract.TradingClass != "" {
		return in.Contract.TradingClass
	}
	return in.Contract.Symbol
}

func orderTypes(secType string) string {
	if secType == "CASH" {
		return "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,GAT,GTC,GTD,GTT,IOC,LIT,LMT,MIT,MKT,NONALGO,OCA,STP,STPLMT,TRAIL,WHATIF"
	}
	return "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,GAT,GTC,GTD,GTT,IOC,LIT,LMT,LOC,MIT,MKT,MOC,MTL,NONALGO,OCA,OPG,REL,STP,STPLMT,TRAIL,TRAILLMT,VWAP,WHATIF"
}

func contractMonth(c broker.Contract) string {
	if len(c.Expiry) >= 6 {
		return c.Expiry[:6]
	}
	return ""
}

func industry(c broker.Contract) string {
	if c.SecType == "STK" {
		return "Technology"
	}
	return ""
}

func stockType(c broker.Contract) string {
	if c.SecType == "STK" {
		return "COMMON"
	}
	return ""
}

// contractDataProto: CONTRACT_DATA in its text layout from version 186
// (contractDataFields: no version field), as the protobuf ContractData.
func contractDataProto(f []string) (proto.Message, error) {
	id, err := parseInt32("req id", field(f, 1))
	if err != nil {
		return nil, err
	}
	conID, err := parseInt32("con id", field(f, 13))
	if err != nil {
		return nil, err
	}
	strike, err := parseFloat("strike", field(f, 6))
	if err != nil {
		return nil, err
	}
	mult, err := parseFloat("multiplier", field(f, 15))
	if err != nil {
		return nil, err
	}
	c := &twspb.Contract{ConId: conID, Symbol: optString(field(f, 2)), SecType: optString(field(f, 3)),
		LastTradeDateOrContractMonth: optString(field(f, 4)), LastTradeDate: optString(field(f, 5)), Strike: strike,
		Right: optString(field(f, 7)), Exchange: optString(field(f, 8)), Currency: optString(field(f, 9)),
		LocalSymbol: optString(field(f, 10)), TradingClass: optString(field(f, 12)), Multiplier: mult,
		PrimaryExch: optString(field(f, 21))}
	d := &twspb.ContractDetails{MarketName: optString(field(f, 11)), MinTick: optString(field(f, 14)),
		OrderTypes: optString(field(f, 16)), ValidExchanges: optString(field(f, 17)), PriceMagnifier: proto.Int32(1),
		UnderConId: proto.Int32(0), LongName: optString(field(f, 20)), ContractMonth: optString(field(f, 22)),
		Industry: optString(field(f, 23)), TimeZoneId: optString(field(f, 26)), TradingHours: optString(field(f, 27)),
		LiquidHours: optString(field(f, 28)), AggGroup: proto.Int32(1), MarketRuleIds: optString(field(f, 35)),
		RealExpirationDate: optString(field(f, 36)), StockType: optString(field(f, 37)), MinSize: optString(field(f, 38)),
		SizeIncrement: optString(field(f, 39)), SuggestedSizeIncrement: optString(field(f, 40))}
	return &twspb.ContractData{ReqId: id, Contract: c, ContractDetails: d}, nil
}

// replyMatchingSymbols answers REQ_MATCHING_SYMBOLS "81,reqId,pattern" with
// SYMBOL_SAMPLES: the instruments whose symbol starts with the pattern, or
// whose long name contains it (case-insensitive), one per con id.
func replyMatchingSymbols(sc Script, v int, fields []string) [][]string {
	reqID, pattern := field(fields, 1), strings.ToUpper(strings.TrimSpace(field(fields, 2)))
	if pattern == "" {
		return [][]string{errorFields(v, intField(fields, 1, -1), CodeValidationError,
			"Error validating request.-'bX' : cause - the pattern is empty")}
	}
	f := []string{itoa(outSymbolSamples), reqID, ""}
	n := 0
	for _, in := range sc.Instruments {
		c := in.Contract
		if !strings.HasPrefix(strings.ToUpper(c.Symbol), pattern) &&
			!strings.Contains(strings.ToUpper(in.LongName), pattern) {
			continue
		}
		n++
		f = append(f, i64(c.ConID), c.Symbol, c.SecType, primaryOr(in), c.Currency, "0")
		if v >= minVerBondIssuerID {
			f = append(f, in.LongName, "")
		}
	}
	f[2] = itoa(n)
	return [][]string{f}
}

func primaryOr(in Instrument) string {
	if in.PrimaryExchange != "" {
		return in.PrimaryExchange
	}
	return in.Contract.Exchange
}

// symbolSamplesProto: SYMBOL_SAMPLES from version 176 (replyMatchingSymbols).
func symbolSamplesProto(f []string) (proto.Message, error) {
	id, err := parseInt32("req id", field(f, 1))
	if err != nil {
		return nil, err
	}
	m := &twspb.SymbolSamples{ReqId: id}
	for i := 3; i+7 < len(f)+1; i += 8 {
		conID, err := parseInt32("con id", field(f, i))
		if err != nil {
			return nil, err
		}
		m.ContractDescriptions = append(m.ContractDescriptions, &twspb.ContractDescription{Contract: &twspb.Contract{
			ConId: conID, Symbol: optString(field(f, i+1)), SecType: optString(field(f, i+2)),
			PrimaryExch: optString(field(f, i+3)), Currency: optString(field(f, i+4)),
			Description: optString(field(f, i+6)), IssuerId: optString(field(f, i+7))}})
	}
	return m, nil
}
