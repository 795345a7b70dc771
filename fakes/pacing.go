package fakes

import (
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/fakes/internal/twspb"
)

// This file enforces IB's pacing (Script.Pacing) and routes the requests
// that need the connection's market data state (see answer), and registers
// the contract, market data and historical messages with the codec.

// Pacing is the request rate the gateway enforces, as IB does. A zero field
// takes IB's value.
type Pacing struct {
	// MessagesPerSecond: a client sending more within one second gets error
	// 100 and is disconnected. IB: 50.
	MessagesPerSecond int
	// HistoricalRequests within HistoricalWindow, over all of the gateway's
	// clients; more get error 162. IB: 60 per 10 minutes.
	HistoricalRequests int
	HistoricalWindow   time.Duration
	// IdenticalWithin: an identical historical request this soon after the
	// last gets error 162. IB: 15s.
	IdenticalWithin time.Duration
}

// IBPacing returns IB's limits.
func IBPacing() Pacing {
	return Pacing{MessagesPerSecond: 50, HistoricalRequests: 60, HistoricalWindow: 10 * time.Minute,
		IdenticalWithin: 15 * time.Second}
}

func (p Pacing) withDefaults() Pacing {
	d := IBPacing()
	if p.MessagesPerSecond == 0 {
		p.MessagesPerSecond = d.MessagesPerSecond
	}
	if p.HistoricalRequests == 0 {
		p.HistoricalRequests = d.HistoricalRequests
	}
	if p.HistoricalWindow == 0 {
		p.HistoricalWindow = d.HistoricalWindow
	}
	if p.IdenticalWithin == 0 {
		p.IdenticalWithin = d.IdenticalWithin
	}
	return p
}

// histPacer counts a gateway's historical requests.
type histPacer struct {
	mu    sync.Mutex
	times []time.Time
	last  map[string]time.Time
}

// admit records a historical request and reports whether pacing allows it.
func (h *histPacer) admit(p Pacing, key string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.last = map[string]time.Time{}
	}
	for k, t := range h.last {
		if now.Sub(t) >= p.IdenticalWithin {
			delete(h.last, k)
		}
	}
	if t, ok := h.last[key]; ok && now.Sub(t) < p.IdenticalWithin {
		return false
	}
	i := 0
	for i < len(h.times) && now.Sub(h.times[i]) >= p.HistoricalWindow {
		i++
	}
	h.times = h.times[i:]
	if len(h.times) >= p.HistoricalRequests {
		return false
	}
	h.times = append(h.times, now)
	h.last[key] = now
	return true
}

// paced returns the replies to one request at version v: after the message
// rate check (Script.Pacing), the market data and historical requests are
// served with the connection's state, the rest by answer (orders.go). Owned
// by the serve goroutine.
func (c *conn) paced(sc Script, v int, fields []string) [][]string {
	now := time.Now()
	if c.pacing != nil {
		p := c.pacing.withDefaults()
		c.recent = append(c.recent, now)
		i := 0
		for i < len(c.recent) && now.Sub(c.recent[i]) >= time.Second {
			i++
		}
		c.recent = c.recent[i:]
		if len(c.recent) > p.MessagesPerSecond {
			c.log.Debug("pacing: too many messages", "in_last_second", len(c.recent))
			_ = c.sendError(-1, CodeMaxRate, "Max rate of messages per second has been exceeded:max="+
				itoa(p.MessagesPerSecond)+" rec="+itoa(len(c.recent))+" (1)")
			c.sleep(duplicateIDLinger) // as for 326: let the client read the error before EOF
			c.close(false)
			return nil
		}
	}
	id := field(fields, 0)
	if len(fields) < minFields[int(intField(fields, 0, -1))] {
		return c.answer(sc, v, fields)
	}
	switch id {
	case itoa(inReqMarketDataType):
		return c.replyMarketDataType(v, fields)
	case itoa(inReqMktData):
		defer c.g.noteMarketChange()
		return c.replyMktData(sc, v, fields)
	case itoa(inCancelMktData):
		defer c.g.noteMarketChange()
		return c.replyCancelMktData(fields)
	case itoa(inReqHistoricalData):
		h := parseHistorical(v, fields)
		if c.pacing != nil && !c.g.hist.admit(c.pacing.withDefaults(), h.key(), now) {
			return [][]string{errorFields(v, h.reqID, CodeHistoricalPacing, NoticeText(CodeHistoricalPacing))}
		}
		return replyHistorical(sc, v, h, now)
	}
	return c.answer(sc, v, fields)
}

