package resource

import (
	"testing"
	"time"

	"github.com/bookd/bookd/persistence"
)

// fuzzZones are the zones the fuzz targets pick from: ordinary ones, and ones
// whose clocks do odd things.
var fuzzZones = []string{
	"UTC",
	"Europe/Berlin",
	"Europe/Lisbon",
	"America/New_York",
	"Asia/Kolkata",        // +05:30
	"Asia/Kathmandu",      // +05:45
	"Australia/Lord_Howe", // DST moves the clocks by 30 minutes
	"America/Santiago",    // DST skips midnight; falls back from 24:00 to 23:00
	"Atlantic/Azores",     // DST skips midnight
	"America/Havana",      // DST skips midnight; midnight happens twice in the autumn
	"Asia/Amman",          // midnight happened twice until 2022
	"Pacific/Apia",        // skipped 2011-12-30
	"America/Goose_Bay",   // changed at 00:01 until 2011: the date went back
	"Africa/Monrovia",     // -00:44:30 until 1972
	"Pacific/Chatham",     // +12:45 and +13:45
	"Pacific/Kiritimati",  // skipped 1994-12-31
}

// fuzzSlots returns the slot model the fuzz inputs select. Minutes that
// NewSlots would refuse are mapped onto a valid length so that inputs are not
// wasted; refusing them is TestNewSlots's business.
func fuzzSlots(t *testing.T, unit uint8, minutes int, zone uint8) Slots {
	t.Helper()
	units := []persistence.SlotUnit{persistence.SlotNight, persistence.SlotMinutes, persistence.SlotSingle}
	u := units[int(unit)%len(units)]
	if u != persistence.SlotMinutes {
		minutes = 0
	} else if minutes < 5 || minutes > 1440 || 1440%minutes != 0 {
		divisors := []int{5, 6, 8, 9, 10, 12, 15, 16, 18, 20, 24, 30, 32, 36, 40, 45, 48, 60, 72, 80, 90, 96, 120, 144, 160, 180, 240, 288, 360, 480, 720, 1440}
		minutes = divisors[uint(minutes)%uint(len(divisors))]
	}
	return mustSlots(t, u, minutes, fuzzZones[int(zone)%len(fuzzZones)])
}

// fuzzSeeds are ranges around the days that DST or history makes odd, and
// some malformed input. Those marked "regression" failed before slots.go
// found day starts itself instead of trusting time.Date.
var fuzzSeeds = []struct {
	unit, zone uint8
	minutes    int
	from, to   string
}{
	{0, 2, 0, "2027-03-27", "2027-03-30"},
	{0, 3, 0, "2028-02-28", "2028-03-01"},
	{0, 0, 0, "2026-12-30", "2027-01-02"},
	{0, 0, 0, "0000-01-01", "0000-01-02"},
	{0, 0, 0, "9999-12-30", "9999-12-31"},
	{0, 1, 0, "2026-01-01", "2028-09-28"},
	{0, 1, 0, "2026-12-24T19:30:00+01:00", "2026-12-27"},
	{0, 1, 0, "2026-13-01", ""},
	{1, 1, 30, "2027-03-28T00:00:00+01:00", "2027-03-29T00:00:00+02:00"},
	{1, 1, 30, "2027-10-31T00:00:00+02:00", "2027-11-01T00:00:00+01:00"},
	{1, 1, 90, "2027-03-28T22:00:00+02:00", "2027-03-29T00:00:00+02:00"},
	{1, 3, 30, "2027-11-07T00:00:00-04:00", "2027-11-08T00:00:00-05:00"},
	{1, 1, 30, "2026-12-24T19:15:00+01:00", "2026-12-24T21:00:00+01:00"},
	{1, 1, 30, "2026-12-24T19:30:00.5+01:00", "2026-12-24T21:00:00+01:00"},
	{1, 4, 60, "2026-12-24T13:30:00Z", "2026-12-24T19:00:00+05:30"},
	{1, 6, 30, "2027-04-04T00:00:00+11:00", "2027-04-05T00:00:00+10:30"},
	{1, 7, 60, "2026-09-05T22:00:00-04:00", "2026-09-06T02:00:00-03:00"}, // regression: Next(23:00) was 23:00; "spans 1001 slots"
	{1, 7, 60, "2027-04-03T22:00:00-03:00", "2027-04-04T01:00:00-04:00"},
	{1, 8, 60, "2027-03-27T22:00:00-01:00", "2027-03-28T02:00:00Z"}, // regression: as Santiago
	{1, 9, 90, "2027-11-06T22:30:00-04:00", "2027-11-07T03:00:00-05:00"},
	{1, 10, 90, "2021-10-28T22:30:00+03:00", "2021-10-29T03:00:00+02:00"}, // regression: grid laid from the second midnight
	{1, 11, 60, "2011-12-29T22:00:00-10:00", "2011-12-31T02:00:00+14:00"}, // regression: Next went backwards
	{1, 12, 45, "2010-11-06T23:15:00-03:00", "2010-11-07T02:15:00-04:00"},
	{1, 13, 60, "1971-06-01T00:44:30Z", "1971-06-01T03:44:30Z"}, // regression: Format dropped the :30 seconds of the offset
	{1, 14, 45, "2027-04-04T00:00:00+13:45", "2027-04-05T00:00:00+12:45"},
	{1, 15, 60, "1994-12-30T22:00:00-10:00", "1995-01-01T02:00:00+14:00"}, // regression: as Apia
	{1, 0, 60, "9998-12-31T22:00:00-01:00", "9998-12-31T23:00:00-01:00"},  // regression: To formatted as 9999, which does not parse
	{1, 0, 60, "1970-12-31T23:00:00Z", "1971-01-01T01:00:00Z"},
	{1, 0, 5, "2026-01-01T00:00:00Z", "2026-01-04T11:20:00Z"},
	{2, 0, 0, "", ""},
	{2, 0, 0, "2026-12-24", ""},
}

