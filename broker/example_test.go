package broker_test

import (
	"errors"
	"fmt"

	"github.com/brokerkit/brokerkit/broker"
)

func ExampleParseDecimal() {
	q, _ := broker.ParseDecimal("0010.500")
	fmt.Println(q, q.Equal(broker.MustDecimal("10.5")))
	// Output: 10.5 true
}

func ExampleErrorFromCode() {
	// One side of a transport sends the code, the message and IB's code...
	err := fmt.Errorf("connect: %w", &broker.APIError{ReqID: -1, Code: 326, Message: "client id in use"})
	code, msg, ib := broker.ErrorCode(err), err.Error(), broker.IBCode(err)
	// ...and the other side gets back an error that matches the same sentinel.
	back := broker.ErrorFromCode(code, msg, ib)
	fmt.Println(code, errors.Is(back, broker.ErrClientIDInUse), broker.IBCode(back))
	// Output: client_id_in_use true 326
}
