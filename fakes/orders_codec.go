package fakes

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes/internal/twspb"
)

// This file holds the wire layouts of the order simulator (orders.go): the
// PLACE_ORDER request in both forms, and OPEN_ORDER, ORDER_STATUS and
// COMPLETED_ORDER in the text layout of each server version, mirroring
// scmhub/ibapi's client.go PlaceOrder and order_decoder.go field by field.

// Server versions at which the order messages change (scmhub's names).
const (
	minVerMarketCapPrice   = 131 // ORDER_STATUS drops its version field, gains mktCapPrice
	minVerPeggedToBench    = 102 // OPEN_ORDER gains conditions and adjusted-order fields
	minVerSoftDollarTier   = 106
	minVerCashQty          = 111
	minVerAutoPriceHedge   = 141
	minVerWhatIfExtFields  = 142
	minVerDPegOrders       = 148
	minVerPriceMgmtAlgo    = 151
	minVerDuration         = 158
	minVerPostToAts        = 160
	minVerAutoCancelParent = 162
	minVerPegBestPegMid    = 170
	minVerFAProfileDesupp  = 177
	minVerCustomerAccount  = 183
	minVerProfessionalCust = 184
	minVerBondAccruedInt   = 185
	minVerIncludeOvernight = 189
	minVerCMETagsOpenOrder = 193
	minVerFullOrderPreview = 195
	minVerImbalanceOnly    = 199
	// VersionProtobufOrders: PLACE_ORDER and CANCEL_ORDER come as protobuf
	// (MIN_SERVER_VER_PROTOBUF_PLACE_ORDER).
	VersionProtobufOrders = 203
)

// Order messages the gateway sends.
const (
	outOrderStatus    = 3
	outOpenOrder      = 5
	outCompletedOrder = 101
)

// placeOrderOffset is where PLACE_ORDER's order id sits at version v: after
// the message id, and after a version field below 145.
func placeOrderOffset(v int) int {
	if v < minVerOrderContainer {
		return 2
	}
	return 1
}

// placeOrderMinFields is how many fields a text PLACE_ORDER needs for the
// simulator to read it (through the hidden flag).
func placeOrderMinFields(v int) int { return placeOrderOffset(v) + 34 }

// orderRequest is what the simulator reads from PLACE_ORDER.
type orderRequest struct {
	id                   int64
	contract             broker.Contract
	action, orderType    string
	quantity             broker.Decimal
	lmtPrice, auxPrice   broker.Decimal
	hasLmt, hasAux       bool
	tif, account, ref    string
	transmit, outsideRTH bool
}

// parseOrderRequest reads a text PLACE_ORDER in the layout of scmhub's
// PlaceOrder at version v (a protobuf request arrives converted to the
// layout of v ≥ 145 by placeOrderFromProto). Errors wrap
// broker.ErrInvalidArgument and say which field is bad.
func parseOrderRequest(v int, f []string) (orderRequest, error) {
	o := placeOrderOffset(v)
	at := func(i int) string { return field(f, o+i) }
	var r orderRequest
	var err error
	if r.id, err = strconv.ParseInt(at(0), 10, 64); err != nil {
		return r, fmt.Errorf("%w: order id %q", broker.ErrInvalidArgument, at(0))
	}
	conID, _ := strconv.ParseInt(at(1), 10, 64)
	r.contract = broker.Contract{ConID: conID, Symbol: at(2), SecType: at(3), Expiry: at(4), Right: at(6),
		Multiplier: at(7), Exchange: at(8), Currency: at(10), LocalSymbol: at(11), TradingClass: at(12)}
	if s := at(5); s != "" && s != "0" {
		if r.contract.Strike, err = broker.ParseDecimal(s); err != nil {
			return r, fmt.Errorf("%w: strike %q", broker.ErrInvalidArgument, s)
		}
	}
	r.action, r.orderType = at(15), at(17)
	if r.quantity, err = broker.ParseDecimal(at(16)); err != nil && at(16) != "" {
		return r, fmt.Errorf("%w: quantity %q", broker.ErrInvalidArgument, at(16))
	}
	if r.lmtPrice, r.hasLmt, err = optPrice(at(18)); err != nil {
		return r, err
	}
	if r.auxPrice, r.hasAux, err = optPrice(at(19)); err != nil {
		return r, err
	}
	r.tif, r.account, r.ref = at(20), at(22), at(25)
	r.transmit = at(26) != "0" && at(26) != ""
	r.outsideRTH = at(32) == "1"
	return r, nil
}

