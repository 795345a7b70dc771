package fakes

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/brokerkit/brokerkit/broker"
)

// Wire limits and versions of the TWS API socket protocol as the gateway speaks it.
const (
	// MaxFrameLen is the largest frame payload either side may send (scmhub MAX_MSG_LEN).
	MaxFrameLen = 0xFFFFFF
	// MaxHandshakeLen bounds the client's version string ("v100..225 +PACEAPI").
	MaxHandshakeLen = 4096
	// DefaultServerVersion is the highest server version a gateway offers when
	// its Script's ServerVersion is 0 (and no WithMaxServerVersion caps it): the
	// newest the pinned scmhub/ibapi speaks (MIN_SERVER_VER_ODD_LOT_BID_ASK_QUOTES).
	// A client negotiates the highest version inside both ranges, so @stoqey/ib
	// (v100..193) still gets 193.
	DefaultServerVersion = 225
	// TextServerVersion is the newest version of the all-text protocol, the
	// highest @stoqey/ib accepts.
	TextServerVersion = 193
	// MinServerVersion and MaxServerVersion bound Script.ServerVersion and
	// WithMaxServerVersion. From VersionRawIDs (201) on, message ids are raw
	// integers and messages move to protobuf group by group (see codec.go).
	MinServerVersion = 100
	MaxServerVersion = 225
)

// apiPrefix opens every client connection, with no length in front.
const apiPrefix = "API\x00"

// Incoming (client → gateway) message ids.
const (
	inReqMktData           = 1
	inCancelMktData        = 2
	inPlaceOrder           = 3
	inCancelOrder          = 4
	inReqOpenOrders        = 5
	inReqAcctData          = 6
	inReqExecutions        = 7
	inReqIDs               = 8
	inReqContractData      = 9
	inReqMktDepth          = 10
	inReqAutoOpenOrders    = 15
	inReqAllOpenOrders     = 16
	inReqManagedAccts      = 17
	inReqHistoricalData    = 20
	inCancelHistorical     = 25
	inReqCurrentTime       = 49
	inReqRealTimeBars      = 50
	inReqMarketDataType    = 59
	inReqPositions         = 61
	inReqAccountSummary    = 62
	inCancelAccountSumm    = 63
	inCancelPositions      = 64
	inStartAPI             = 71
	inReqPositionsMulti    = 74
	inCancelPositionsMult  = 75
	inReqAcctUpdatesMulti  = 76
	inCancelAcctUpdsMulti  = 77
	inReqSecDefOptParams   = 78
	inReqHeadTimestamp     = 87
	inReqPnL               = 92
	inCancelPnL            = 93
	inReqPnLSingle         = 94
	inCancelPnLSingle      = 95
	inReqHistoricalTicks   = 96
	inReqTickByTick        = 97
	inReqCompletedOrders   = 99
	minVerAdvancedReject   = 166 // ERR_MSG gains advancedOrderRejectJson
	minVerErrorTime        = 194 // ERR_MSG drops its version field and gains errorTime
	minVerOptionalCapabil  = 72  // START_API carries optionalCapabilities
	minVerModelsSupport    = 103 // EXECUTION_DATA gains modelCode
	minVerSyntRealtimeBars = 124 // REQ_HISTORICAL_DATA drops its version field after this
	minVerUnrealizedPnL    = 129 // PNL and PNL_SINGLE gain unrealizedPnL
	minVerRealizedPnL      = 135 // PNL and PNL_SINGLE gain realizedPnL
	minVerLastLiquidity    = 136 // EXECUTION_DATA drops its version field, gains lastLiquidity
	minVerOrderContainer   = 145 // PLACE_ORDER drops its version field
	minVerPendingPriceRev  = 178 // EXECUTION_DATA gains pendingPriceRevision
	minVerCMETagging       = 192 // CANCEL_ORDER drops its version field
	minVerSubmitter        = 198 // EXECUTION_DATA gains submitter
	minVerProtobuf         = 201 // binary message ids and protobuf bodies
)

// Outgoing (gateway → client) message ids.
const (
	outErrMsg                = 4
	outAcctValue             = 6
	outPortfolioValue        = 7
	outAcctUpdateTime        = 8
	outNextValidID           = 9
	outExecutionData         = 11
	outManagedAccts          = 15
	outCurrentTime           = 49
	outOpenOrderEnd          = 53
	outAcctDownloadEnd       = 54
	outExecutionDataEnd      = 55
	outCommissionReport      = 59
	outPositionData          = 61
	outPositionEnd           = 62
	outAccountSummary        = 63
	outAccountSummaryEnd     = 64
	outPositionMulti         = 71
	outPositionMultiEnd      = 72
	outAccountUpdateMulti    = 73
	outAccountUpdateMultiEnd = 74
	outPnL                   = 94
	outPnLSingle             = 95
	outCompletedOrdersEnd    = 102
)

