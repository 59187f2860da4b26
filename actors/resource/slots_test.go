package resource

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bookd/bookd/persistence"
)

// mustSlots returns the slot model for unit, minutes and zone, failing the
// test if the settings are rejected.
func mustSlots(t testing.TB, unit persistence.SlotUnit, minutes int, zone string) Slots {
	t.Helper()
	s, err := NewSlots(unit, minutes, zone)
	if err != nil {
		t.Fatalf("NewSlots(%q, %d, %q) = %v", unit, minutes, zone, err)
	}
	return s
}

// slotErrField returns the field a *FieldError names, or "" if err is not one.
func slotErrField(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

// unixAt parses an RFC 3339 time and returns it in Unix seconds.
func unixAt(t testing.TB, v string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, v)
	if err != nil {
		t.Fatalf("time.Parse(%q): %v", v, err)
	}
	return tm.Unix()
}

// nightKey returns the key of the night starting on date, counted independently
// of slots.go.
func nightKey(t testing.TB, date string) int64 {
	t.Helper()
	d, err := time.Parse("2006-01-02", date)
	if err != nil {
		t.Fatalf("time.Parse(%q): %v", date, err)
	}
	return d.Unix() / (24 * 60 * 60)
}

// checkSlotsTiled checks that keys are the slots of r: strictly increasing, each
// the Next of the one before, starting at From and ending at To.
func checkSlotsTiled(t testing.TB, s Slots, r Range, keys []int64) {
	t.Helper()
	if len(keys) == 0 {
		t.Fatalf("Keys(%v) is empty", r)
	}
	if keys[0] != r.From {
		t.Errorf("Keys(%v)[0] = %d, want %d", r, keys[0], r.From)
	}
	for i, k := range keys {
		next := s.Next(k)
		if next <= k {
			t.Fatalf("Next(%s) = %s, want after it", s.Format(k), s.Format(next))
		}
		if i+1 < len(keys) && keys[i+1] != next {
			t.Errorf("Keys(%v)[%d] = %s, want Next(%s) = %s", r, i+1, s.Format(keys[i+1]), s.Format(k), s.Format(next))
		}
	}
	if last := keys[len(keys)-1]; s.Next(last) != r.To {
		t.Errorf("Next(%s) = %s, want To = %s", s.Format(last), s.Format(s.Next(last)), s.Format(r.To))
	}
}

func TestNewSlots(t *testing.T) {
	tests := []struct {
		unit      persistence.SlotUnit
		minutes   int
		zone      string
		wantField string // "" for success
	}{
		{persistence.SlotNight, 0, "Europe/Lisbon", ""},
		{persistence.SlotNight, 0, "UTC", ""},
		{persistence.SlotMinutes, 30, "Europe/Berlin", ""},
		{persistence.SlotMinutes, 5, "Asia/Kolkata", ""},
		{persistence.SlotMinutes, 90, "America/New_York", ""},
		{persistence.SlotMinutes, 1440, "America/New_York", ""},
		{persistence.SlotSingle, 0, "Asia/Tokyo", ""},

		{persistence.SlotNight, 0, "Mars/Olympus_Mons", "time_zone"},
		{persistence.SlotNight, 0, "", "time_zone"},
		{persistence.SlotNight, 0, "Local", "time_zone"},
		{persistence.SlotMinutes, 30, "+01:00", "time_zone"},
		{persistence.SlotMinutes, 30, "../etc/passwd", "time_zone"},
		{"bogus", 0, "Nowhere/Else", "time_zone"}, // the zone is checked first

		{persistence.SlotMinutes, 0, "UTC", "slot.minutes"},
		{persistence.SlotMinutes, 4, "UTC", "slot.minutes"},
		{persistence.SlotMinutes, 7, "UTC", "slot.minutes"},
		{persistence.SlotMinutes, 25, "UTC", "slot.minutes"},
		{persistence.SlotMinutes, -30, "UTC", "slot.minutes"},
		{persistence.SlotMinutes, 2880, "UTC", "slot.minutes"},
		{persistence.SlotNight, 30, "UTC", "slot.minutes"},
		{persistence.SlotSingle, 60, "UTC", "slot.minutes"},

		{"hours", 60, "UTC", "slot.unit"},
		{"", 0, "UTC", "slot.unit"},
		{"Night", 0, "UTC", "slot.unit"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d/%s", tt.unit, tt.minutes, tt.zone), func(t *testing.T) {
			s, err := NewSlots(tt.unit, tt.minutes, tt.zone)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("NewSlots(%q, %d, %q) = %v, want no error", tt.unit, tt.minutes, tt.zone, err)
				}
				if s.Unit != tt.unit || s.Minutes != tt.minutes || s.Loc.String() != tt.zone {
					t.Errorf("NewSlots(%q, %d, %q) = {%s %d %s}, want the settings back", tt.unit, tt.minutes, tt.zone, s.Unit, s.Minutes, s.Loc)
				}
				return
			}
			if got := slotErrField(err); got != tt.wantField {
				t.Errorf("NewSlots(%q, %d, %q) = %v, want a *FieldError naming %q", tt.unit, tt.minutes, tt.zone, err, tt.wantField)
			}
		})
	}
}

