package fakes

import (
	"fmt"
	"hash/fnv"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/fakes/internal/twspb"
)

// This file serves REQ_HISTORICAL_DATA: bars generated deterministically from
// the instrument's seed and the request (see docs/adr/0012-fake-market-data.md).

// maxBars bounds one answer, as TWS refuses queries that are too long.
const maxBars = 10000

// histRequest is a parsed REQ_HISTORICAL_DATA.
type histRequest struct {
	reqID                              int64
	contract                           reqContract
	end, barSize, duration, whatToShow string
	useRTH                             bool
	formatDate                         int64
}

// parseHistorical reads "20,[6,]reqId,contract(12),includeExpired,end,barSize,
// duration,useRTH,whatToShow,formatDate,...": the version field is gone after 124.
func parseHistorical(v int, f []string) histRequest {
	o := 1
	if v <= minVerSyntRealtimeBars {
		o = 2
	}
	return histRequest{reqID: intField(f, o, -1), contract: contractFieldsAt(f, o+1), end: field(f, o+14),
		barSize: field(f, o+15), duration: field(f, o+16), useRTH: field(f, o+17) == "1",
		whatToShow: strings.ToUpper(field(f, o+18)), formatDate: intField(f, o+19, 1)}
}

// key identifies identical requests for pacing.
func (h histRequest) key() string {
	c := h.contract
	return fmt.Sprint(c.ConID, c.Symbol, c.SecType, c.Exchange, c.Currency, h.end, h.barSize, h.duration, h.useRTH, h.whatToShow)
}

var barSizes = map[string]time.Duration{
	"1 secs": time.Second, "5 secs": 5 * time.Second, "10 secs": 10 * time.Second, "15 secs": 15 * time.Second,
	"30 secs": 30 * time.Second, "1 min": time.Minute, "2 mins": 2 * time.Minute, "3 mins": 3 * time.Minute,
	"5 mins": 5 * time.Minute, "10 mins": 10 * time.Minute, "15 mins": 15 * time.Minute, "20 mins": 20 * time.Minute,
	"30 mins": 30 * time.Minute, "1 hour": time.Hour, "2 hours": 2 * time.Hour, "3 hours": 3 * time.Hour,
	"4 hours": 4 * time.Hour, "8 hours": 8 * time.Hour, "1 day": 24 * time.Hour, "1 week": 7 * 24 * time.Hour,
}

// parseDuration reads "N S|D|W|M|Y".
func parseDuration(s string) (time.Duration, bool) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), " ")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n <= 0 {
		return 0, false
	}
	day := 24 * time.Hour
	u := map[string]time.Duration{"S": time.Second, "D": day, "W": 7 * day, "M": 30 * day, "Y": 365 * day}[strings.ToUpper(unit)]
	if u == 0 {
		return 0, false
	}
	return time.Duration(n) * u, true
}