// registerMarketData adds the contract, market data and historical
// messages to serve.go's handler table and the codec; serve.go's init calls it.
func registerMarketData() {
	handlers[inReqContractData] = replyContractData
	handlers[inReqMatchingSymbols] = replyMatchingSymbols
	delete(contractRequests, inReqContractData)
	reqIDField[inReqMatchingSymbols] = 1
	for id, n := range map[int]int{inReqContractData: 15, inReqMktData: 19, inReqHistoricalData: 21,
		inReqMatchingSymbols: 3, inCancelMktData: 3} {
		minFields[id] = n
	}
	for id, po := range map[int]protoOut{
		outContractData:      {versionProtobufContractData, contractDataProto},
		outContractDataEnd:   {versionProtobufContractData, reqIDOnly(2, func(id *int32) proto.Message { return &twspb.ContractDataEnd{ReqId: id} })},
		outSymbolSamples:     {versionProtobufRest2, symbolSamplesProto},
		outTickPrice:         {versionProtobufMarketData, tickPriceProto},
		outTickSize:          {versionProtobufMarketData, tickSizeProto},
		outTickString:        {versionProtobufMarketData, tickStringProto},
		outTickGeneric:       {versionProtobufMarketData, tickGenericProto},
		outMarketDataType:    {versionProtobufMarketData, marketDataTypeProto},
		outTickReqParams:     {versionProtobufMarketData, tickReqParamsProto},
		outTickSnapshotEnd:   {versionProtobufMarketData, reqIDOnly(2, func(id *int32) proto.Message { return &twspb.TickSnapshotEnd{ReqId: id} })},
		outHistoricalData:    {versionProtobufHistorical, historicalDataProto},
		outHistoricalDataEnd: {versionProtobufHistorical, historicalDataEndProto},
	} {
		protoOutgoing[id] = po
	}
	for id, in := range map[int]protoIn{
		inReqContractData: func(b []byte) ([]string, error) {
			var m twspb.ContractDataRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			c := m.GetContract()
			f := append([]string{itoa(inReqContractData), "8", optInt32(m.ReqId)}, contractText(c)...)
			return append(f, boolText(c.GetIncludeExpired()), c.GetSecIdType(), c.GetSecId(), c.GetIssuerId()), nil
		},
		inReqMktData: func(b []byte) ([]string, error) {
			var m twspb.MarketDataRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			f := append([]string{itoa(inReqMktData), "11", optInt32(m.ReqId)}, contractText(m.GetContract())...)
			return append(f, "0", m.GetGenericTickList(), boolText(m.GetSnapshot()), boolText(m.GetRegulatorySnapshot()), ""), nil
		},
		inReqHistoricalData: func(b []byte) ([]string, error) {
			var m twspb.HistoricalDataRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			c := m.GetContract()
			f := append([]string{itoa(inReqHistoricalData), optInt32(m.ReqId)}, contractText(c)...)
			return append(f, boolText(c.GetIncludeExpired()), m.GetEndDateTime(), m.GetBarSizeSetting(), m.GetDuration(),
				boolText(m.GetUseRTH()), m.GetWhatToShow(), optInt32(m.FormatDate), boolText(m.GetKeepUpToDate()), ""), nil
		},
		inReqMatchingSymbols: func(b []byte) ([]string, error) {
			var m twspb.MatchingSymbolsRequest
			if err := proto.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			return []string{itoa(inReqMatchingSymbols), optInt32(m.ReqId), m.GetPattern()}, nil
		},
	} {
		protoIncoming[id] = in
	}
}