func TestParseRangeNight(t *testing.T) {
	tests := []struct {
		zone, from, to string
		want           int // nights
	}{
		{"Europe/Lisbon", "2026-12-24", "2026-12-27", 3},
		{"Europe/Lisbon", "2026-12-24", "2026-12-25", 1},
		{"Europe/Lisbon", "2027-01-31", "2027-02-02", 2},
		{"Europe/Lisbon", "2028-02-28", "2028-03-01", 2}, // leap year: Feb 29
		{"Europe/Lisbon", "2027-02-28", "2027-03-01", 1},
		{"Europe/Lisbon", "2028-02-29", "2028-03-01", 1},
		{"Europe/Lisbon", "2026-12-30", "2027-01-02", 3},
		{"Europe/Lisbon", "2027-03-27", "2027-03-30", 3},    // spring forward on 03-28
		{"Europe/Lisbon", "2027-10-30", "2027-11-01", 2},    // fall back on 10-31
		{"America/New_York", "2027-03-13", "2027-03-16", 3}, // spring forward on 03-14
		{"America/New_York", "2027-11-06", "2027-11-08", 2}, // fall back on 11-07
		{"America/Santiago", "2026-09-05", "2026-09-07", 2}, // midnight skipped on 09-06
		{"Pacific/Apia", "2011-12-29", "2012-01-01", 3},     // 2011-12-30 skipped there; nights count dates
		{"UTC", "2026-01-01", "2028-09-27", MaxRangeSlots},
	}
	for _, tt := range tests {
		t.Run(tt.zone+"/"+tt.from+"/"+tt.to, func(t *testing.T) {
			s := mustSlots(t, persistence.SlotNight, 0, tt.zone)
			r, err := s.ParseRange(tt.from, tt.to)
			if err != nil {
				t.Fatalf("ParseRange(%q, %q) = %v", tt.from, tt.to, err)
			}
			if want := (Range{From: nightKey(t, tt.from), To: nightKey(t, tt.to)}); r != want {
				t.Errorf("ParseRange(%q, %q) = %v, want %v", tt.from, tt.to, r, want)
			}
			if got := s.Count(r); got != tt.want {
				t.Errorf("Count(%v) = %d, want %d", r, got, tt.want)
			}
			keys := s.Keys(r)
			if len(keys) != tt.want {
				t.Errorf("len(Keys(%v)) = %d, want %d", r, len(keys), tt.want)
			}
			checkSlotsTiled(t, s, r, keys)
			if got := s.Format(r.From); got != tt.from {
				t.Errorf("Format(%d) = %q, want %q", r.From, got, tt.from)
			}
			if got := s.Format(r.To); got != tt.to {
				t.Errorf("Format(%d) = %q, want %q", r.To, got, tt.to)
			}
			for _, k := range keys {
				if got, err := s.ParseRange(s.Format(k), s.Format(k+1)); err != nil || got != (Range{k, k + 1}) {
					t.Errorf("ParseRange(%q, %q) = %v, %v, want %v", s.Format(k), s.Format(k+1), got, err, Range{k, k + 1})
				}
			}
		})
	}
}

func TestSlotsNightKeys(t *testing.T) {
	s := mustSlots(t, persistence.SlotNight, 0, "America/New_York")
	tests := []struct {
		date string
		want int64
	}{
		{"1970-01-01", 0},
		{"1970-01-02", 1},
		{"1969-12-31", -1},
		{"2026-01-01", 20454},
		{"2028-03-01", 21244},
	}
	for _, tt := range tests {
		r, err := s.ParseRange(tt.date, s.Format(tt.want+1))
		if err != nil || r.From != tt.want {
			t.Errorf("ParseRange(%q, ...) = %v, %v, want From %d", tt.date, r, err, tt.want)
		}
		if got := s.Format(tt.want); got != tt.date {
			t.Errorf("Format(%d) = %q, want %q", tt.want, got, tt.date)
		}
	}
}

func TestParseRangeNightErrors(t *testing.T) {
	s := mustSlots(t, persistence.SlotNight, 0, "Europe/Lisbon")
	tests := []struct {
		from, to, wantField string
	}{
		{"2026-12-24", "2026-12-24", "to"},
		{"2026-12-27", "2026-12-24", "to"},
		{"", "2026-12-24", "from"},
		{"2026-12-24", "", "to"},
		{"", "", "from"},
		{"2026-12-24T00:00:00Z", "2026-12-27", "from"},
		{"2026-12-24", "2026-12-27T00:00:00+01:00", "to"},
		{"2026-13-01", "2027-01-02", "from"},
		{"2026-12-24", "2027-02-30", "to"},
		{"2027-02-29", "2027-03-02", "from"}, // not a leap year
		{"24/12/2026", "2026-12-27", "from"},
		{"2026-12-24 ", "2026-12-27", "from"},
		{"2026-1-24", "2026-12-27", "from"},
		{"2026-01-01", "2028-09-28", "to"}, // MaxRangeSlots + 1 nights
	}
	for _, tt := range tests {
		t.Run(tt.from+"/"+tt.to, func(t *testing.T) {
			r, err := s.ParseRange(tt.from, tt.to)
			if got := slotErrField(err); got != tt.wantField {
				t.Errorf("ParseRange(%q, %q) = %v, %v, want a *FieldError naming %q", tt.from, tt.to, r, err, tt.wantField)
			}
			if r != (Range{}) {
				t.Errorf("ParseRange(%q, %q) = %v with an error, want the zero Range", tt.from, tt.to, r)
			}
		})
	}
}