// IB message codes the gateway sends on its own, with real TWS's texts. They
// are broker's IB codes (broker/ibcodes.go) under the names fakes had first.
const (
	CodeClientIDInUse       = broker.IBCodeClientIDInUse
	CodeConnectivityLost    = broker.IBCodeConnectivityLost
	CodeRestoredDataLost    = broker.IBCodeRestoredDataLost
	CodeRestoredMaintained  = broker.IBCodeRestoredDataMaintained
	CodeMarketDataFarmOK    = broker.IBCodeMarketDataFarmOK
	CodeHistDataFarmOK      = broker.IBCodeHistDataFarmOK
	CodeSecDefDataFarmOK    = broker.IBCodeSecDefDataFarmOK
	noticeTextUnknownPrefix = "fake gateway notice "
)

var noticeTexts = map[int64]string{
	CodeClientIDInUse:      "Unable to connect as the client id is already in use. Retry with a unique client id.",
	CodeConnectivityLost:   "Connectivity between IB and Trader Workstation has been lost.",
	CodeRestoredDataLost:   "Connectivity between IB and Trader Workstation has been restored - data lost.",
	CodeRestoredMaintained: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
	CodeMarketDataFarmOK:   "Market data farm connection is OK:usfarm",
	CodeHistDataFarmOK:     "HMDS data farm connection is OK:ushmds",
	CodeSecDefDataFarmOK:   "Sec-def data farm connection is OK:secdefnj",
}

// NoticeText returns the text real TWS sends with code (326, 1100, 1101, 1102,
// 2104, 2106, 2158), or "fake gateway notice CODE" for any other code.
func NoticeText(code int64) string {
	if s, ok := noticeTexts[code]; ok {
		return s
	}
	return noticeTextUnknownPrefix + strconv.FormatInt(code, 10)
}

// errNoAPIPrefix: the connection does not open with "API\0".
var errNoAPIPrefix = fmt.Errorf("%w: connection does not start with API\\0", broker.ErrProtocol)

// ErrFrameTooLarge is returned by ReadFrame for a frame longer than MaxFrameLen;
// it matches broker.ErrProtocol.
var ErrFrameTooLarge = fmt.Errorf("%w: frame exceeds %d bytes", broker.ErrProtocol, MaxFrameLen)

// EncodeFrame returns one TWS frame: a 4-byte big-endian payload length followed
// by each field terminated by NUL (the last one too). It panics if a field
// contains NUL or the payload would exceed MaxFrameLen or be empty, which are
// programming errors: such a frame cannot be decoded as intended.
func EncodeFrame(fields ...string) []byte {
	b, err := AppendFrame(nil, fields...)
	if err != nil {
		panic(err)
	}
	return b
}

// AppendFrame appends the frame of fields to dst. It fails, wrapping
// broker.ErrInvalidArgument, if a field contains NUL, there are no fields, or the
// payload exceeds MaxFrameLen.
func AppendFrame(dst []byte, fields ...string) ([]byte, error) {
	if len(fields) == 0 {
		return dst, fmt.Errorf("%w: a frame needs at least one field", broker.ErrInvalidArgument)
	}
	n := 0
	for i, f := range fields {
		if strings.IndexByte(f, 0) >= 0 {
			return dst, fmt.Errorf("%w: field %d contains NUL", broker.ErrInvalidArgument, i)
		}
		n += len(f) + 1
	}
	if n > MaxFrameLen {
		return dst, fmt.Errorf("%w: payload of %d bytes exceeds %d", broker.ErrInvalidArgument, n, MaxFrameLen)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	for _, f := range fields {
		dst = append(dst, f...)
		dst = append(dst, 0)
	}
	return dst, nil
}

// ReadFrame reads one frame from r and returns its fields. It never allocates
// more than the bytes actually received (plus a bounded read buffer), whatever
// length the frame claims.
//
// Errors: io.EOF if r ends before the first byte; an error matching
// io.ErrUnexpectedEOF if it ends inside a frame; ErrFrameTooLarge (matching
// broker.ErrProtocol) for a length over MaxFrameLen; an error matching
// broker.ErrProtocol for an empty payload or one whose last field is not
// NUL-terminated.
func ReadFrame(r io.Reader) ([]string, error) {
	payload, err := readPayload(r)
	if err != nil {
		return nil, err
	}
	return splitFields(payload)
}

// readPayload reads one frame and returns its payload, with ReadFrame's
// errors but for the NUL check.
func readPayload(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrameLen {
		return nil, fmt.Errorf("%w (claimed %d)", ErrFrameTooLarge, n)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", broker.ErrProtocol)
	}
	return readN(r, int64(n))
}

// readN reads exactly n bytes, growing its buffer only as data arrives.
func readN(r io.Reader, n int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(min(n, 64<<10)))
	got, err := io.CopyN(&buf, r, n)
	if got == n {
		return buf.Bytes(), nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("frame truncated after %d of %d bytes: %w", got, n, err)
}

// splitFields splits a payload into NUL-terminated fields.
func splitFields(p []byte) ([]string, error) {
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: empty frame", broker.ErrProtocol)
	}
	if p[len(p)-1] != 0 {
		return nil, fmt.Errorf("%w: last field is not NUL-terminated", broker.ErrProtocol)
	}
	parts := strings.Split(string(p[:len(p)-1]), "\x00")
	return parts, nil
}

