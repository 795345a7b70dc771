package fakes_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// TestMarketScriptJSON: instruments, pacing and market faults survive the
// JSON form; bad ones are typed errors.
func TestMarketScriptJSON(t *testing.T) {
	s := fakes.DefaultScript()
	s.Pacing = &fakes.Pacing{MessagesPerSecond: 10, HistoricalWindow: time.Minute, IdenticalWithin: time.Second}
	s.Faults.Market = fakes.MarketFaults{MarketDataError: 354, HistoricalError: 162, ContractError: 200, MaxTickers: 3,
		FirstTickDelay: 150 * time.Millisecond, StreamStopsAfterTicks: 9}
	b, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := fakes.ParseScript(b)
	if err != nil {
		t.Fatalf("ParseScript: %v\n%s", err, b)
	}
	if diff := cmp.Diff(s, got, cmp.Comparer(func(a, b broker.Decimal) bool { return a.String() == b.String() })); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	for name, js := range map[string]string{
		"no con id":     `{"accounts":[],"positions":[],"summary":[],"instruments":[{"contract":{"con_id":0,"symbol":"X","sec_type":"STK"},"quote":{}}]}`,
		"bad decimal":   `{"accounts":[],"positions":[],"summary":[],"instruments":[{"contract":{"con_id":1,"symbol":"X","sec_type":"STK"},"quote":{"bid":"1,5"}}]}`,
		"bid above ask": `{"accounts":[],"positions":[],"summary":[],"instruments":[{"contract":{"con_id":1,"symbol":"X","sec_type":"STK"},"quote":{"bid":"2","ask":"1"}}]}`,
		"bad duration":  `{"accounts":[],"positions":[],"summary":[],"pacing":{"historical_window":"soon"}}`,
		"negative":      `{"accounts":[],"positions":[],"summary":[],"faults":{"market":{"max_tickers":-1}}}`,
		"unknown key":   `{"accounts":[],"positions":[],"summary":[],"faults":{"market":{"max_tickerz":1}}}`,
	} {
		if _, err := fakes.ParseScript([]byte(js)); !errors.Is(err, broker.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}
