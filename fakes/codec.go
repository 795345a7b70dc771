package fakes

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes/internal/twspb"
)

// Server versions at which the wire form of the TWS API changes (scmhub's
// server_versions.go names them MIN_SERVER_VER_PROTOBUF...; see
// docs/adr/0010-fake-gateway-server-versions.md).
const (
	// VersionRawIDs is the first version at which the message id of every
	// message, both directions, is a raw 4-byte big-endian integer instead of a
	// text field, and at which messages may carry protobuf bodies
	// (MIN_SERVER_VER_PROTOBUF). ERR_MSG is protobuf from here on.
	VersionRawIDs = 201
	// VersionProtobufAccounts: managed accounts, positions and account summary,
	// requests and answers, are protobuf (MIN_SERVER_VER_PROTOBUF_ACCOUNTS_POSITIONS).
	VersionProtobufAccounts = 207
	// VersionProtobufRest3: START_API, REQ_IDS, REQ_CURRENT_TIME and their
	// answers are protobuf (MIN_SERVER_VER_PROTOBUF_REST_MESSAGES_3).
	VersionProtobufRest3 = 213
	// protobufIDOffset is added to the message id of a protobuf message.
	protobufIDOffset = 200
)

// protoOut is the protobuf form of one outgoing message: from which version the
// gateway sends it, and how it builds it from the message's text fields (the
// id first, in the layout of the negotiated version).
type protoOut struct {
	since int
	build func(f []string) (proto.Message, error)
}

// protoOutgoing lists the outgoing messages that have a protobuf form. Every
// other message goes out as text (with a raw id from VersionRawIDs).
var protoOutgoing = map[int]protoOut{
	outErrMsg:            {VersionRawIDs, errorProto},
	outManagedAccts:      {VersionProtobufAccounts, managedAcctsProto},
	outPositionData:      {VersionProtobufAccounts, positionProto},
	outPositionEnd:       {VersionProtobufAccounts, func([]string) (proto.Message, error) { return &twspb.PositionEnd{}, nil }},
	outAccountSummary:    {VersionProtobufAccounts, accountSummaryProto},
	outAccountSummaryEnd: {VersionProtobufAccounts, accountSummaryEndProto},
	outNextValidID:       {VersionProtobufRest3, nextValidIDProto},
	outCurrentTime:       {VersionProtobufRest3, currentTimeProto},
}

// protoIn decodes the protobuf body of one incoming request into the text
// fields the same request has below VersionRawIDs (id and version first), so
// that one handler serves every version.
type protoIn func(body []byte) ([]string, error)

// protoIncoming lists the requests the gateway understands in protobuf form.
// A protobuf request not listed here is recorded with its id only.
var protoIncoming = map[int]protoIn{
	inStartAPI: func(b []byte) ([]string, error) {
		var m twspb.StartApiRequest
		if err := proto.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		return []string{itoa(inStartAPI), "2", optInt32(m.ClientId), m.GetOptionalCapabilities()}, nil
	},
	inReqIDs: func(b []byte) ([]string, error) {
		var m twspb.IdsRequest
		if err := proto.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		return []string{itoa(inReqIDs), "1", optInt32(m.NumIds)}, nil
	},
	inReqCurrentTime:  emptyRequest[*twspb.CurrentTimeRequest](inReqCurrentTime),
	inReqManagedAccts: emptyRequest[*twspb.ManagedAccountsRequest](inReqManagedAccts),
	inReqPositions:    emptyRequest[*twspb.PositionsRequest](inReqPositions),
	inCancelPositions: emptyRequest[*twspb.CancelPositions](inCancelPositions),
	inReqAccountSummary: func(b []byte) ([]string, error) {
		var m twspb.AccountSummaryRequest
		if err := proto.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		return []string{itoa(inReqAccountSummary), "1", optInt32(m.ReqId), m.GetGroup(), m.GetTags()}, nil
	},
	inCancelAccountSumm: func(b []byte) ([]string, error) {
		var m twspb.CancelAccountSummary
		if err := proto.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		return []string{itoa(inCancelAccountSumm), "1", optInt32(m.ReqId)}, nil
	},
}

// emptyRequest decodes a request whose protobuf message has no fields the fake
// uses into its text form (id, version 1).
func emptyRequest[M interface {
	proto.Message
	*P
}, P any](id int) protoIn {
	return func(b []byte) ([]string, error) {
		var p P
		if err := proto.Unmarshal(b, M(&p)); err != nil {
			return nil, err
		}
		return []string{itoa(id), "1"}, nil
	}
}

func optInt32(v *int32) string {
	if v == nil {
		return ""
	}
	return strconv.FormatInt(int64(*v), 10)
}