// FuzzParseRange checks that whatever ParseRange accepts is a range of slots
// that tiles [From, To) exactly and whose slots read back as themselves, and
// that whatever it refuses is refused with a *FieldError naming from or to.
func FuzzParseRange(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.unit, s.minutes, s.zone, s.from, s.to)
	}
	f.Fuzz(func(t *testing.T, unit uint8, minutes int, zone uint8, from, to string) {
		s := fuzzSlots(t, unit, minutes, zone)
		r, err := s.ParseRange(from, to)
		if err != nil {
			if field := slotErrField(err); field != "from" && field != "to" {
				t.Fatalf("ParseRange(%q, %q) in %s %s = %v, want a *FieldError naming from or to", from, to, s.Describe(), s.Loc, err)
			}
			if r != (Range{}) {
				t.Fatalf("ParseRange(%q, %q) = %v, %v, want the zero Range with an error", from, to, r, err)
			}
			checkRefusedLong(t, s, from, to, err)
			return
		}
		if r.From >= r.To {
			t.Fatalf("ParseRange(%q, %q) = %v, want From < To", from, to, r)
		}
		n := s.Count(r)
		if n < 1 || n > MaxRangeSlots {
			t.Fatalf("Count(ParseRange(%q, %q)) = %d, want 1 to %d", from, to, n, MaxRangeSlots)
		}
		keys := s.Keys(r)
		if len(keys) != n {
			t.Fatalf("len(Keys(%v)) = %d, want Count = %d", r, len(keys), n)
		}
		checkSlotsTiled(t, s, r, keys)
		for _, k := range keys {
			if k >= r.To {
				t.Fatalf("Keys(%v) has %d, want every key < To", r, k)
			}
		}
		// The slot after the range exists too.
		if after := s.Next(r.To); after <= r.To {
			t.Fatalf("Next(%s) = %s, want after it", s.Format(r.To), s.Format(after))
		}
		if s.Unit == persistence.SlotSingle {
			return
		}
		for _, k := range append(keys, r.To) {
			next := s.Next(k)
			if s.Unit == persistence.SlotMinutes && next-k > int64(s.Minutes)*60 {
				t.Fatalf("Next(%s) = %s, want at most %d minutes on", s.Format(k), s.Format(next), s.Minutes)
			}
			if k == r.To && !readable(s, next) {
				continue // the slot after the range ends past the last year ParseRange reads
			}
			kf, nf := s.Format(k), s.Format(next)
			if got, err := s.ParseRange(kf, nf); err != nil || got != (Range{k, next}) {
				t.Fatalf("ParseRange(%q, %q) = %v, %v, want %v", kf, nf, got, err, Range{k, next})
			}
		}
	})
}

