package ibkr

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"reflect"
	"strconv"
	"unsafe"

	"github.com/scmhub/ibapi"
	"github.com/scmhub/ibapi/protobuf"
	"google.golang.org/protobuf/proto"
)

// Exact decimals.
//
// scmhub decodes POSITION_DATA's quantity into a fixed-point Decimal (7
// fractional digits, NaN from about 9.22e11) and its average cost and strike
// into float64, so the values reaching the wrapper are already rounded. The
// adapter therefore reads those three fields itself, as text, before scmhub
// does: it gives scmhub's EClient a scanner of its own (the same framing, the
// same buffer limit) whose split function hands every POSITION_DATA frame's raw
// fields to the session before passing the frame on unchanged. The decoder
// turns each such frame into one Position callback, in order, on one
// goroutine, so the callback takes the oldest raw fields queued for its
// account and contract id (older entries, of frames that produced no callback,
// are dropped; the queue is bounded by maxRawQueue). The split learns the
// server version from the handshake reply and reads POSITION_DATA in the form
// of that version (positionFrame): text below 201; from 201 the same text after
// a raw 4-byte id; from 207 a protobuf Position, whose quantity is text (exact)
// and whose average cost and strike are doubles in the schema itself. A
// callback with no matching entry falls back to scmhub's values.
// ACCOUNT_SUMMARY values already reach the wrapper as text.

var scannerType = reflect.TypeFor[*bufio.Scanner]()

// setScanner replaces ec's scanner with one reading the same socket through
// split, and reports whether scmhub's layout allowed it. Call it right after
// NewEClient, while no other goroutine uses ec.
func setScanner(ec *ibapi.EClient, conn *ibapi.Connection, split bufio.SplitFunc) bool {
	f := reflect.ValueOf(ec).Elem().FieldByName("scanner")
	if !f.IsValid() || f.Type() != scannerType || conn == nil {
		return false
	}
	sc := bufio.NewScanner(conn)
	sc.Split(split)
	sc.Buffer(make([]byte, 4096), ibapi.MAX_MSG_LEN)
	*(**bufio.Scanner)(unsafe.Pointer(f.UnsafeAddr())) = sc
	return true
}

// rawPosition holds a POSITION_DATA frame's number fields as the gateway sent
// them (missing fields are ""), and the account and contract id that tie it to
// its callback.
type rawPosition struct {
	account                   string
	conID                     int64
	quantity, avgCost, strike string
}

// maxRawQueue bounds the raw fields queued ahead of their callbacks: scmhub's
// decoder queue holds 300 messages.
const maxRawQueue = 1024

// isPositionData reports whether scmhub decodes payload (text, below version
// 201) as POSITION_DATA: its first field parses as the integer 61.
func isPositionData(payload []byte) bool {
	id, _, ok := bytes.Cut(payload, []byte{0})
	if !ok || len(id) == 0 || len(id) > 20 {
		return false
	}
	n, err := strconv.ParseInt(string(id), 10, 64)
	return err == nil && n == 61
}

// positionFrame reads the raw numbers of payload, a frame after the handshake
// at server version v, if scmhub decodes it into a Position callback.
func positionFrame(v int, payload []byte) (rawPosition, bool) {
	if v < int(ibapi.MIN_SERVER_VER_PROTOBUF) {
		if !isPositionData(payload) {
			return rawPosition{}, false
		}
		return parseRawPosition(payload), true
	}
	if len(payload) < 4 {
		return rawPosition{}, false
	}
	switch id := int64(binary.BigEndian.Uint32(payload)); id {
	case ibapi.POSITION_DATA: // text after a raw id
		return parseRawPosition(append([]byte("61\x00"), payload[4:]...)), true
	case ibapi.POSITION_DATA + ibapi.PROTOBUF_MSG_ID:
		var m protobuf.Position
		if proto.Unmarshal(payload[4:], &m) != nil || m.Contract == nil {
			return rawPosition{}, false // scmhub makes no callback of it either
		}
		r := rawPosition{account: m.GetAccount(), conID: int64(m.GetContract().GetConId()), quantity: m.GetPosition()}
		if m.AvgCost != nil {
			r.avgCost = strconv.FormatFloat(m.GetAvgCost(), 'f', -1, 64)
		}
		if m.GetContract().Strike != nil {
			r.strike = strconv.FormatFloat(m.GetContract().GetStrike(), 'f', -1, 64)
		}
		return r, true
	}
	return rawPosition{}, false
}

// handshakeVersion is the server version a handshake reply names, read as
// scmhub reads it (not a number: 0).
func handshakeVersion(payload []byte) int {
	v, _, _ := bytes.Cut(payload, []byte{0})
	n, _ := strconv.Atoi(string(v))
	return n
}

// splitFrames is scmhub's framing (scanFields: a big-endian uint32 length,
// then the payload; nothing more at EOF) that also hands the raw fields of
// each POSITION_DATA payload after the handshake reply to tee.
func splitFrames(tee func(rawPosition)) bufio.SplitFunc {
	handshake := true
	version := 0
	return func(data []byte, atEOF bool) (int, []byte, error) {
		if atEOF {
			return 0, nil, io.EOF
		}
		if len(data) < 4 {
			return 0, nil, nil
		}
		total := int(binary.BigEndian.Uint32(data[:4])) + 4
		if total > len(data) {
			return 0, nil, nil
		}
		payload := data[4:total]
		if handshake {
			version = handshakeVersion(payload)
		} else if r, ok := positionFrame(version, payload); ok {
			tee(r)
		}
		handshake = false
		return total, payload, nil
	}
}

// parseRawPosition reads the number fields of a POSITION_DATA payload:
// id, version, account, conId, symbol, secType, expiry, strike, right,
// multiplier, exchange, currency, localSymbol, tradingClass (version 2 on),
// position, avgCost (version 3 on).
func parseRawPosition(payload []byte) rawPosition {
	fields := bytes.Split(payload, []byte{0})
	get := func(i int) string {
		if i < len(fields) {
			return string(fields[i])
		}
		return ""
	}
	r := rawPosition{account: get(2), strike: get(7)}
	r.conID, _ = strconv.ParseInt(get(3), 10, 64) // as scmhub reads it ("" is 0)
	switch get(1) {
	case "1": // no tradingClass, no avgCost
		r.quantity = get(13)
	case "2": // no avgCost
		r.quantity = get(14)
	default:
		r.quantity, r.avgCost = get(14), get(15)
	}
	return r
}