func TestParseRangeMinutes(t *testing.T) {
	tests := []struct {
		zone      string
		minutes   int
		from, to  string
		want      Range // if wantField is ""
		wantField string
	}{
		{zone: "Europe/Berlin", minutes: 30, from: "2026-12-24T19:30:00+01:00", to: "2026-12-24T21:00:00+01:00",
			want: Range{unixAt(t, "2026-12-24T18:30:00Z"), unixAt(t, "2026-12-24T20:00:00Z")}},
		{zone: "Europe/Berlin", minutes: 30, from: "2026-12-24T18:30:00Z", to: "2026-12-24T20:00:00Z", // the same range written in UTC
			want: Range{unixAt(t, "2026-12-24T18:30:00Z"), unixAt(t, "2026-12-24T20:00:00Z")}},
		{zone: "Europe/Berlin", minutes: 30, from: "2026-12-24T13:30:00-05:00", to: "2026-12-25T04:00:00+05:00",
			want: Range{unixAt(t, "2026-12-24T18:30:00Z"), unixAt(t, "2026-12-24T23:00:00Z")}},
		{zone: "Europe/Berlin", minutes: 30, from: "2026-12-24T19:30:00.000+01:00", to: "2026-12-24T20:00:00+01:00",
			want: Range{unixAt(t, "2026-12-24T18:30:00Z"), unixAt(t, "2026-12-24T19:00:00Z")}},
		{zone: "Europe/Berlin", minutes: 30, from: "2026-12-24T19:15:00+01:00", to: "2026-12-24T21:00:00+01:00", wantField: "from"},
		{zone: "Europe/Berlin", minutes: 30, from: "2026-12-24T19:30:00+01:00", to: "2026-12-24T20:45:00+01:00", wantField: "to"},
		{zone: "Europe/Berlin", minutes: 30, from: "2026-12-24T19:30:01+01:00", to: "2026-12-24T21:00:00+01:00", wantField: "from"},
		{zone: "Europe/Berlin", minutes: 30, from: "2026-12-24T19:30:00.5+01:00", to: "2026-12-24T21:00:00+01:00", wantField: "from"},
		{zone: "Europe/Berlin", minutes: 30, from: "2026-12-24T19:30:00+01:00", to: "2026-12-24T21:00:00.000000001+01:00", wantField: "to"},
		{zone: "Europe/Berlin", minutes: 30, from: "2026-12-24T19:30:00+01:15", to: "2026-12-24T21:00:00+01:00", wantField: "from"},

		{zone: "Europe/Berlin", minutes: 60, from: "2026-12-24T19:00:00+01:00", to: "2026-12-24T22:00:00+01:00",
			want: Range{unixAt(t, "2026-12-24T18:00:00Z"), unixAt(t, "2026-12-24T21:00:00Z")}},
		{zone: "Europe/Berlin", minutes: 60, from: "2026-12-24T19:30:00+01:00", to: "2026-12-24T21:00:00+01:00", wantField: "from"},

		{zone: "Europe/Berlin", minutes: 90, from: "2026-12-24T19:30:00+01:00", to: "2026-12-24T22:30:00+01:00",
			want: Range{unixAt(t, "2026-12-24T18:30:00Z"), unixAt(t, "2026-12-24T21:30:00Z")}},
		{zone: "Europe/Berlin", minutes: 90, from: "2026-12-24T22:30:00+01:00", to: "2026-12-25T00:00:00+01:00", // the last slot of a day
			want: Range{unixAt(t, "2026-12-24T21:30:00Z"), unixAt(t, "2026-12-24T23:00:00Z")}},
		{zone: "Europe/Berlin", minutes: 90, from: "2026-12-24T19:00:00+01:00", to: "2026-12-24T22:30:00+01:00", wantField: "from"},

		{zone: "Asia/Kolkata", minutes: 60, from: "2026-12-24T19:00:00+05:30", to: "2026-12-24T20:00:00+05:30",
			want: Range{unixAt(t, "2026-12-24T13:30:00Z"), unixAt(t, "2026-12-24T14:30:00Z")}},
		{zone: "Asia/Kolkata", minutes: 60, from: "2026-12-24T13:30:00Z", to: "2026-12-24T14:30:00Z",
			want: Range{unixAt(t, "2026-12-24T13:30:00Z"), unixAt(t, "2026-12-24T14:30:00Z")}},
		{zone: "Asia/Kolkata", minutes: 60, from: "2026-12-24T19:00:00Z", to: "2026-12-24T21:00:00Z", wantField: "from"},

		{zone: "UTC", minutes: 60, from: "2026-01-01T00:00:00Z", to: "2026-02-11T16:00:00Z", // MaxRangeSlots slots
			want: Range{unixAt(t, "2026-01-01T00:00:00Z"), unixAt(t, "2026-02-11T16:00:00Z")}},
		{zone: "UTC", minutes: 60, from: "2026-01-01T00:00:00Z", to: "2026-02-11T17:00:00Z", wantField: "to"},
		{zone: "UTC", minutes: 60, from: "2026-01-01T10:00:00Z", to: "2026-01-01T10:00:00Z", wantField: "to"},
		{zone: "UTC", minutes: 60, from: "2026-01-01T11:00:00Z", to: "2026-01-01T10:00:00Z", wantField: "to"},
		{zone: "UTC", minutes: 60, from: "", to: "2026-01-01T10:00:00Z", wantField: "from"},
		{zone: "UTC", minutes: 60, from: "2026-01-01T10:00:00Z", to: "", wantField: "to"},
		{zone: "UTC", minutes: 60, from: "2026-01-01", to: "2026-01-02", wantField: "from"},
		{zone: "UTC", minutes: 60, from: "2026-01-01T10:00:00", to: "2026-01-01T11:00:00Z", wantField: "from"},
		{zone: "UTC", minutes: 60, from: "2026-01-01 10:00:00Z", to: "2026-01-01T11:00:00Z", wantField: "from"},
		{zone: "UTC", minutes: 60, from: "1970-06-01T00:00:00Z", to: "1970-06-01T01:00:00Z", wantField: "from"},
		{zone: "UTC", minutes: 60, from: "9998-12-31T22:00:00Z", to: "9999-01-01T00:00:00Z", wantField: "to"},
		// The year is checked in the listing's zone: this is 9999-01-01T00:00:00Z.
		{zone: "UTC", minutes: 60, from: "9998-12-31T22:00:00-01:00", to: "9998-12-31T23:00:00-01:00", wantField: "to"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d/%s/%s", tt.zone, tt.minutes, tt.from, tt.to), func(t *testing.T) {
			s := mustSlots(t, persistence.SlotMinutes, tt.minutes, tt.zone)
			r, err := s.ParseRange(tt.from, tt.to)
			if tt.wantField != "" {
				if got := slotErrField(err); got != tt.wantField {
					t.Errorf("ParseRange(%q, %q) = %v, %v, want a *FieldError naming %q", tt.from, tt.to, r, err, tt.wantField)
				}
				if r != (Range{}) {
					t.Errorf("ParseRange(%q, %q) = %v with an error, want the zero Range", tt.from, tt.to, r)
				}
				return
			}
			if err != nil || r != tt.want {
				t.Fatalf("ParseRange(%q, %q) = %v, %v, want %v", tt.from, tt.to, r, err, tt.want)
			}
			keys := s.Keys(r)
			checkSlotsTiled(t, s, r, keys)
			if got, want := s.Count(r), len(keys); got != want {
				t.Errorf("Count(%v) = %d, want len(Keys) = %d", r, got, want)
			}
			for _, k := range keys {
				f, n := s.Format(k), s.Format(s.Next(k))
				if got, err := s.ParseRange(f, n); err != nil || got != (Range{k, s.Next(k)}) {
					t.Errorf("ParseRange(%q, %q) = %v, %v, want %v", f, n, got, err, Range{k, s.Next(k)})
				}
			}
		})
	}
}

