// The JSON form of a Script: LoadScript, ParseScript and the snake_case shapes they decode strictly.

package fakes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// LoadScript reads and parses a JSON script file (see ParseScript).
func LoadScript(path string) (Script, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Script{}, fmt.Errorf("fakes: load script: %w", err)
	}
	s, err := ParseScript(b)
	if err != nil {
		return Script{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseScript parses a JSON script. Unknown fields, decimals that are not JSON
// strings, bad durations, trailing data and scripts that fail Validate are
// errors wrapping broker.ErrInvalidArgument.
func ParseScript(b []byte) (Script, error) {
	var s Script
	if err := s.UnmarshalJSON(b); err != nil {
		return Script{}, err
	}
	if err := s.Validate(); err != nil {
		return Script{}, err
	}
	return s, nil
}

// JSON shapes. Keys are snake_case; decimals are strings; durations are Go
// duration strings.
type (
	jsonScript struct {
		ServerVersion int              `json:"server_version,omitempty"`
		Accounts      []string         `json:"accounts"`
		NextValidID   int64            `json:"next_valid_id,omitempty"`
		Positions     []jsonPos        `json:"positions"`
		Summary       []jsonSummary    `json:"summary"`
		Marks         []jsonMark       `json:"marks,omitempty"`
		Executions    []jsonExecution  `json:"executions,omitempty"`
		Instruments   []jsonInstrument `json:"instruments,omitempty"`
		Quotes        []jsonOrderQuote `json:"quotes,omitempty"`
		ReadOnlyAPI   bool             `json:"read_only_api,omitempty"`
		Pacing        *jsonPacing      `json:"pacing,omitempty"`
		Faults        *jsonFaults      `json:"faults,omitempty"`
	}
	jsonPos struct {
		Account  string       `json:"account"`
		Contract jsonContract `json:"contract"`
		Quantity string       `json:"quantity"`
		AvgCost  string       `json:"avg_cost"`
	}
	jsonContract struct {
		ConID        int64  `json:"con_id"`
		Symbol       string `json:"symbol"`
		SecType      string `json:"sec_type"`
		Expiry       string `json:"expiry,omitempty"`
		Strike       string `json:"strike,omitempty"`
		Right        string `json:"right,omitempty"`
		Multiplier   string `json:"multiplier,omitempty"`
		Exchange     string `json:"exchange,omitempty"`
		Currency     string `json:"currency,omitempty"`
		LocalSymbol  string `json:"local_symbol,omitempty"`
		TradingClass string `json:"trading_class,omitempty"`
	}
	jsonSummary struct {
		Account string                    `json:"account"`
		Values  map[string]jsonSummaryVal `json:"values"`
	}
	jsonSummaryVal struct {
		Value    string `json:"value"`
		Currency string `json:"currency,omitempty"`
	}
	jsonFaults struct {
		StallHandshake         bool              `json:"stall_handshake,omitempty"`
		CloseBeforeHandshake   bool              `json:"close_before_handshake,omitempty"`
		ShortHandshake         bool              `json:"short_handshake,omitempty"`
		EmptyHandshake         bool              `json:"empty_handshake,omitempty"`
		CloseAfterMessages     int               `json:"close_after_messages,omitempty"`
		ReplyDelay             string            `json:"reply_delay,omitempty"`
		MalformedAfterRequests int               `json:"malformed_after_requests,omitempty"`
		MalformedFields        []string          `json:"malformed_fields,omitempty"`
		HalfOpenAfterRequests  int               `json:"half_open_after_requests,omitempty"`
		UnansweredRequest      int               `json:"unanswered_request,omitempty"`
		EmptyFrameRequest      int               `json:"empty_frame_request,omitempty"`
		NoEndMarkerRequest     int               `json:"no_end_marker_request,omitempty"`
		EndlessPositions       bool              `json:"endless_positions,omitempty"`
		Notices                []jsonNotice      `json:"notices,omitempty"`
		RefuseClientIDs        []int64           `json:"refuse_client_ids,omitempty"`
		Market                 *jsonMarketFaults `json:"market,omitempty"`
		DropAfterOrder         int               `json:"drop_after_order,omitempty"`
		AckDelay               string            `json:"ack_delay,omitempty"`
	}
	jsonNotice struct {
		After   string `json:"after"`
		Code    int64  `json:"code"`
		Message string `json:"message,omitempty"`
	}
)

// MarshalJSON encodes s in the JSON form ParseScript reads.
func (s Script) MarshalJSON() ([]byte, error) {
	j := jsonScript{ServerVersion: s.ServerVersion, Accounts: s.Accounts, NextValidID: s.NextValidID,
		Positions: []jsonPos{}, Summary: []jsonSummary{}}
	if j.Accounts == nil {
		j.Accounts = []string{}
	}
	for _, p := range s.Positions {
		j.Positions = append(j.Positions, jsonPos{Account: p.Account, Contract: marshalContract(p.Contract),
			Quantity: p.Quantity.String(), AvgCost: p.AvgCost.String()})
	}
	j.Marks, j.Executions = marshalMarks(s.Marks), marshalExecutions(s.Executions)
	j.Instruments, j.Pacing = marshalInstruments(s.Instruments), marshalPacing(s.Pacing)
	j.Quotes, j.ReadOnlyAPI = marshalQuotes(s.Quotes), s.ReadOnlyAPI
	for _, a := range s.Summary {
		js := jsonSummary{Account: a.Account, Values: map[string]jsonSummaryVal{}}
		for tag, v := range a.Values {
			js.Values[tag] = jsonSummaryVal(v)
		}
		j.Summary = append(j.Summary, js)
	}
	f := s.Faults
	jf := jsonFaults{StallHandshake: f.StallHandshake, CloseBeforeHandshake: f.CloseBeforeHandshake,
		ShortHandshake: f.ShortHandshake, EmptyHandshake: f.EmptyHandshake,
		CloseAfterMessages: f.CloseAfterMessages, MalformedAfterRequests: f.MalformedAfterRequests,
		MalformedFields: f.MalformedFields, HalfOpenAfterRequests: f.HalfOpenAfterRequests,
		UnansweredRequest: f.UnansweredRequest, NoEndMarkerRequest: f.NoEndMarkerRequest, EmptyFrameRequest: f.EmptyFrameRequest,
		EndlessPositions: f.EndlessPositions, RefuseClientIDs: f.RefuseClientIDs, DropAfterOrder: f.DropAfterOrder}
	if f.ReplyDelay != 0 {
		jf.ReplyDelay = f.ReplyDelay.String()
	}
	if f.AckDelay != 0 {
		jf.AckDelay = f.AckDelay.String()
	}
	for _, n := range f.Notices {
		jf.Notices = append(jf.Notices, jsonNotice{After: n.After.String(), Code: n.Code, Message: n.Message})
	}
	jf.Market = marshalMarketFaults(f.Market)
	if !jsonFaultsZero(jf) || jf.Market != nil {
		j.Faults = &jf
	}
	return json.Marshal(j)
}

func marshalContract(c broker.Contract) jsonContract {
	jc := jsonContract{ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Expiry: c.Expiry, Right: c.Right,
		Multiplier: c.Multiplier, Exchange: c.Exchange, Currency: c.Currency, LocalSymbol: c.LocalSymbol,
		TradingClass: c.TradingClass}
	if !c.Strike.IsZero() {
		jc.Strike = c.Strike.String()
	}
	return jc
}

func jsonFaultsZero(f jsonFaults) bool {
	return !f.StallHandshake && !f.CloseBeforeHandshake && !f.ShortHandshake && !f.EmptyHandshake &&
		f.CloseAfterMessages == 0 && f.ReplyDelay == "" &&
		f.MalformedAfterRequests == 0 && f.MalformedFields == nil && f.HalfOpenAfterRequests == 0 &&
		f.UnansweredRequest == 0 && f.NoEndMarkerRequest == 0 && f.EmptyFrameRequest == 0 && !f.EndlessPositions &&
		f.Notices == nil && f.RefuseClientIDs == nil && f.DropAfterOrder == 0 && f.AckDelay == ""
}

// UnmarshalJSON decodes the JSON form strictly (unknown fields are errors); it
// does not Validate, ParseScript does.
func (s *Script) UnmarshalJSON(b []byte) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: script: "+format, append([]any{broker.ErrInvalidArgument}, a...)...)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j jsonScript
	if err := dec.Decode(&j); err != nil {
		return bad("%v", err)
	}
	if dec.More() {
		return bad("trailing data after the JSON object")
	}
	out := Script{ServerVersion: j.ServerVersion, Accounts: j.Accounts, NextValidID: j.NextValidID}
	dec10 := func(what, v string, zeroOK bool) (broker.Decimal, error) {
		if v == "" && zeroOK {
			return broker.Decimal{}, nil
		}
		d, err := broker.ParseDecimal(v)
		if err != nil {
			return d, bad("%s: %v", what, err)
		}
		return d, nil
	}
	for i, p := range j.Positions {
		c := p.Contract
		pos := broker.Position{Account: p.Account, Contract: broker.Contract{ConID: c.ConID, Symbol: c.Symbol,
			SecType: c.SecType, Expiry: c.Expiry, Right: c.Right, Multiplier: c.Multiplier, Exchange: c.Exchange,
			Currency: c.Currency, LocalSymbol: c.LocalSymbol, TradingClass: c.TradingClass}}
		var err error
		if pos.Contract.Strike, err = dec10(fmt.Sprintf("position %d strike", i), c.Strike, true); err != nil {
			return err
		}
		if pos.Quantity, err = dec10(fmt.Sprintf("position %d quantity", i), p.Quantity, false); err != nil {
			return err
		}
		if pos.AvgCost, err = dec10(fmt.Sprintf("position %d avg_cost", i), p.AvgCost, false); err != nil {
			return err
		}
		out.Positions = append(out.Positions, pos)
	}
	for _, a := range j.Summary {
		as := broker.AccountSummary{Account: a.Account, Values: map[string]broker.SummaryValue{}}
		for tag, v := range a.Values {
			as.Values[tag] = broker.SummaryValue(v)
		}
		out.Summary = append(out.Summary, as)
	}
	var err error
	if out.Marks, err = unmarshalMarks(j.Marks, bad); err != nil {
		return err
	}
	if out.Executions, err = unmarshalExecutions(j.Executions, bad); err != nil {
		return err
	}
	if out.Instruments, err = unmarshalInstruments(j.Instruments, bad); err != nil {
		return err
	}
	if out.Pacing, err = unmarshalPacing(j.Pacing, bad); err != nil {
		return err
	}
	if out.Quotes, err = unmarshalQuotes(j.Quotes, bad); err != nil {
		return err
	}
	out.ReadOnlyAPI = j.ReadOnlyAPI
	if jf := j.Faults; jf != nil {
		f := Faults{StallHandshake: jf.StallHandshake, CloseBeforeHandshake: jf.CloseBeforeHandshake,
			ShortHandshake: jf.ShortHandshake, EmptyHandshake: jf.EmptyHandshake,
			CloseAfterMessages: jf.CloseAfterMessages, MalformedAfterRequests: jf.MalformedAfterRequests,
			MalformedFields: jf.MalformedFields, HalfOpenAfterRequests: jf.HalfOpenAfterRequests,
			UnansweredRequest: jf.UnansweredRequest, NoEndMarkerRequest: jf.NoEndMarkerRequest, EmptyFrameRequest: jf.EmptyFrameRequest,
			EndlessPositions: jf.EndlessPositions, RefuseClientIDs: jf.RefuseClientIDs, DropAfterOrder: jf.DropAfterOrder}
		if jf.AckDelay != "" {
			d, err := time.ParseDuration(jf.AckDelay)
			if err != nil {
				return bad("faults.ack_delay: %v", err)
			}
			f.AckDelay = d
		}
		if jf.ReplyDelay != "" {
			d, err := time.ParseDuration(jf.ReplyDelay)
			if err != nil {
				return bad("faults.reply_delay: %v", err)
			}
			f.ReplyDelay = d
		}
		if f.Market, err = unmarshalMarketFaults(jf.Market, bad); err != nil {
			return err
		}
		for i, n := range jf.Notices {
			d, err := time.ParseDuration(n.After)
			if err != nil {
				return bad("faults.notices[%d].after: %v", i, err)
			}
			f.Notices = append(f.Notices, TimedNotice{After: d, Code: n.Code, Message: n.Message})
		}
		out.Faults = f
	}
	*s = out
	return nil
}