// encodeMessage returns the frame of one outgoing message, given as text
// fields (the message id first), in the form of server version v: NUL-ended
// text fields below VersionRawIDs; from it, a raw 4-byte id followed either by
// the remaining text fields or, when the message has a protobuf form at v,
// textOnly is false and its values fit the schema, by the protobuf body under
// id+200. Errors wrap broker.ErrInvalidArgument.
func encodeMessage(v int, fields []string, textOnly bool) ([]byte, error) {
	if v < VersionRawIDs {
		return AppendFrame(nil, fields...)
	}
	if len(fields) == 0 {
		return nil, fmt.Errorf("%w: a message needs at least its id", broker.ErrInvalidArgument)
	}
	id, err := strconv.Atoi(fields[0])
	if err != nil || id < 0 || id >= protobufIDOffset {
		return nil, fmt.Errorf("%w: message id %.20q is not an integer in 0..%d", broker.ErrInvalidArgument, fields[0], protobufIDOffset-1)
	}
	payload := make([]byte, 4, 64)
	var m proto.Message
	if po, ok := protoOutgoing[id]; ok && !textOnly && v >= po.since {
		// A scripted value the schema cannot carry (a conId or id beyond int32,
		// which a real Gateway never has) leaves m nil: the message then goes
		// out as text, which clients still decode at every version.
		if pm, err := po.build(fields); err == nil {
			m = pm
		}
	}
	if m != nil {
		var err error
		if payload, err = (proto.MarshalOptions{Deterministic: true}).MarshalAppend(payload, m); err != nil {
			return nil, fmt.Errorf("%w: message %d as protobuf: %v", broker.ErrInvalidArgument, id, err)
		}
		binary.BigEndian.PutUint32(payload, uint32(id+protobufIDOffset))
	} else {
		binary.BigEndian.PutUint32(payload, uint32(id))
		for i, f := range fields[1:] {
			if strings.IndexByte(f, 0) >= 0 {
				return nil, fmt.Errorf("%w: field %d contains NUL", broker.ErrInvalidArgument, i+1)
			}
			payload = append(append(payload, f...), 0)
		}
	}
	if len(payload) > MaxFrameLen {
		return nil, fmt.Errorf("%w: payload of %d bytes exceeds %d", broker.ErrInvalidArgument, len(payload), MaxFrameLen)
	}
	return append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(payload)), uint32(len(payload))), payload...), nil
}

// decodeRequest turns one incoming frame payload into the request's text
// fields (the id first) at server version v, and reports whether it came as
// protobuf. Errors match broker.ErrProtocol.
func decodeRequest(v int, payload []byte) (fields []string, isProto bool, err error) {
	if v < VersionRawIDs {
		fields, err = splitFields(payload)
		return fields, false, err
	}
	if len(payload) < 4 {
		return nil, false, fmt.Errorf("%w: frame of %d bytes has no 4-byte message id", broker.ErrProtocol, len(payload))
	}
	id, rest := int(binary.BigEndian.Uint32(payload)), payload[4:]
	if id >= protobufIDOffset {
		id -= protobufIDOffset
		dec, ok := protoIncoming[id]
		if !ok {
			return []string{itoa(id)}, true, nil
		}
		fields, err := dec(rest)
		if err != nil {
			return nil, true, fmt.Errorf("%w: protobuf request %d: %v", broker.ErrProtocol, id, err)
		}
		return fields, true, nil
	}
	if len(rest) == 0 {
		return []string{itoa(id)}, false, nil
	}
	tail, err := splitFields(rest)
	if err != nil {
		return nil, false, err
	}
	return append([]string{itoa(id)}, tail...), false, nil
}

// ---- outgoing protobuf builders, from the text layout of the same message ----

func parseInt32(what, s string) (*int32, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, s, err)
	}
	return proto.Int32(int32(n)), nil
}

func parseFloat(what, s string) (*float64, error) {
	if s == "" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, s, err)
	}
	return proto.Float64(f), nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return proto.String(s)
}

// errorProto: ERR_MSG in its layout from version 194: id, code, msg, json, time.
func errorProto(f []string) (proto.Message, error) {
	id, err := parseInt32("id", field(f, 1))
	if err != nil {
		return nil, err
	}
	code, err := parseInt32("code", field(f, 2))
	if err != nil {
		return nil, err
	}
	m := &twspb.ErrorMessage{Id: id, ErrorCode: code, ErrorMsg: proto.String(field(f, 3)),
		AdvancedOrderRejectJson: proto.String(field(f, 4))}
	if t := field(f, 5); t != "" {
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("error time %q: %w", t, err)
		}
		m.ErrorTime = proto.Int64(ms)
	}
	return m, nil
}

func managedAcctsProto(f []string) (proto.Message, error) {
	return &twspb.ManagedAccounts{AccountsList: proto.String(field(f, 2))}, nil
}

func nextValidIDProto(f []string) (proto.Message, error) {
	id, err := parseInt32("order id", field(f, 2))
	return &twspb.NextValidId{OrderId: id}, err
}

func currentTimeProto(f []string) (proto.Message, error) {
	t, err := strconv.ParseInt(field(f, 2), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("time %q: %w", field(f, 2), err)
	}
	return &twspb.CurrentTime{CurrentTime: proto.Int64(t)}, nil
}

// positionProto: POSITION_DATA version 3 (see positionFields). The quantity
// stays text, as in the schema; the average cost, strike and multiplier become
// doubles.
func positionProto(f []string) (proto.Message, error) {
	c, err := contractAt(f, 3)
	if err != nil {
		return nil, err
	}
	cost, err := parseFloat("average cost", field(f, 15))
	if err != nil {
		return nil, err
	}
	return &twspb.Position{Account: proto.String(field(f, 2)), Contract: c, Position: optString(field(f, 14)),
		AvgCost: cost}, nil
}

func accountSummaryProto(f []string) (proto.Message, error) {
	id, err := parseInt32("req id", field(f, 2))
	if err != nil {
		return nil, err
	}
	return &twspb.AccountSummary{ReqId: id, Account: proto.String(field(f, 3)), Tag: proto.String(field(f, 4)),
		Value: proto.String(field(f, 5)), Currency: proto.String(field(f, 6))}, nil
}

func accountSummaryEndProto(f []string) (proto.Message, error) {
	id, err := parseInt32("req id", field(f, 2))
	return &twspb.AccountSummaryEnd{ReqId: id}, err
}