func TestSlotsMinuteFormat(t *testing.T) {
	tests := []struct {
		zone string
		key  string // an instant, in any offset
		want string
	}{
		{"Europe/Berlin", "2026-12-24T18:30:00Z", "2026-12-24T19:30:00+01:00"},
		{"Europe/Berlin", "2026-07-24T17:30:00Z", "2026-07-24T19:30:00+02:00"},
		{"America/New_York", "2026-12-25T00:30:00Z", "2026-12-24T19:30:00-05:00"},
		{"Asia/Kolkata", "2026-12-24T13:30:00Z", "2026-12-24T19:00:00+05:30"},
		{"UTC", "2026-12-24T19:30:00+01:00", "2026-12-24T18:30:00Z"},
		// Africa/Monrovia was -00:44:30 until 1972; RFC 3339 cannot write that.
		{"Africa/Monrovia", "1971-06-01T00:44:30Z", "1971-06-01T00:44:30Z"},
		{"Africa/Monrovia", "1972-06-01T00:00:00Z", "1972-06-01T00:00:00Z"},
	}
	for _, tt := range tests {
		s := mustSlots(t, persistence.SlotMinutes, 30, tt.zone)
		if got := s.Format(unixAt(t, tt.key)); got != tt.want {
			t.Errorf("Format(%s) in %s = %q, want %q", tt.key, tt.zone, got, tt.want)
		}
	}
}

