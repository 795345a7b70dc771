package fakes_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// The frame codec is a supported API for tests that speak TWS by hand (a raw
// client, a recorded exchange, a fuzzer): AppendFrame and EncodeFrame write a
// frame, ReadFrame reads one back, and bad frames are typed errors.
func ExampleReadFrame() {
	var wire bytes.Buffer
	frame, err := fakes.AppendFrame(nil, "49", "1") // REQ_CURRENT_TIME, version 1
	if err != nil {
		fmt.Println(err)
		return
	}
	wire.Write(frame)
	wire.Write(fakes.EncodeFrame("4", "2", "-1", "2104", "Market data farm connection is OK:usfarm", ""))

	for {
		fields, err := fakes.ReadFrame(&wire)
		if err != nil {
			fmt.Println("end:", err)
			break
		}
		fmt.Printf("%d fields: %q\n", len(fields), fields)
	}

	_, err = fakes.AppendFrame(nil, "bad\x00field")
	fmt.Println(errors.Is(err, broker.ErrInvalidArgument))
	_, err = fakes.ReadFrame(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}))
	fmt.Println(errors.Is(err, fakes.ErrFrameTooLarge), errors.Is(err, broker.ErrProtocol))
	// Output:
	// 2 fields: ["49" "1"]
	// 6 fields: ["4" "2" "-1" "2104" "Market data farm connection is OK:usfarm" ""]
	// end: EOF
	// true
	// true true
}

// A client's opening names the server versions it accepts and its options;
// EncodeHandshake writes it, ReadHandshake reads it back.
func ExampleParseHandshake() {
	h, err := fakes.ParseHandshake("v100..193 +PACEAPI")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(h.MinVersion, h.MaxVersion, h.Options)
	back, err := fakes.ReadHandshake(bytes.NewReader(fakes.EncodeHandshake(h)))
	fmt.Println(back == h, err)
	_, err = fakes.ParseHandshake("v200..100")
	fmt.Println(errors.Is(err, broker.ErrProtocol))
	// Output:
	// 100 193 +PACEAPI
	// true <nil>
	// true
}

// WaitRequest tells a test that a request has reached the gateway — the call
// that sent it is in flight — without sleeping.
func ExampleGateway_WaitRequest() {
	g, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	nc, err := net.Dial("tcp", g.Addr())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	_, _ = nc.Write(fakes.EncodeHandshake(fakes.Handshake{MinVersion: 100, MaxVersion: 193}))
	_, _ = nc.Write(fakes.EncodeFrame(strconv.Itoa(fakes.MsgStartAPI), "2", "1", ""))
	_, _ = nc.Write(fakes.EncodeFrame(strconv.Itoa(fakes.MsgReqPositions), "1"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := g.WaitRequest(ctx, fakes.MsgReqPositions)
	fmt.Println(req.Fields, err)
	// Output: [61 1] <nil>
}