// parseEnd reads "yyyymmdd hh:mm:ss[ tz]" or "yyyymmdd-hh:mm:ss" (UTC); ""
// is now.
func parseEnd(s string, now time.Time) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return now.UTC(), true
	}
	if t, err := time.Parse("20060102-15:04:05", s); err == nil {
		return t, true
	}
	parts := strings.Fields(s)
	if len(parts) >= 2 {
		if t, err := time.Parse("20060102 15:04:05", parts[0]+" "+parts[1]); err == nil {
			if len(parts) == 3 {
				if loc, err := time.LoadLocation(parts[2]); err == nil {
					t, _ = time.ParseInLocation("20060102 15:04:05", parts[0]+" "+parts[1], loc)
				}
			}
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// rth reports whether a bar starting at t lies in regular trading hours:
// weekdays, 14:30 to 21:00 UTC (09:30 to 16:00 New York, standard time).
func rth(t time.Time, bar time.Duration) bool {
	if t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
		return false
	}
	if bar >= 24*time.Hour {
		return true
	}
	m := t.Hour()*60 + t.Minute()
	return m >= 14*60+30 && m < 21*60
}

// replyHistorical answers a REQ_HISTORICAL_DATA already admitted by pacing.
func replyHistorical(sc Script, v int, h histRequest, now time.Time) [][]string {
	bad := func(code int64, msg string) [][]string { return [][]string{errorFields(v, h.reqID, code, msg)} }
	if code := sc.Faults.Market.HistoricalError; code != 0 {
		return bad(code, NoticeText(code))
	}
	in, e := sc.lookup(v, h.reqID, h.contract)
	if e != nil {
		return [][]string{e}
	}
	bar, ok := barSizes[strings.ToLower(strings.TrimSpace(h.barSize))]
	if !ok {
		return bad(CodeValidationError, "Error validating request.-'bP' : cause - Historical data bar size setting is invalid.")
	}
	dur, ok := parseDuration(h.duration)
	if !ok {
		return bad(CodeValidationError, "Error validating request.-'bP' : cause - Historical data duration format is invalid.")
	}
	switch h.whatToShow {
	case "TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK":
	default:
		return bad(CodeValidationError, "Error validating request.-'bP' : cause - Invalid what to show: "+h.whatToShow)
	}
	if h.whatToShow == "TRADES" && in.Contract.SecType == "CASH" {
		return bad(CodeHistoricalPacing, "Historical Market Data Service error message:No data of type TRADES is available for the exchange 'IDEALPRO'")
	}
	end, ok := parseEnd(h.end, now)
	if !ok {
		return bad(CodeValidationError, "Error validating request.-'bP' : cause - End date/time: The date, time, or time-zone entered is invalid.")
	}
	if dur/bar > maxBars {
		return bad(CodeHistoricalPacing, "Historical Market Data Service error message:Time length exceed max.")
	}
	end = end.Truncate(bar)
	start := end.Add(-dur)
	hs := fnv.New64a()
	_, _ = hs.Write([]byte(h.whatToShow + "|" + h.barSize + "|" + strconv.FormatInt(start.Unix(), 10)))
	rng := rand.New(rand.NewPCG(in.seed(), hs.Sum64()))
	tick := in.minTick().Rat()
	px := func(ticks int64) string { return ratDecimal(new(big.Rat).Mul(big.NewRat(ticks, 1), tick)).String() }
	base := in.Quote.Last
	if base.IsZero() {
		base = in.Quote.Bid
	}
	q := new(big.Rat).Quo(base.Rat(), tick)
	level := new(big.Int).Quo(q.Num(), q.Denom()).Int64()
	level = max(level, 100)
	var bars [][]string
	for t := start; t.Before(end); t = t.Add(bar) {
		if h.useRTH && !rth(t, bar) || !h.useRTH && bar >= 24*time.Hour && !rth(t, bar) {
			continue
		}
		open := level
		hi, lo := open, open
		for range 4 {
			level += int64(rng.IntN(7)) - 3
			level = max(level, 1)
			hi, lo = max(hi, level), min(lo, level)
		}
		vol, count := int64(0), int64(0)
		if h.whatToShow == "TRADES" {
			vol, count = int64(rng.IntN(5000)+100), int64(rng.IntN(200)+1)
		}
		wap := new(big.Rat).Mul(big.NewRat(open+level, 2), tick)
		date := barDate(t, bar, h.formatDate)
		bars = append(bars, []string{date, px(open), px(hi), px(lo), px(level), i64(vol), ratDecimal(wap).String(), i64(count)})
	}
	startS, endS := start.Format("20060102 15:04:05")+" UTC", end.Format("20060102 15:04:05")+" UTC"
	return historicalFields(v, h.reqID, startS, endS, bars)
}

func barDate(t time.Time, bar time.Duration, formatDate int64) string {
	switch {
	case bar >= 24*time.Hour:
		return t.Format("20060102")
	case formatDate == 2:
		return i64(t.Unix())
	default:
		return t.Format("20060102 15:04:05") + " UTC"
	}
}

// historicalFields is HISTORICAL_DATA (and HISTORICAL_DATA_END from 196) at
// version v: "17,3,reqId,start,end,n,(date,o,h,l,c,vol,wap,hasGaps,count)*"
// below 124, without the version and gaps fields from it (the request keeps
// its version field up to 124 inclusive), and from 196
// "17,reqId,n,bars" then "108,reqId,start,end".
func historicalFields(v int, reqID int64, start, end string, bars [][]string) [][]string {
	f := []string{itoa(outHistoricalData)}
	if v < minVerSyntRealtimeBars {
		f = append(f, "3")
	}
	f = append(f, i64(reqID))
	if v < minVerHistoricalEnd {
		f = append(f, start, end)
	}
	f = append(f, itoa(len(bars)))
	for _, b := range bars {
		if v < minVerSyntRealtimeBars {
			f = append(f, b[:7]...)
			f = append(f, "false", b[7])
			continue
		}
		f = append(f, b...)
	}
	if v < minVerHistoricalEnd {
		return [][]string{f}
	}
	return [][]string{f, {itoa(outHistoricalDataEnd), i64(reqID), start, end}}
}

// historicalDataProto: HISTORICAL_DATA from version 196 (historicalFields).
func historicalDataProto(f []string) (proto.Message, error) {
	id, err := parseInt32("req id", field(f, 1))
	if err != nil {
		return nil, err
	}
	m := &twspb.HistoricalData{ReqId: id}
	for i := 3; i+8 <= len(f); i += 8 {
		d, err := floats(f, i+1, i+2, i+3, i+4)
		if err != nil {
			return nil, err
		}
		n, err := parseInt32("bar count", field(f, i+7))
		if err != nil {
			return nil, err
		}
		m.HistoricalDataBars = append(m.HistoricalDataBars, &twspb.HistoricalDataBar{Date: proto.String(field(f, i)),
			Open: d[0], High: d[1], Low: d[2], Close: d[3], Volume: optString(field(f, i+5)), WAP: optString(field(f, i+6)),
			BarCount: n})
	}
	return m, nil
}

func historicalDataEndProto(f []string) (proto.Message, error) {
	id, err := parseInt32("req id", field(f, 1))
	return &twspb.HistoricalDataEnd{ReqId: id, StartDateStr: proto.String(field(f, 2)),
		EndDateStr: proto.String(field(f, 3))}, err
}