// TestSlotsMinuteDays lays the grid over whole local days, including days DST
// makes shorter or longer.
func TestSlotsMinuteDays(t *testing.T) {
	tests := []struct {
		zone      string
		minutes   int
		noon      string // a time during the day
		slots     int
		first     string // Format of the first slot
		lastLen   time.Duration
		formatted []string // Format of some slots of the day, in order
	}{
		{"Europe/Berlin", 30, "2027-06-15T12:00:00+02:00", 48, "2027-06-15T00:00:00+02:00", 30 * time.Minute, nil},
		{"Europe/Berlin", 30, "2027-03-28T12:00:00+02:00", 46, "2027-03-28T00:00:00+01:00", 30 * time.Minute,
			[]string{"2027-03-28T01:30:00+01:00", "2027-03-28T03:00:00+02:00", "2027-03-28T23:30:00+02:00"}},
		{"Europe/Berlin", 30, "2027-10-31T12:00:00+01:00", 50, "2027-10-31T00:00:00+02:00", 30 * time.Minute,
			[]string{"2027-10-31T02:30:00+02:00", "2027-10-31T02:00:00+01:00", "2027-10-31T02:30:00+01:00", "2027-10-31T23:30:00+01:00"}},
		{"America/New_York", 30, "2027-03-14T12:00:00-04:00", 46, "2027-03-14T00:00:00-05:00", 30 * time.Minute,
			[]string{"2027-03-14T01:30:00-05:00", "2027-03-14T03:00:00-04:00"}},
		{"America/New_York", 30, "2027-11-07T12:00:00-05:00", 50, "2027-11-07T00:00:00-04:00", 30 * time.Minute,
			[]string{"2027-11-07T01:30:00-04:00", "2027-11-07T01:00:00-05:00", "2027-11-07T01:30:00-05:00"}},
		{"America/New_York", 60, "2027-03-14T12:00:00-04:00", 23, "2027-03-14T00:00:00-05:00", time.Hour, nil},
		{"America/New_York", 60, "2027-11-07T12:00:00-05:00", 25, "2027-11-07T00:00:00-04:00", time.Hour, nil},
		// 23 hours of 90-minute slots: 15 full ones, then 30 minutes to midnight.
		{"Europe/Berlin", 90, "2027-03-28T12:00:00+02:00", 16, "2027-03-28T00:00:00+01:00", 30 * time.Minute,
			[]string{"2027-03-28T01:30:00+01:00", "2027-03-28T04:00:00+02:00", "2027-03-28T23:30:00+02:00"}},
		// 25 hours: 16 full slots, then 60 minutes.
		{"Europe/Berlin", 90, "2027-10-31T12:00:00+01:00", 17, "2027-10-31T00:00:00+02:00", time.Hour,
			[]string{"2027-10-31T01:30:00+02:00", "2027-10-31T02:00:00+01:00", "2027-10-31T23:00:00+01:00"}},
		{"America/New_York", 1440, "2027-03-14T12:00:00-04:00", 1, "2027-03-14T00:00:00-05:00", 23 * time.Hour, nil},
		{"Asia/Kolkata", 60, "2026-12-24T12:00:00+05:30", 24, "2026-12-24T00:00:00+05:30", time.Hour,
			[]string{"2026-12-24T19:00:00+05:30"}},
		// Australia/Lord_Howe moves its clocks by 30 minutes.
		{"Australia/Lord_Howe", 30, "2027-04-04T12:00:00+10:30", 49, "2027-04-04T00:00:00+11:00", 30 * time.Minute,
			[]string{"2027-04-04T01:30:00+11:00", "2027-04-04T01:30:00+10:30"}},
		{"Australia/Lord_Howe", 60, "2027-10-03T12:00:00+11:00", 24, "2027-10-03T00:00:00+10:30", 30 * time.Minute,
			[]string{"2027-10-03T01:00:00+10:30", "2027-10-03T02:30:00+11:00", "2027-10-03T23:30:00+11:00"}},
		// Where DST skips midnight the day starts when the clocks jump, at 01:00.
		{"America/Santiago", 60, "2026-09-06T12:00:00-03:00", 23, "2026-09-06T01:00:00-03:00", time.Hour, nil},
		{"Atlantic/Azores", 60, "2027-03-28T12:00:00Z", 23, "2027-03-28T01:00:00Z", time.Hour, nil},
		{"America/Havana", 90, "2027-03-14T12:00:00-04:00", 16, "2027-03-14T01:00:00-04:00", 30 * time.Minute, nil},
		// The day before: it runs to the jump, 24 hours.
		{"America/Santiago", 60, "2026-09-05T12:00:00-04:00", 24, "2026-09-05T00:00:00-04:00", time.Hour,
			[]string{"2026-09-05T23:00:00-04:00"}},
		{"Atlantic/Azores", 60, "2027-03-27T12:00:00-01:00", 24, "2027-03-27T00:00:00-01:00", time.Hour, nil},
		// Fall back at midnight: 23:00 happens twice.
		{"America/Santiago", 60, "2027-04-03T12:00:00-03:00", 25, "2027-04-03T00:00:00-03:00", time.Hour,
			[]string{"2027-04-03T23:00:00-03:00", "2027-04-03T23:00:00-04:00"}},
		// Midnight happens twice: the day starts at the first.
		{"America/Havana", 60, "2027-11-07T12:00:00-05:00", 25, "2027-11-07T00:00:00-04:00", time.Hour,
			[]string{"2027-11-07T00:00:00-05:00"}},
		{"Asia/Amman", 90, "2021-10-29T12:00:00+02:00", 17, "2021-10-29T00:00:00+03:00", time.Hour,
			[]string{"2021-10-29T00:30:00+02:00"}},
		// Pacific/Apia skipped 2011-12-30: the 29th runs into the 31st.
		{"Pacific/Apia", 60, "2011-12-29T12:00:00-10:00", 24, "2011-12-29T00:00:00-10:00", time.Hour, nil},
		{"Pacific/Apia", 60, "2011-12-31T12:00:00+14:00", 24, "2011-12-31T00:00:00+14:00", time.Hour, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d/%s", tt.zone, tt.minutes, tt.noon), func(t *testing.T) {
			s := mustSlots(t, persistence.SlotMinutes, tt.minutes, tt.zone)
			r := s.DefaultRange(time.Unix(unixAt(t, tt.noon), 0))
			if got := s.Format(r.From); got != tt.first {
				t.Errorf("Format(DefaultRange(%s).From) = %q, want %q", tt.noon, got, tt.first)
			}
			if _, err := s.ParseRange(s.Format(r.From), s.Format(r.To)); err != nil {
				t.Errorf("ParseRange(%q, %q) = %v", s.Format(r.From), s.Format(r.To), err)
			}
			keys := s.Keys(r)
			if len(keys) != tt.slots {
				t.Errorf("len(Keys(%v)) = %d, want %d", r, len(keys), tt.slots)
			}
			if got := s.Count(r); got != tt.slots {
				t.Errorf("Count(%v) = %d, want %d", r, got, tt.slots)
			}
			checkSlotsTiled(t, s, r, keys)
			var formatted []string
			for i, k := range keys {
				formatted = append(formatted, s.Format(k))
				if i+1 < len(keys) && keys[i+1]-k != int64(tt.minutes)*60 {
					t.Errorf("slot %s lasts %v, want %d minutes: only the last slot of a day is cut short",
						s.Format(k), time.Duration(keys[i+1]-k)*time.Second, tt.minutes)
				}
			}
			if got := time.Duration(r.To-keys[len(keys)-1]) * time.Second; got != tt.lastLen {
				t.Errorf("the last slot %s lasts %v, want %v", s.Format(keys[len(keys)-1]), got, tt.lastLen)
			}
			seen := make(map[string]bool)
			for _, f := range formatted {
				if seen[f] {
					t.Errorf("Format gives %q twice in one day", f)
				}
				seen[f] = true
			}
			for _, f := range tt.formatted {
				if !seen[f] {
					t.Errorf("no slot formats as %q; slots are %s", f, strings.Join(formatted, " "))
				}
			}
		})
	}
}

