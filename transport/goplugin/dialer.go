package goplugin

import (
	"context"

	"github.com/brokerkit/brokerkit/broker"
)

// Dialer returns a function that starts a fresh child with opts on each call,
// shaped to be a robust.Dialer:
//
//	b := robust.New(goplugin.Dialer(goplugin.WithSelf()))
//
// A failed start yields a plain nil Broker, never a nil *Client inside the
// interface (which a caller's b != nil would take for a Broker).
func Dialer(opts ...Option) func(context.Context) (broker.Broker, error) {
	return func(ctx context.Context) (broker.Broker, error) {
		c, err := Start(ctx, opts...)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}
