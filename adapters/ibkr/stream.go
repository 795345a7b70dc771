package ibkr

import (
	"context"
	"fmt"
	"slices"

	"github.com/brokerkit/brokerkit/broker"
)

// The account updates stream (broker.AccountStreamer). The gateway serves one
// REQ_ACCOUNT_UPDATES subscription per client, so a session holds at most one
// stream, shared by every subscriber of that account; the one-shot
// AccountUpdates of the same account is answered from it, and one of another
// account fails with broker.ErrUnsupported while it lasts. The stream's rows
// are merged into one state (listReq's merge) and every subscriber gets the
// whole state after the first download and after each later row, newest only
// (broker.Latest). The last subscriber to leave unsubscribes on the wire; the
// session's end closes every subscriber's channel.

// acctStream is the account updates subscription of a session. Guarded by s.mu.
type acctStream struct {
	state      *listReq // the merged state; its account names the stream's
	downloaded bool     // ACCT_DOWNLOAD_END has arrived
	subs       map[*acctSub]struct{}
}

// acctSub is one subscriber: its channel and the stop of its ctx watch.
type acctSub struct {
	ch   chan broker.AccountUpdate
	stop func() bool
}

var _ broker.AccountStreamer = (*Adapter)(nil)

// SubscribeAccountUpdates implements broker.AccountStreamer with one
// REQ_ACCOUNT_UPDATES subscription per session (see stream.go). A subscription
// of another account while one is open fails with broker.ErrUnsupported.
func (a *Adapter) SubscribeAccountUpdates(ctx context.Context, account string) (<-chan broker.AccountUpdate, error) {
	s, err := a.live()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if account, err = managedAccount(s, account); err != nil {
		return nil, err
	}
	sub := &acctSub{ch: make(chan broker.AccountUpdate, 1)}
	if joined, err := s.joinStream(account, sub); joined || err != nil {
		return s.watchSub(ctx, sub, err)
	}
	select {
	case a.listSlots[listAccount] <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("ibkr: account updates stream: %w", ctx.Err())
	case <-s.dead:
		return nil, s.deadError()
	}
	defer func() { <-a.listSlots[listAccount] }()
	if joined, err := s.joinStream(account, sub); joined || err != nil { // opened meanwhile
		return s.watchSub(ctx, sub, err)
	}
	if err := s.fenceList(ctx, listAccount); err != nil {
		return nil, fmt.Errorf("ibkr: account updates stream: %w", err)
	}
	s.mu.Lock()
	if s.deadErr != nil {
		defer s.mu.Unlock()
		return nil, s.deadErr
	}
	r := newListReq()
	r.account = account
	r.upd = broker.AccountUpdate{Account: account, Values: []broker.AccountValue{}, Portfolio: []broker.PortfolioItem{}}
	st := &acctStream{state: r, subs: map[*acctSub]struct{}{sub: {}}}
	s.stream = st
	s.mu.Unlock()
	if err := s.sendLocked(reqAccountUpdates(true, account)); err != nil {
		s.mu.Lock()
		if s.stream == st {
			s.stream = nil
		}
		s.mu.Unlock()
		return nil, err
	}
	return s.watchSub(ctx, sub, nil)
}

// managedAccount resolves account ("" for the only one) against the session's
// accounts, or fails with broker.ErrInvalidArgument.
func managedAccount(s *session, account string) (string, error) {
	accounts := s.info().Accounts
	if account == "" && len(accounts) == 1 {
		account = accounts[0]
	}
	if !slices.Contains(accounts, account) {
		return "", fmt.Errorf("%w: account %q is not managed by this session", broker.ErrInvalidArgument, account)
	}
	return account, nil
}

// joinStream adds sub to the session's stream if there is one for account
// (handing it the state if downloaded), and fails if it streams another one.
func (s *session) joinStream(account string, sub *acctSub) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st := s.stream; {
	case s.deadErr != nil:
		return false, s.deadErr
	case st == nil:
		return false, nil
	case st.state.account != account:
		return false, fmt.Errorf("%w: the gateway streams one account at a time and %q is streaming", broker.ErrUnsupported, st.state.account)
	default:
		st.subs[sub] = struct{}{}
		if st.downloaded {
			broker.Latest(sub.ch, st.state.upd.Clone())
		}
		return true, nil
	}
}

// watchSub ends sub when ctx is done, or returns err.
func (s *session) watchSub(ctx context.Context, sub *acctSub, err error) (<-chan broker.AccountUpdate, error) {
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	sub.stop = context.AfterFunc(ctx, func() { s.leaveStream(sub) })
	s.mu.Unlock()
	return sub.ch, nil
}

// leaveStream removes sub and closes its channel; the last subscriber to
// leave unsubscribes on the wire.
func (s *session) leaveStream(sub *acctSub) {
	s.mu.Lock()
	st := s.stream
	if st == nil {
		s.mu.Unlock()
		return
	}
	if _, ok := st.subs[sub]; !ok {
		s.mu.Unlock()
		return
	}
	delete(st.subs, sub)
	close(sub.ch)
	last := len(st.subs) == 0
	if last {
		s.stream = nil
		s.listStale[listAccount] = true // its rows may still be in flight
	}
	s.mu.Unlock()
	if last {
		_ = s.sendLocked(reqAccountUpdates(false, st.state.account))
	}
}

// endStreamLocked closes every subscriber's channel (the session is over).
func (s *session) endStreamLocked() {
	if st := s.stream; st != nil {
		for sub := range st.subs {
			if sub.stop != nil {
				sub.stop()
			}
			close(sub.ch)
		}
		s.stream = nil
	}
}

// streamRowLocked returns the stream's state if account is the stream's, for
// a row to merge into; publishStreamLocked then hands the new state out.
func (s *session) streamRowLocked(account string) *listReq {
	if st := s.stream; st != nil && st.state.account == account {
		return st.state
	}
	return nil
}

func (s *session) publishStreamLocked() {
	st := s.stream
	if st == nil || !st.downloaded {
		return
	}
	for sub := range st.subs {
		broker.Latest(sub.ch, st.state.upd.Clone())
	}
}

// streamedUpdate answers a one-shot AccountUpdates while a stream is open:
// from the stream for its account (waiting for its first download), with
// broker.ErrUnsupported for another. ok is false without a stream.
func (s *session) streamedUpdate(ctx context.Context, account string) (u broker.AccountUpdate, ok bool, err error) {
	s.mu.Lock()
	st := s.stream
	if st == nil {
		s.mu.Unlock()
		return broker.AccountUpdate{}, false, nil
	}
	if st.state.account == account && st.downloaded {
		defer s.mu.Unlock()
		return st.state.upd.Clone(), true, nil
	}
	s.mu.Unlock()
	sub := &acctSub{ch: make(chan broker.AccountUpdate, 1)}
	if _, err := s.joinStream(account, sub); err != nil {
		return broker.AccountUpdate{}, true, err
	}
	defer s.leaveStream(sub)
	select {
	case u, open := <-sub.ch:
		if !open {
			return broker.AccountUpdate{}, true, s.deadError()
		}
		return u, true, nil
	case <-ctx.Done():
		return broker.AccountUpdate{}, true, fmt.Errorf("ibkr: account updates: %w", ctx.Err())
	case <-s.dead:
		return broker.AccountUpdate{}, true, s.deadError()
	}
}