// TestSlotsMinuteGrid walks the grid slot by slot through whole years in
// zones whose clocks do odd things, and checks that the slots tile time and
// that every slot start reads back as itself.
func TestSlotsMinuteGrid(t *testing.T) {
	tests := []struct {
		zone     string
		from, to string
	}{
		{"Europe/Berlin", "2027-01-01T00:00:00+01:00", "2028-01-01T00:00:00+01:00"},
		{"America/New_York", "2027-01-01T00:00:00-05:00", "2028-01-01T00:00:00-05:00"},
		{"America/Santiago", "2026-01-01T00:00:00-03:00", "2027-01-01T00:00:00-03:00"},
		{"Atlantic/Azores", "2027-01-01T00:00:00-01:00", "2028-01-01T00:00:00-01:00"},
		{"America/Havana", "2027-01-01T00:00:00-05:00", "2028-01-01T00:00:00-05:00"},
		{"Australia/Lord_Howe", "2027-01-01T00:00:00+11:00", "2028-01-01T00:00:00+11:00"},
		{"Asia/Amman", "2021-01-01T00:00:00+02:00", "2022-01-01T00:00:00+02:00"},
		{"Pacific/Apia", "2011-01-01T00:00:00-10:00", "2012-06-01T00:00:00+13:00"},
		{"Pacific/Kiritimati", "1994-06-01T00:00:00-10:00", "1995-06-01T00:00:00+14:00"},
		// Until 2011 Goose Bay changed clocks at 00:01, so the local date went
		// back from 00:00:59 to 23:01 the day before.
		{"America/Goose_Bay", "2010-01-01T00:00:00-04:00", "2011-01-01T00:00:00-04:00"},
		{"Africa/Monrovia", "1971-06-01T00:44:30Z", "1972-06-01T00:00:00Z"},
		{"Asia/Kathmandu", "2027-01-01T00:00:00+05:45", "2028-01-01T00:00:00+05:45"},
	}
	for _, tt := range tests {
		for _, minutes := range []int{45, 90} {
			t.Run(fmt.Sprintf("%s/%d", tt.zone, minutes), func(t *testing.T) {
				t.Parallel()
				s := mustSlots(t, persistence.SlotMinutes, minutes, tt.zone)
				from, to := unixAt(t, tt.from), unixAt(t, tt.to)
				if _, err := s.ParseRange(tt.from, s.Format(s.Next(from))); err != nil {
					t.Fatalf("ParseRange(%q, ...) = %v", tt.from, err)
				}
				step := int64(minutes) * 60
				for k := from; k < to; {
					next := s.Next(k)
					if next <= k || next-k > step {
						t.Fatalf("Next(%s) = %s, want after it by at most %d minutes", s.Format(k), s.Format(next), minutes)
					}
					day := s.DefaultRange(time.Unix(k, 0))
					if k < day.From || k >= day.To || next > day.To {
						t.Fatalf("slot [%s, %s) is not inside its day [%s, %s)", s.Format(k), s.Format(next), s.Format(day.From), s.Format(day.To))
					}
					if next-k < step && next != day.To {
						t.Fatalf("slot [%s, %s) is short but does not end the day [%s, %s)", s.Format(k), s.Format(next), s.Format(day.From), s.Format(day.To))
					}
					if got, err := s.ParseRange(s.Format(k), s.Format(next)); err != nil || got != (Range{k, next}) {
						t.Fatalf("ParseRange(%q, %q) = %v, %v, want %v", s.Format(k), s.Format(next), got, err, Range{k, next})
					}
					k = next
				}
			})
		}
	}
}

