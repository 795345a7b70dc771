package ibkr

import (
	"testing"
	"time"
)

// TestBarTime: eight digits are a date for daily bars and epoch seconds
// otherwise (an intraday bar of August 1970 reads "19700817"-like digits).
func TestBarTime(t *testing.T) {
	for _, c := range []struct {
		s     string
		daily bool
		want  time.Time
	}{
		{"20261201", true, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"20261201", false, time.Unix(20261201, 0).UTC()},
		{"1764601200", false, time.Unix(1764601200, 0).UTC()},
		{"-2000000000", false, time.Unix(-2000000000, 0).UTC()},
		{"20261201 14:30:00 UTC", false, time.Date(2026, 12, 1, 14, 30, 0, 0, time.UTC)},
	} {
		got, err := barTime(c.s, c.daily)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("barTime(%q, %v) = %v, %v; want %v", c.s, c.daily, got, err, c.want)
		}
	}
	if _, err := barTime("yesterday", false); err == nil {
		t.Error("barTime(yesterday) succeeded")
	}
}

// TestLongNameFromIB: scmhub's byte-list rendering of a long name is undone
// at the versions that produce it, and only there.
func TestLongNameFromIB(t *testing.T) {
	garbled := "[77 195 188 108 108 101 114]" // "Müller"
	for _, c := range []struct {
		s    string
		v    int
		want string
	}{
		{garbled, 178, "Müller"}, {garbled, 204, "Müller"}, {garbled, 152, garbled}, {garbled, 205, garbled},
		{"APPLE INC", 178, "APPLE INC"}, {"[NOT BYTES]", 178, "[NOT BYTES]"}, {"[]", 160, ""},
	} {
		if got := longNameFromIB(c.s, c.v); got != c.want {
			t.Errorf("longNameFromIB(%q, %d) = %q, want %q", c.s, c.v, got, c.want)
		}
	}
}
