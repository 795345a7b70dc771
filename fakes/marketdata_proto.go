package fakes

// This file holds the protobuf forms of the market data messages (from
// versionProtobufMarketData), built from the text fields messages.go lays out.

import (
	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/fakes/internal/twspb"
)

// reqAndTickType reads the request id and tick type of a TICK_* message's text
// fields (id, version, req id, tick type, ...).
func reqAndTickType(f []string) (id, tt *int32, err error) {
	if id, err = parseInt32("req id", field(f, 2)); err != nil {
		return nil, nil, err
	}
	tt, err = parseInt32("tick type", field(f, 3))
	return id, tt, err
}

func tickPriceProto(f []string) (proto.Message, error) {
	id, tt, err := reqAndTickType(f)
	if err != nil {
		return nil, err
	}
	p, err := parseFloat("price", field(f, 4))
	if err != nil {
		return nil, err
	}
	return &twspb.TickPrice{ReqId: id, TickType: tt, Price: p, Size: optString(field(f, 5)), AttrMask: proto.Int32(0)}, nil
}

func tickSizeProto(f []string) (proto.Message, error) {
	id, tt, err := reqAndTickType(f)
	return &twspb.TickSize{ReqId: id, TickType: tt, Size: optString(field(f, 4))}, err
}

func tickStringProto(f []string) (proto.Message, error) {
	id, tt, err := reqAndTickType(f)
	return &twspb.TickString{ReqId: id, TickType: tt, Value: proto.String(field(f, 4))}, err
}

func tickGenericProto(f []string) (proto.Message, error) {
	id, tt, err := reqAndTickType(f)
	if err != nil {
		return nil, err
	}
	val, err := parseFloat("value", field(f, 4))
	return &twspb.TickGeneric{ReqId: id, TickType: tt, Value: val}, err
}

func marketDataTypeProto(f []string) (proto.Message, error) {
	id, err := parseInt32("req id", field(f, 2))
	if err != nil {
		return nil, err
	}
	t, err := parseInt32("type", field(f, 3))
	return &twspb.MarketDataType{ReqId: id, MarketDataType: t}, err
}

func tickReqParamsProto(f []string) (proto.Message, error) {
	id, err := parseInt32("req id", field(f, 1))
	if err != nil {
		return nil, err
	}
	perm, err := parseInt32("snapshot permissions", field(f, 4))
	return &twspb.TickReqParams{ReqId: id, MinTick: optString(field(f, 2)), BboExchange: optString(field(f, 3)),
		SnapshotPermissions: perm}, err
}