func TestParseRangeSingle(t *testing.T) {
	s := mustSlots(t, persistence.SlotSingle, 0, "Asia/Tokyo")
	tests := []struct {
		from, to  string
		want      Range
		wantField string
	}{
		{"", "", Range{0, 1}, ""},
		{"2026-12-24", "", Range{}, "from"},
		{"", "2026-12-24", Range{}, "to"},
		{"2026-12-24T19:00:00Z", "2026-12-24T20:00:00Z", Range{}, "from"},
		{" ", "", Range{}, "from"},
	}
	for _, tt := range tests {
		r, err := s.ParseRange(tt.from, tt.to)
		if slotErrField(err) != tt.wantField || r != tt.want {
			t.Errorf("ParseRange(%q, %q) = %v, %v, want %v and an error naming %q", tt.from, tt.to, r, err, tt.want, tt.wantField)
		}
	}
	r := Range{0, 1}
	if got := s.Keys(r); len(got) != 1 || got[0] != 0 {
		t.Errorf("Keys(%v) = %v, want [0]", r, got)
	}
	if got := s.Count(r); got != 1 {
		t.Errorf("Count(%v) = %d, want 1", r, got)
	}
	if got := s.Next(0); got != 1 {
		t.Errorf("Next(0) = %d, want 1", got)
	}
	if got := s.Format(0); got != "" {
		t.Errorf("Format(0) = %q, want \"\"", got)
	}
	if got := s.End(0); !got.IsZero() {
		t.Errorf("End(0) = %v, want the zero time", got)
	}
	if got := s.DefaultRange(time.Now()); got != r {
		t.Errorf("DefaultRange(now) = %v, want %v", got, r)
	}
}

func TestSlotsNext(t *testing.T) {
	tests := []struct {
		unit      persistence.SlotUnit
		minutes   int
		zone      string
		key, want int64
	}{
		{persistence.SlotNight, 0, "Europe/Lisbon", nightKey(t, "2027-03-27"), nightKey(t, "2027-03-28")},
		{persistence.SlotNight, 0, "Europe/Lisbon", nightKey(t, "2028-02-28"), nightKey(t, "2028-02-29")},
		{persistence.SlotNight, 0, "Europe/Lisbon", nightKey(t, "2026-12-31"), nightKey(t, "2027-01-01")},
		{persistence.SlotMinutes, 30, "Europe/Berlin", unixAt(t, "2026-12-24T19:30:00+01:00"), unixAt(t, "2026-12-24T20:00:00+01:00")},
		{persistence.SlotMinutes, 30, "Europe/Berlin", unixAt(t, "2026-12-24T23:30:00+01:00"), unixAt(t, "2026-12-25T00:00:00+01:00")},
		{persistence.SlotMinutes, 30, "Europe/Berlin", unixAt(t, "2027-03-28T01:30:00+01:00"), unixAt(t, "2027-03-28T03:00:00+02:00")},
		{persistence.SlotMinutes, 90, "Europe/Berlin", unixAt(t, "2027-03-28T23:30:00+02:00"), unixAt(t, "2027-03-29T00:00:00+02:00")},
		{persistence.SlotMinutes, 60, "America/Santiago", unixAt(t, "2026-09-05T23:00:00-04:00"), unixAt(t, "2026-09-06T01:00:00-03:00")},
		{persistence.SlotMinutes, 60, "Atlantic/Azores", unixAt(t, "2027-03-27T23:00:00-01:00"), unixAt(t, "2027-03-28T01:00:00Z")},
		{persistence.SlotMinutes, 60, "Pacific/Apia", unixAt(t, "2011-12-29T23:00:00-10:00"), unixAt(t, "2011-12-31T00:00:00+14:00")},
	}
	for _, tt := range tests {
		s := mustSlots(t, tt.unit, tt.minutes, tt.zone)
		if got := s.Next(tt.key); got != tt.want {
			t.Errorf("Next(%s) in %s = %s, want %s", s.Format(tt.key), s.Describe(), s.Format(got), s.Format(tt.want))
		}
	}
}

func TestSlotsEnd(t *testing.T) {
	tests := []struct {
		unit    persistence.SlotUnit
		minutes int
		zone    string
		key     int64
		want    string
	}{
		// A night ends at noon of the next date, local time.
		{persistence.SlotNight, 0, "Europe/Lisbon", nightKey(t, "2027-03-27"), "2027-03-28T12:00:00+01:00"},
		{persistence.SlotNight, 0, "America/New_York", nightKey(t, "2026-12-31"), "2027-01-01T12:00:00-05:00"},
		{persistence.SlotNight, 0, "Asia/Tokyo", nightKey(t, "2028-02-28"), "2028-02-29T12:00:00+09:00"},
		{persistence.SlotMinutes, 30, "Europe/Berlin", unixAt(t, "2026-12-24T19:30:00+01:00"), "2026-12-24T20:00:00+01:00"},
		{persistence.SlotMinutes, 90, "Europe/Berlin", unixAt(t, "2027-03-28T23:30:00+02:00"), "2027-03-29T00:00:00+02:00"},
	}
	for _, tt := range tests {
		s := mustSlots(t, tt.unit, tt.minutes, tt.zone)
		if got := s.End(tt.key); !got.Equal(time.Unix(unixAt(t, tt.want), 0)) {
			t.Errorf("End(%s) in %s = %v, want %s", s.Format(tt.key), tt.zone, got, tt.want)
		}
	}
}

