package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/robust"
)

// workerFlags are the flags of `brokerkit worker` that put robust inside the
// worker. The wiring lives here, not in transport/stdiojson: transports and
// robust import broker only (ADR 0001), and RunWorker takes any Broker factory.
type workerFlags struct {
	robust         *bool
	policy         *string
	span           *int
	maxAttempts    *int
	attemptTimeout *time.Duration
	healthInterval *time.Duration
	healthTimeout  *time.Duration
	healthMisses   *int
	breaker        *int
	cooldown       *time.Duration
}

func robustWorkerFlags(fs *flag.FlagSet) *workerFlags {
	return &workerFlags{
		robust:         fs.Bool("robust", false, "serve the adapter inside robust: reconnect, retry idempotent requests, health-check (ADR 0008)"),
		policy:         fs.String("client-id-policy", "same", "with --robust: after IB 326 (client id in use) retry with the same id or the next ids (same|next)"),
		span:           fs.Int("client-id-span", 8, "with --client-id-policy next: how many ids to cycle through from the requested one"),
		maxAttempts:    fs.Int("max-attempts", robust.DefaultMaxAttempts, "with --robust: attempts of an idempotent request, the first included"),
		attemptTimeout: fs.Duration("attempt-timeout", robust.DefaultAttemptTimeout, "with --robust: bound on each attempt (0: only the host's cancel)"),
		healthInterval: fs.Duration("health-interval", robust.DefaultHealthInterval, "with --robust: ping the session this often (0: never)"),
		healthTimeout:  fs.Duration("health-timeout", robust.DefaultHealthTimeout, "with --robust: a health ping slower than this is missed"),
		healthMisses:   fs.Int("health-misses", robust.DefaultHealthMisses, "with --robust: missed pings before the session is rebuilt"),
		breaker:        fs.Int("breaker-threshold", robust.DefaultBreakerThreshold, "with --robust: consecutive failures that open the circuit breaker (0: no breaker)"),
		cooldown:       fs.Duration("breaker-cooldown", robust.DefaultBreakerCooldown, "with --robust: how long the open breaker waits before a probe"),
	}
}

// clientIDPolicy returns the robust policy named by --client-id-policy.
func (f *workerFlags) clientIDPolicy() (robust.ClientIDPolicy, error) {
	switch *f.policy {
	case "same":
		return robust.SameClientID, nil
	case "next":
		if *f.span < 1 {
			return nil, fmt.Errorf("%w: --client-id-span must be at least 1", errUsage)
		}
		return robust.NextClientID(*f.span), nil
	default:
		return nil, fmt.Errorf("%w: --client-id-policy %q (want same or next)", errUsage, *f.policy)
	}
}

// factory returns the worker's Broker factory: the bare adapter, or the adapter
// inside robust.New, whose Dialer builds a fresh adapter for every recovery that
// needs one (a stalled handshake, a dead session).
func (f *workerFlags) factory(log hclog.Logger) (func() broker.Broker, error) {
	policy, err := f.clientIDPolicy()
	if err != nil {
		return nil, err
	}
	for name, d := range map[string]time.Duration{"attempt-timeout": *f.attemptTimeout, "health-interval": *f.healthInterval,
		"health-timeout": *f.healthTimeout, "breaker-cooldown": *f.cooldown} {
		if d < 0 {
			return nil, fmt.Errorf("%w: --%s must not be negative", errUsage, name)
		}
	}
	adapter := func() broker.Broker { return ibkr.New(ibkr.WithLogger(log.Named("ibkr"))) }
	if !*f.robust {
		return adapter, nil
	}
	opts := []robust.Option{
		robust.WithLogger(log),
		robust.WithClientIDPolicy(policy),
		robust.WithMaxAttempts(*f.maxAttempts),
		robust.WithAttemptTimeout(*f.attemptTimeout),
		robust.WithHealthCheck(*f.healthInterval, *f.healthTimeout, *f.healthMisses),
		robust.WithBreaker(*f.breaker, *f.cooldown),
	}
	return func() broker.Broker {
		return robust.New(func(context.Context) (broker.Broker, error) { return adapter(), nil }, opts...)
	}, nil
}