// checkRefusedLong checks that when ParseRange refuses a range whose ends
// are both valid, in order, the range really spans more than MaxRangeSlots.
func checkRefusedLong(t *testing.T, s Slots, from, to string, err error) {
	t.Helper()
	valid := func(v string) (int64, bool) {
		var k int64
		switch s.Unit {
		case persistence.SlotNight:
			d, err := time.Parse(DateLayout, v)
			if err != nil {
				return 0, false
			}
			k = d.Unix() / (24 * 60 * 60)
		case persistence.SlotMinutes:
			tm, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return 0, false
			}
			k = tm.Unix()
		default:
			return 0, false
		}
		if !readable(s, s.Next(k)) {
			return 0, false
		}
		_, err := s.ParseRange(v, s.Format(s.Next(k)))
		return k, err == nil
	}
	a, okA := valid(from)
	b, okB := valid(to)
	if !okA || !okB || a >= b {
		return
	}
	// Slots are at least a step long, except the last of each day; days are
	// at least 20 hours long.
	span, most := b-a, b-a
	if s.Unit == persistence.SlotMinutes {
		most = span/(int64(s.Minutes)*60) + span/(20*60*60) + 3
	}
	if most <= MaxRangeSlots {
		t.Fatalf("ParseRange(%q, %q) in %s %s = %v, want success: both ends are slot starts and at most %d slots lie between", from, to, s.Describe(), s.Loc, err, most)
	}
}

// readable reports whether a range ending at key can be written: nights end
// by 9999-12-31, minute slots by 9998 in the listing's zone.
func readable(s Slots, key int64) bool {
	if s.Unit == persistence.SlotNight {
		return time.Unix(key*24*60*60, 0).UTC().Year() <= 9999
	}
	return time.Unix(key, 0).In(s.Loc).Year() <= 9998
}

// FuzzSlotDay checks the minute grid of whole local days: the day an instant
// falls on holds it, its slots tile it exactly, only its last slot may be
// short, and every slot start reads back as itself.
func FuzzSlotDay(f *testing.F) {
	for _, s := range fuzzSeeds {
		if s.unit != 1 {
			continue
		}
		tm, err := time.Parse(time.RFC3339, s.from)
		if err == nil {
			f.Add(s.minutes, s.zone, tm.Unix())
		}
	}
	f.Add(60, uint8(11), int64(1325239200)) // 2011-12-30T10:00:00Z, Apia skips from -10 to +14
	f.Add(30, uint8(12), int64(1289098800)) // 2010-11-07T03:00:00Z, Goose Bay
	f.Fuzz(func(t *testing.T, minutes int, zone uint8, sec int64) {
		s := fuzzSlots(t, 1, minutes, zone)
		// Keep to the years ParseRange reads, with a day to spare.
		lo, hi := unixAt(t, "1971-01-03T00:00:00Z"), unixAt(t, "9998-12-29T00:00:00Z")
		if sec < lo || sec > hi {
			sec = lo + int64(uint64(sec)%uint64(hi-lo))
		}
		r := s.DefaultRange(time.Unix(sec, 0))
		if r.From > sec || sec >= r.To {
			t.Fatalf("DefaultRange(%s) = [%s, %s), want it to hold the instant", time.Unix(sec, 0).In(s.Loc).Format(time.RFC3339), s.Format(r.From), s.Format(r.To))
		}
		if d := time.Duration(r.To-r.From) * time.Second; d <= 0 || d > 50*time.Hour {
			t.Fatalf("DefaultRange(%s) = [%s, %s) lasts %v, want a day", time.Unix(sec, 0).In(s.Loc).Format(time.RFC3339), s.Format(r.From), s.Format(r.To), d)
		}
		if next := s.DefaultRange(time.Unix(r.To, 0)); next.From != r.To {
			t.Fatalf("the day after [%s, %s) starts at %s, want %s", s.Format(r.From), s.Format(r.To), s.Format(next.From), s.Format(r.To))
		}
		if prev := s.DefaultRange(time.Unix(r.From-1, 0)); prev.To != r.From {
			t.Fatalf("the day before [%s, %s) ends at %s, want %s", s.Format(r.From), s.Format(r.To), s.Format(prev.To), s.Format(r.From))
		}
		step := int64(s.Minutes) * 60
		n := 0
		for k := r.From; k < r.To; {
			next := s.Next(k)
			if next <= k || next > r.To || next-k > step || next-k < step && next != r.To {
				t.Fatalf("Next(%s) = %s in the day [%s, %s) of %d-minute slots", s.Format(k), s.Format(next), s.Format(r.From), s.Format(r.To), s.Minutes)
			}
			kf, nf := s.Format(k), s.Format(next)
			if got, err := s.ParseRange(kf, nf); err != nil || got != (Range{k, next}) {
				t.Fatalf("ParseRange(%q, %q) = %v, %v, want %v", kf, nf, got, err, Range{k, next})
			}
			k = next
			n++
		}
		if got := s.Count(r); got != min(n, MaxRangeSlots+1) {
			t.Fatalf("Count(%v) = %d, want %d", r, got, n)
		}
	})
}