func TestSlotsDefaultRange(t *testing.T) {
	tests := []struct {
		unit     persistence.SlotUnit
		minutes  int
		zone     string
		now      string
		from, to string // Format of the range's ends
	}{
		{persistence.SlotNight, 0, "Europe/Lisbon", "2026-12-24T23:30:00Z", "2026-12-24", "2027-01-07"},
		{persistence.SlotNight, 0, "Asia/Tokyo", "2026-12-24T23:30:00Z", "2026-12-25", "2027-01-08"},
		{persistence.SlotNight, 0, "America/New_York", "2026-12-25T03:00:00Z", "2026-12-24", "2027-01-07"},
		{persistence.SlotMinutes, 30, "Europe/Berlin", "2026-12-24T23:30:00Z", "2026-12-25T00:00:00+01:00", "2026-12-26T00:00:00+01:00"},
		{persistence.SlotMinutes, 30, "Europe/Berlin", "2027-03-28T12:00:00Z", "2027-03-28T00:00:00+01:00", "2027-03-29T00:00:00+02:00"},
		{persistence.SlotMinutes, 30, "Europe/Berlin", "2027-03-28T00:00:00+01:00", "2027-03-28T00:00:00+01:00", "2027-03-29T00:00:00+02:00"},
		{persistence.SlotMinutes, 30, "Europe/Berlin", "2027-03-28T23:59:59+02:00", "2027-03-28T00:00:00+01:00", "2027-03-29T00:00:00+02:00"},
	}
	for _, tt := range tests {
		s := mustSlots(t, tt.unit, tt.minutes, tt.zone)
		r := s.DefaultRange(time.Unix(unixAt(t, tt.now), 0))
		if got, want := fmt.Sprintf("[%s, %s)", s.Format(r.From), s.Format(r.To)), fmt.Sprintf("[%s, %s)", tt.from, tt.to); got != want {
			t.Errorf("DefaultRange(%s) in %s = %s, want %s", tt.now, tt.zone, got, want)
		}
		if tt.unit == persistence.SlotNight && s.Count(r) != 14 {
			t.Errorf("Count(DefaultRange(%s)) = %d, want 14", tt.now, s.Count(r))
		}
	}
}

func TestSlotsEachStops(t *testing.T) {
	for _, s := range []Slots{
		mustSlots(t, persistence.SlotNight, 0, "UTC"),
		mustSlots(t, persistence.SlotMinutes, 30, "Europe/Berlin"),
	} {
		r := s.DefaultRange(time.Unix(unixAt(t, "2026-12-24T12:00:00Z"), 0))
		var seen []int64
		s.Each(r, func(k int64) bool {
			seen = append(seen, k)
			return len(seen) < 3
		})
		if want := s.Keys(r)[:3]; fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Errorf("Each(%v) stopping at the third slot called fn with %v, want %v", r, seen, want)
		}
		var n int
		s.Each(Range{From: r.To, To: r.From}, func(int64) bool { n++; return true })
		if n != 0 {
			t.Errorf("Each(%v) called fn %d times, want 0", Range{r.To, r.From}, n)
		}
	}
}

func TestSlotsCountStops(t *testing.T) {
	tests := []struct {
		s    Slots
		r    Range
		want int
	}{
		{mustSlots(t, persistence.SlotNight, 0, "UTC"), Range{0, 1 << 40}, MaxRangeSlots + 1},
		{mustSlots(t, persistence.SlotNight, 0, "UTC"), Range{10, 5}, 0},
		{mustSlots(t, persistence.SlotNight, 0, "UTC"), Range{5, 5 + MaxRangeSlots}, MaxRangeSlots},
		{mustSlots(t, persistence.SlotMinutes, 5, "UTC"), Range{unixAt(t, "2026-01-01T00:00:00Z"), unixAt(t, "2126-01-01T00:00:00Z")}, MaxRangeSlots + 1},
		{mustSlots(t, persistence.SlotMinutes, 5, "UTC"), Range{unixAt(t, "2026-01-01T00:00:00Z"), unixAt(t, "2026-01-01T00:00:00Z")}, 0},
	}
	for _, tt := range tests {
		if got := tt.s.Count(tt.r); got != tt.want {
			t.Errorf("Count(%v) in %s = %d, want %d", tt.r, tt.s.Describe(), got, tt.want)
		}
	}
}

func TestSlotsDescribe(t *testing.T) {
	tests := []struct {
		s    Slots
		want string
	}{
		{mustSlots(t, persistence.SlotNight, 0, "UTC"), "night"},
		{mustSlots(t, persistence.SlotMinutes, 30, "UTC"), "minutes:30"},
		{mustSlots(t, persistence.SlotSingle, 0, "UTC"), "single"},
	}
	for _, tt := range tests {
		if got := tt.s.Describe(); got != tt.want {
			t.Errorf("Describe() = %q, want %q", got, tt.want)
		}
	}
}