// Handshake is what a client announces right after "API\0": the range of server
// versions it supports and its connection options ("+PACEAPI").
type Handshake struct {
	MinVersion int    // lowest server version the client accepts
	MaxVersion int    // highest server version the client accepts
	Options    string // connection options after the first space, "" if none
}

// String returns the version string as a client sends it: "v100..225" plus
// " "+Options when there are options.
func (h Handshake) String() string {
	s := "v" + strconv.Itoa(h.MinVersion) + ".." + strconv.Itoa(h.MaxVersion)
	if h.Options != "" {
		s += " " + h.Options
	}
	return s
}

// EncodeHandshake returns the bytes a client sends to open an API session:
// "API\0", a 4-byte big-endian length, and h.String().
func EncodeHandshake(h Handshake) []byte {
	s := h.String()
	b := append([]byte(apiPrefix), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[len(apiPrefix):], uint32(len(s)))
	return append(b, s...)
}

// ReadHandshake reads and parses a client's opening: "API\0", a 4-byte
// big-endian length n (at most MaxHandshakeLen) and n bytes of version string
// "vMIN[..MAX][ OPTIONS]". A missing MAX means MAX = MIN.
//
// Errors match broker.ErrProtocol for a wrong prefix, an oversized length or a
// version string that does not parse (versions are decimal digits, at most 9 of
// them, and MIN ≤ MAX), and io.EOF / io.ErrUnexpectedEOF when r ends early.
func ReadHandshake(r io.Reader) (Handshake, error) {
	var head [8]byte
	if _, err := io.ReadFull(r, head[:4]); err != nil {
		return Handshake{}, err
	}
	if string(head[:4]) != apiPrefix {
		return Handshake{}, fmt.Errorf("%w (got %q)", errNoAPIPrefix, head[:4])
	}
	if _, err := io.ReadFull(r, head[4:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Handshake{}, err
	}
	n := binary.BigEndian.Uint32(head[4:])
	if n > MaxHandshakeLen {
		return Handshake{}, fmt.Errorf("%w: version string of %d bytes exceeds %d", broker.ErrProtocol, n, MaxHandshakeLen)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Handshake{}, err
	}
	return ParseHandshake(string(b))
}

// ParseHandshake parses a version string "vMIN[..MAX][ OPTIONS]"; see ReadHandshake.
func ParseHandshake(s string) (Handshake, error) {
	bad := func(why string) (Handshake, error) {
		return Handshake{}, fmt.Errorf("%w: version string %.64q: %s", broker.ErrProtocol, s, why)
	}
	rest, ok := strings.CutPrefix(s, "v")
	if !ok {
		return bad("does not start with v")
	}
	var h Handshake
	rest, h.Options, _ = strings.Cut(rest, " ")
	lo, hi, hasHi := strings.Cut(rest, "..")
	var err error
	if h.MinVersion, err = parseVersion(lo); err != nil {
		return bad("min version: " + err.Error())
	}
	h.MaxVersion = h.MinVersion
	if hasHi {
		if h.MaxVersion, err = parseVersion(hi); err != nil {
			return bad("max version: " + err.Error())
		}
	}
	if h.MinVersion > h.MaxVersion {
		return bad("min version above max version")
	}
	return h, nil
}

func parseVersion(s string) (int, error) {
	if s == "" || len(s) > 9 || !allDigits(s) {
		return 0, errors.New("not 1 to 9 decimal digits")
	}
	return strconv.Atoi(s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