// optPrice reads a price field: "" (UNSET_FLOAT) means none. Below version
// 123 an unset price goes as 0, which reads as none too.
func optPrice(s string) (broker.Decimal, bool, error) {
	if s == "" || s == "1.7976931348623157E308" {
		return broker.Decimal{}, false, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return broker.Decimal{}, false, fmt.Errorf("%w: price %q", broker.ErrInvalidArgument, s)
	}
	d, err := broker.ParseDecimal(strconv.FormatFloat(f, 'f', -1, 64))
	if err != nil {
		return broker.Decimal{}, false, fmt.Errorf("%w: price %q", broker.ErrInvalidArgument, s)
	}
	return d, true, nil
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// placeOrderFromProto decodes a protobuf PlaceOrderRequest (from 203) into the
// text layout of PLACE_ORDER at version ≥ 145, through the hidden flag.
func placeOrderFromProto(b []byte) ([]string, error) {
	var m twspb.PlaceOrderRequest
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	c, o := m.GetContract(), m.GetOrder()
	price := func(p *float64) string {
		if p == nil {
			return ""
		}
		return fmtFloat(*p)
	}
	strike := ""
	if c.Strike != nil {
		strike = fmtFloat(c.GetStrike())
	}
	mult := ""
	if c.Multiplier != nil {
		mult = fmtFloat(c.GetMultiplier())
	}
	transmit := "1"
	if o.Transmit != nil && !o.GetTransmit() {
		transmit = "0"
	}
	f := []string{itoa(inPlaceOrder), optInt32(m.OrderId),
		optInt32(c.ConId), c.GetSymbol(), c.GetSecType(), c.GetLastTradeDateOrContractMonth(), strike, c.GetRight(),
		mult, c.GetExchange(), c.GetPrimaryExch(), c.GetCurrency(), c.GetLocalSymbol(), c.GetTradingClass(),
		c.GetSecIdType(), c.GetSecId(),
		o.GetAction(), o.GetTotalQuantity(), o.GetOrderType(), price(o.LmtPrice), price(o.AuxPrice),
		o.GetTif(), o.GetOcaGroup(), o.GetAccount(), o.GetOpenClose(), optInt32(o.Origin), o.GetOrderRef(),
		transmit, optInt32(o.ParentId), boolText(o.GetBlockOrder()), boolText(o.GetSweepToFill()),
		optInt32(o.DisplaySize), optInt32(o.TriggerMethod), boolText(o.GetOutsideRth()), boolText(o.GetHidden())}
	return f, nil
}

// cancelOrderFromProto decodes a protobuf CancelOrderRequest (from 203) into
// CANCEL_ORDER's text layout from 192: id, orderId.
func cancelOrderFromProto(b []byte) ([]string, error) {
	var m twspb.CancelOrderRequest
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return []string{itoa(inCancelOrder), optInt32(m.OrderId)}, nil
}

// orderStatusFields is ORDER_STATUS: "3,[6,]orderId,status,filled,remaining,
// avgFillPrice,permId,parentId,lastFillPrice,clientId,whyHeld[,mktCapPrice]":
// version field below 131, mktCapPrice from it.
func orderStatusFields(v int, o Order) []string {
	f := []string{itoa(outOrderStatus)}
	if v < minVerMarketCapPrice {
		f = append(f, "6")
	}
	f = append(f, i64(o.ID), o.Status, o.Filled.String(), o.Remaining().String(), o.AvgFillPrice.String(),
		i64(o.PermID), "0", o.LastFillPrice.String(), i64(o.ClientID), "")
	if v >= minVerMarketCapPrice {
		f = append(f, "0")
	}
	return f
}

func priceText(d broker.Decimal, set bool) string {
	if !set {
		return ""
	}
	return d.String()
}

// orderContractFields is the contract as OPEN_ORDER and COMPLETED_ORDER carry it.
func orderContractFields(c broker.Contract) []string {
	strike := "0"
	if !c.Strike.IsZero() {
		strike = c.Strike.String()
	}
	return []string{i64(c.ConID), c.Symbol, c.SecType, c.Expiry, strike, c.Right, c.Multiplier, c.Exchange,
		c.Currency, c.LocalSymbol, c.TradingClass}
}

// faAndModelFields are the FA group, method and percentage, the FA profile
// (below 177) and the model code (from 103) of OPEN_ORDER and COMPLETED_ORDER.
func faAndModelFields(v int) []string {
	f := []string{"", "", ""}
	if v < minVerFAProfileDesupp {
		f = append(f, "")
	}
	if v >= minVerModelsSupport {
		f = append(f, "")
	}
	return f
}

// openOrderFields is OPEN_ORDER in the layout scmhub's processOpenOrderMsg
// reads at version v (version field 34 below 145), for an order without
// combo legs, conditions, algo or delta-neutral parts.
func openOrderFields(v int, o Order) []string {
	f := []string{itoa(outOpenOrder)}
	if v < minVerOrderContainer {
		f = append(f, "34")
	}
	f = append(f, i64(o.ID))
	f = append(f, orderContractFields(o.Contract)...)
	f = append(f, o.Action, o.Quantity.String(), o.OrderType, priceText(o.LmtPrice, o.HasLmt),
		priceText(o.AuxPrice, o.HasAux), o.TIF, "", o.Account, "", "0", o.OrderRef, i64(o.ClientID),
		i64(o.PermID), boolText(o.OutsideRTH), "0", "0", "", "") // hidden, discretionaryAmt, goodAfterTime, sharesAllocation
	f = append(f, faAndModelFields(v)...)
	f = append(f, "", "", "", "", // goodTillDate, rule80A, percentOffset, settlingFirm
		"0", "", "-1", "0", // shortSaleSlot, designatedLocation, exemptCode, auctionStrategy
		"", "", "", "", "", // startingPrice, stockRefPrice, delta, stockRangeLower, stockRangeUpper
		"", "0", "0", "0", "", "0", // displaySize, blockOrder, sweepToFill, allOrNone, minQty, ocaType
		"0", "0", "", "0", "0", // eTradeOnly, firmQuoteOnly, nbboPriceCap, parentId, triggerMethod
		"", "0", "", "", "0", "0", // volatility, volatilityType, dnOrderType, dnAuxPrice, continuousUpdate, refPriceType
		"", "", "", "", // trailStopPrice, trailingPercent, basisPoints, basisPointsType
		"", "0", "0", "0", // comboLegsDescrip, comboLegs, orderComboLegs, smartComboRoutingParams
		"", "", "", "", "0", "", "", "0", // scale init, subs, increment; hedgeType; optOut; clearing acct, intent; notHeld
		"0", "", "0", "0", o.Status) // deltaNeutralContract, algoStrategy, solicited, whatIf, status
	if v >= minVerWhatIfExtFields {
		f = append(f, "", "", "", "", "", "")
	}
	f = append(f, "", "", "", "", "", "", "") // margins after, commissions, currency
	if v >= minVerFullOrderPreview {
		f = append(f, "", "", "", "", "", "", "", "", "", "", "", "", "0") // margin currency .. accounts count
	}
	f = append(f, "", "0", "0") // warningText, randomizeSize, randomizePrice
	if v >= minVerPeggedToBench {
		f = append(f, "0", "", "", "", "", "", "", "", "0") // conditions, adjusted order params
	}
	return append(f, openOrderTail(v)...)
}

// openOrderTail is what OPEN_ORDER carries after its adjusted-order fields
// (COMPLETED_ORDER has its own tail).
func openOrderTail(v int) []string {
	var f []string
	add := func(since int, fs ...string) {
		if v >= since {
			f = append(f, fs...)
		}
	}
	add(minVerSoftDollarTier, "", "", "")
	add(minVerCashQty, "")
	add(minVerAutoPriceHedge, "0")
	add(minVerOrderContainer, "0")
	add(minVerDPegOrders, "0")
	add(minVerPriceMgmtAlgo, "")
	add(minVerDuration, "")
	add(minVerPostToAts, "")
	add(minVerAutoCancelParent, "0")
	add(minVerPegBestPegMid, "", "", "", "", "")
	add(minVerCustomerAccount, "")
	add(minVerProfessionalCust, "0")
	add(minVerBondAccruedInt, "")
	add(minVerIncludeOvernight, "0")
	add(minVerCMETagsOpenOrder, "", "")
	add(minVerSubmitter, "")
	add(minVerImbalanceOnly, "0")
	return f
}

// completedOrderFields is COMPLETED_ORDER in the layout scmhub's
// processCompletedOrderMsg reads at version v (no version field, no order id).
func completedOrderFields(v int, o Order) []string {
	f := []string{itoa(outCompletedOrder)}
	f = append(f, orderContractFields(o.Contract)...)
	f = append(f, o.Action, o.Quantity.String(), o.OrderType, priceText(o.LmtPrice, o.HasLmt),
		priceText(o.AuxPrice, o.HasAux), o.TIF, "", o.Account, "", "0", o.OrderRef,
		i64(o.PermID), boolText(o.OutsideRTH), "0", "0", "") // hidden, discretionaryAmt, goodAfterTime
	f = append(f, faAndModelFields(v)...)
	f = append(f, "", "", "", "", // goodTillDate, rule80A, percentOffset, settlingFirm
		"0", "", "-1", // shortSaleSlot, designatedLocation, exemptCode
		"", "", "", "", "", // startingPrice, stockRefPrice, delta, stockRangeLower, stockRangeUpper
		"", "0", "0", "", "0", // displaySize, sweepToFill, allOrNone, minQty, ocaType
		"0",                       // triggerMethod
		"", "0", "", "", "0", "0", // volatility, volatilityType, dnOrderType, dnAuxPrice, continuousUpdate, refPriceType
		"", "", // trailStopPrice, trailingPercent
		"", "0", "0", "0", // comboLegsDescrip, comboLegs, orderComboLegs, smartComboRoutingParams
		"", "", "", "", // scale init, subs, increment; hedgeType
		"", "", "0", // clearing acct, intent; notHeld
		"0", "", "0", o.Status, // deltaNeutralContract, algoStrategy, solicited, status
		"0", "0") // randomizeSize, randomizePrice
	if v >= minVerPeggedToBench {
		f = append(f, "0") // conditions
	}
	f = append(f, "", "") // trailStopPrice, lmtPriceOffset
	if v >= minVerCashQty {
		f = append(f, "")
	}
	if v >= minVerAutoPriceHedge {
		f = append(f, "0")
	}
	if v >= minVerOrderContainer {
		f = append(f, "0")
	}
	f = append(f, "", o.Filled.String(), "0", "0", "", "0", "0", "0", // autoCancelDate .. parentPermId
		o.CompletedTime, o.Status)
	if v >= minVerPegBestPegMid {
		f = append(f, "", "", "", "", "")
	}
	if v >= minVerCustomerAccount {
		f = append(f, "")
	}
	if v >= minVerProfessionalCust {
		f = append(f, "0")
	}
	if v >= minVerSubmitter {
		f = append(f, "")
	}
	return f
}

// ---- protobuf forms: OPEN_ORDER and ORDER_STATUS from 203, COMPLETED_ORDER from 204 ----

func init() {
	protoOutgoing[outOpenOrder] = protoOut{VersionProtobufOrders, openOrderProto}
	protoOutgoing[outOrderStatus] = protoOut{VersionProtobufOrders, orderStatusProto}
	protoOutgoing[outCompletedOrder] = protoOut{versionProtobufCompletedOrders, completedOrderProto}
}

// markerAt returns where a marker put in a field of o lands in layout at
// version DefaultServerVersion: the text layouts of the order messages have
// fixed positions from VersionProtobufOrders on, for the orders the
// simulator holds (no combo legs, conditions, algo or delta-neutral parts).
func markerAt(layout func(int, Order) []string, set func(*Order, string)) int {
	const marker = "\x00marker"
	var o Order
	set(&o, marker)
	for i, f := range layout(DefaultServerVersion, o) {
		if f == marker {
			return i
		}
	}
	panic("fakes: marker not in layout") // unreachable: the layouts carry every marked field
}

var (
	openOrderStatusAt  = markerAt(openOrderFields, func(o *Order, m string) { o.Status = m })
	completedStatusAt  = markerAt(completedOrderFields, func(o *Order, m string) { o.Status = m })
	completedTimeAt    = markerAt(completedOrderFields, func(o *Order, m string) { o.CompletedTime = m })
	completedFilledAt  = completedTimeAt - 7 // filledQuantity, then six fields, then completedTime
	openOrderFirstAttr = 13                  // action, after the id and the 11 contract fields
)

// orderProtoAt builds the order part of OPEN_ORDER (at=13, with client id)
// or COMPLETED_ORDER (at=12, no client id) from the text layout.
func orderProtoAt(f []string, at int, withClient bool) (*twspb.Order, error) {
	d, err := floats(f, at+3, at+4)
	if err != nil {
		return nil, err
	}
	o := &twspb.Order{Action: optString(field(f, at)), TotalQuantity: optString(field(f, at+1)),
		OrderType: optString(field(f, at+2)), LmtPrice: d[0], AuxPrice: d[1], Tif: optString(field(f, at+5)),
		Account: optString(field(f, at+7)), OrderRef: optString(field(f, at+10))}
	i := at + 11
	if withClient {
		if o.ClientId, err = parseInt32("client id", field(f, i)); err != nil {
			return nil, err
		}
		i++
	}
	perm, err := strconv.ParseInt(field(f, i), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("perm id %q: %w", field(f, i), err)
	}
	o.PermId, o.OutsideRth = proto.Int64(perm), proto.Bool(field(f, i+1) == "1")
	return o, nil
}

// openOrderProto: OPEN_ORDER from the layout of openOrderFields at v ≥ 203.
func openOrderProto(f []string) (proto.Message, error) {
	id, err := parseInt32("order id", field(f, 1))
	if err != nil {
		return nil, err
	}
	c, err := contractAt(f, 2)
	if err != nil {
		return nil, err
	}
	o, err := orderProtoAt(f, openOrderFirstAttr, true)
	if err != nil {
		return nil, err
	}
	o.OrderId = id
	return &twspb.OpenOrder{OrderId: id, Contract: c, Order: o,
		OrderState: &twspb.OrderState{Status: optString(field(f, openOrderStatusAt))}}, nil
}

// orderStatusProto: ORDER_STATUS from the layout of orderStatusFields at v ≥ 131.
func orderStatusProto(f []string) (proto.Message, error) {
	id, err := parseInt32("order id", field(f, 1))
	if err != nil {
		return nil, err
	}
	d, err := floats(f, 5, 8, 11)
	if err != nil {
		return nil, err
	}
	perm, err := strconv.ParseInt(field(f, 6), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("perm id %q: %w", field(f, 6), err)
	}
	parent, err := parseInt32("parent id", field(f, 7))
	if err != nil {
		return nil, err
	}
	client, err := parseInt32("client id", field(f, 9))
	if err != nil {
		return nil, err
	}
	return &twspb.OrderStatus{OrderId: id, Status: optString(field(f, 2)), Filled: optString(field(f, 3)),
		Remaining: optString(field(f, 4)), AvgFillPrice: d[0], PermId: proto.Int64(perm), ParentId: parent,
		LastFillPrice: d[1], ClientId: client, WhyHeld: optString(field(f, 10)), MktCapPrice: d[2]}, nil
}

// completedOrderProto: COMPLETED_ORDER from the layout of completedOrderFields at v ≥ 204.
func completedOrderProto(f []string) (proto.Message, error) {
	c, err := contractAt(f, 1)
	if err != nil {
		return nil, err
	}
	o, err := orderProtoAt(f, openOrderFirstAttr-1, false)
	if err != nil {
		return nil, err
	}
	o.FilledQuantity = optString(field(f, completedFilledAt))
	return &twspb.CompletedOrder{Contract: c, Order: o, OrderState: &twspb.OrderState{
		Status: optString(field(f, completedStatusAt)), CompletedTime: optString(field(f, completedTimeAt)),
		CompletedStatus: optString(field(f, completedStatusAt))}}, nil
}
