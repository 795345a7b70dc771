package conformance

import (
	"context"
	"slices"

	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
)

// The state machine's actions of the read side, each modelled from the Script.

// accountUpdatesCall reads one account that both the session and the
// gateway's current Script manage (or one nobody manages) and compares with
// the Script; the update time is the gateway's and only its form is checked.
func (m *machine) accountUpdatesCall(t *rapid.T) {
	accounts := []string{"DU0000000"}
	for _, a := range m.script.Accounts {
		if slices.Contains(m.accounts, a) || !m.connected {
			accounts = append(accounts, a)
		}
	}
	acct := rapid.SampledFrom(accounts).Draw(t, "account")
	ctx, cancel := m.ctx(t)
	defer cancel()
	got, err := m.b.AccountUpdates(ctx, acct)
	want, managed := m.script.AccountUpdate(acct)
	wantErr := m.wantErr()
	if wantErr == nil && !managed {
		wantErr = broker.ErrInvalidArgument
	}
	if err == nil {
		if !updateTime.MatchString(got.UpdateTime) {
			t.Fatalf("AccountUpdates(%q): update time %q, want HH:MM", acct, got.UpdateTime)
		}
		want.UpdateTime = got.UpdateTime
	}
	if e := compare(err, wantErr, want, got); e != nil {
		t.Fatalf("AccountUpdates(%q): %v", acct, e)
	}
}

// executionsCall reads the executions with a filter drawn from the Script's
// own values (or none) and compares with the Script.
func (m *machine) executionsCall(t *rapid.T) {
	var f broker.ExecutionFilter
	if xs := m.script.Executions; len(xs) > 0 && rapid.Bool().Draw(t, "filtered") {
		x := rapid.SampledFrom(xs).Draw(t, "like")
		switch rapid.IntRange(0, 2).Draw(t, "by") {
		case 0:
			f.Symbol = x.Contract.Symbol
		case 1:
			f.Account = x.Account
		default:
			f.ClientID = x.ClientID
		}
	}
	ctx, cancel := m.ctx(t)
	defer cancel()
	got, err := m.b.Executions(ctx, f)
	if e := compare(err, m.wantErr(), m.script.ExecutionsMatching(f), got); e != nil {
		t.Fatalf("Executions(%+v): %v", f, e)
	}
}

// streamCall subscribes to an account both sides manage (when the Broker is an
// AccountStreamer), expects its first state to be the model's, then ends the
// subscription and expects the channel closed.
func (m *machine) streamCall(t *rapid.T) {
	as, ok := m.b.(broker.AccountStreamer)
	if !ok {
		t.Skip("the Broker does not implement broker.AccountStreamer")
	}
	var accounts []string
	for _, a := range m.script.Accounts {
		if slices.Contains(m.accounts, a) || !m.connected {
			accounts = append(accounts, a)
		}
	}
	if len(accounts) == 0 {
		t.Skip("no account managed by both the session and the script")
	}
	acct := rapid.SampledFrom(accounts).Draw(t, "streamAccount")
	ctx, cancel := m.ctx(t)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ch, err := as.SubscribeAccountUpdates(sctx, acct)
	if e := compare(err, m.wantErr(), true, err == nil); e != nil {
		t.Fatalf("SubscribeAccountUpdates(%q): %v", acct, e)
	}
	if err != nil {
		return
	}
	want, _ := m.script.AccountUpdate(acct)
	select {
	case u, open := <-ch:
		if !open {
			t.Fatalf("SubscribeAccountUpdates(%q): closed before its first state", acct)
		}
		want.UpdateTime = u.UpdateTime
		if e := compare(nil, nil, want, u); e != nil {
			t.Fatalf("SubscribeAccountUpdates(%q) first state: %v", acct, e)
		}
	case <-ctx.Done():
		t.Fatalf("SubscribeAccountUpdates(%q): no first state: %v", acct, ctx.Err())
	}
	stop()
	if !drained(ch, CallTimeout) {
		t.Fatalf("SubscribeAccountUpdates(%q): channel open %v after its ctx ended", acct, CallTimeout)
	}
}
