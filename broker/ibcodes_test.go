package broker_test

import (
	"errors"
	"testing"

	"github.com/brokerkit/brokerkit/broker"
)

func TestIsClientIBCode(t *testing.T) {
	for code, want := range map[int64]bool{
		500: false, broker.IBCodeClientFirst: true, broker.IBCodeConnectFail: true,
		broker.IBCodeNotConnected: true, broker.IBCodeClientLast: true, 600: false,
		broker.IBCodeClientIDInUse: false, broker.IBCodeConnectivityLost: false,
	} {
		if got := broker.IsClientIBCode(code); got != want {
			t.Errorf("IsClientIBCode(%d) = %v, want %v", code, got, want)
		}
	}
}

// TestNamedCodesMatchSentinels: the named IB codes and wire codes are the ones
// the sentinels are matched and encoded with.
func TestNamedCodesMatchSentinels(t *testing.T) {
	for _, tc := range []struct {
		ib   int64
		want error
		wire string
	}{
		{broker.IBCodeClientIDInUse, broker.ErrClientIDInUse, broker.CodeClientIDInUse},
		{broker.IBCodeConnectFail, broker.ErrGatewayUnreachable, broker.CodeGatewayUnreachable},
		{broker.IBCodeNotConnected, broker.ErrNotConnected, broker.CodeNotConnected},
		{broker.IBCodeConnectivityLost, broker.ErrNotConnected, broker.CodeNotConnected},
	} {
		err := &broker.APIError{ReqID: -1, Code: tc.ib}
		if !errors.Is(err, tc.want) {
			t.Errorf("IB code %d does not match %v", tc.ib, tc.want)
		}
		if got := broker.ErrorCode(err); got != tc.wire {
			t.Errorf("ErrorCode(IB %d) = %q, want %q", tc.ib, got, tc.wire)
		}
	}
}
