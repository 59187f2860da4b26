package resource

import (
	"fmt"
	"strings"
	"time"

	"github.com/bookd/bookd/persistence"
)

// MaxRangeSlots is the most slots one hold or one availability query may span.
const MaxRangeSlots = 1000

// DateLayout is how night slots are written: the calendar date the night starts on.
const DateLayout = "2006-01-02"

// FieldError is bad input in one named field of a request.
type FieldError struct {
	Field  string
	Detail string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Detail }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// Slots cuts a resource's time into slots and names each slot by a key:
//
//   - night: the key is the number of days from 1970-01-01 to the date the night
//     starts on, a calendar date in the listing's time zone. Counting dates, not
//     hours, keeps a night a night across DST changes.
//   - minutes: slots of Minutes minutes laid from each local midnight; the key is
//     the slot start in Unix seconds. On a day that DST makes shorter or longer
//     the grid restarts at the next local midnight, so the day's last slot may be
//     shorter; slot starts are always real, distinct instants.
//   - single: one slot, key 0.
//
// A Range is half-open: [From, To).
type Slots struct {
	Unit    persistence.SlotUnit
	Minutes int
	Loc     *time.Location
}

// NewSlots checks a resource's slot settings and returns its slot model.
func NewSlots(unit persistence.SlotUnit, minutes int, timeZone string) (Slots, error) {
	loc, err := time.LoadLocation(timeZone)
	// LoadLocation reads "" as UTC and "Local" as the server's own zone, which
	// may differ from node to node: neither names a listing's zone.
	if err != nil || timeZone == "" || timeZone == "Local" {
		return Slots{}, fieldErr("time_zone", "%q is not an IANA time zone name", timeZone)
	}
	switch unit {
	case persistence.SlotNight, persistence.SlotSingle:
		if minutes != 0 {
			return Slots{}, fieldErr("slot.minutes", "must be omitted for %s slots", unit)
		}
	case persistence.SlotMinutes:
		if minutes < 5 || minutes > 1440 || 1440%minutes != 0 {
			return Slots{}, fieldErr("slot.minutes", "must divide a day (1440) and be at least 5, got %d", minutes)
		}
	default:
		return Slots{}, fieldErr("slot.unit", "must be one of night, minutes, single; got %q", string(unit))
	}
	return Slots{Unit: unit, Minutes: minutes, Loc: loc}, nil
}

// Range is a run of slots [From, To) by key.
type Range struct {
	From, To int64
}

// ParseRange reads a range as a client wrote it: dates for nights, RFC 3339
// times on the slot grid for minute slots, both empty for a single slot.
// Errors are *FieldError naming "from" or "to".
func (s Slots) ParseRange(from, to string) (Range, error) {
	switch s.Unit {
	case persistence.SlotSingle:
		if from != "" {
			return Range{}, fieldErr("from", "must be omitted: this resource has a single slot")
		}
		if to != "" {
			return Range{}, fieldErr("to", "must be omitted: this resource has a single slot")
		}
		return Range{From: 0, To: 1}, nil
	case persistence.SlotNight:
		f, err := parseDate("from", from)
		if err != nil {
			return Range{}, err
		}
		t, err := parseDate("to", to)
		if err != nil {
			return Range{}, err
		}
		return s.checkSpan(Range{From: f, To: t})
	case persistence.SlotMinutes:
		f, err := s.parseSlotStart("from", from)
		if err != nil {
			return Range{}, err
		}
		t, err := s.parseSlotStart("to", to)
		if err != nil {
			return Range{}, err
		}
		return s.checkSpan(Range{From: f, To: t})
	}
	return Range{}, fieldErr("slot.unit", "unknown slot unit %q", string(s.Unit))
}

// checkSpan returns r if it is not empty and not too long.
func (s Slots) checkSpan(r Range) (Range, error) {
	if r.From >= r.To {
		return Range{}, fieldErr("to", "must be after from")
	}
	if n := s.Count(r); n > MaxRangeSlots {
		return Range{}, fieldErr("to", "the range spans %d slots; at most %d are allowed", n, MaxRangeSlots)
	}
	return r, nil
}

func parseDate(field, v string) (int64, error) {
	if v == "" {
		return 0, fieldErr(field, "is required: a date like 2026-12-24 (the night starting that day)")
	}
	d, err := time.Parse(DateLayout, v)
	if err != nil {
		return 0, fieldErr(field, "%q is not a date like 2026-12-24", v)
	}
	return dayNumber(d.Year(), d.Month(), d.Day()), nil
}

// dayNumber is the number of days from 1970-01-01 to the civil date y-m-d.
func dayNumber(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func dayDate(n int64) time.Time { return time.Unix(n*86400, 0).UTC() }

func (s Slots) parseSlotStart(field, v string) (int64, error) {
	if v == "" {
		return 0, fieldErr(field, "is required: an RFC 3339 time like 2026-12-24T19:30:00+01:00")
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return 0, fieldErr(field, "%q is not an RFC 3339 time like 2026-12-24T19:30:00+01:00", v)
	}
	// The year in the listing's zone, not in the offset the client wrote, so
	// that every key Format writes parses again.
	if y := t.In(s.Loc).Year(); y < 1971 || y > 9998 {
		return 0, fieldErr(field, "%q is out of range", v)
	}
	if !s.onGrid(t) {
		return 0, fieldErr(field, "%s is not a slot boundary: slots are %d minutes from local midnight in %s", v, s.Minutes, s.Loc)
	}
	return t.Unix(), nil
}

// maxZoneOffset bounds how far any zone's clocks are from UTC, in seconds
// (real offsets lie between -12h and +14h).
const maxZoneOffset = 27 * 3600

// dateStart returns the first instant whose local date in s.Loc is y-m-d or
// later: local midnight; where DST skips midnight (America/Santiago,
// Atlantic/Azores, America/Havana), the instant the clocks jump to; where
// midnight happens twice (Asia/Amman until 2022), the first; where the date
// itself is skipped (Pacific/Apia, 2011-12-30), the start of the next one.
// Where the local date briefly steps back (America/Goose_Bay until 2011) it is
// an instant where the date is reached, not always the first; day copes.
//
// time.Date alone is not enough: for a midnight that does not exist it may
// return 23:00 of the day before, and for one that happens twice, the second.
// Time.ZoneBounds is no help either: its end is wrong on the last day of leap
// years served by a zone's TZ rule (golang/go#81583).
func (s Slots) dateStart(y int, m time.Month, d int) time.Time {
	want := time.Date(y, m, d, 0, 0, 0, 0, time.UTC) // normalizes d out of range
	y, m, d = want.Date()
	before := func(u int64) bool { // the local date at u is before y-m-d
		ly, lm, ld := time.Unix(u, 0).In(s.Loc).Date()
		return ly < y || ly == y && (lm < m || lm == m && ld < d)
	}
	if c := time.Date(y, m, d, 0, 0, 0, 0, s.Loc); !before(c.Unix()) && before(c.Unix()-1) {
		return c // the usual case: a midnight with the day before just before it
	}
	// Search [lo, hi] for the first second of the date, keeping before(lo) and
	// !before(hi). Transitions fall on whole seconds.
	lo, hi := want.Unix()-maxZoneOffset, want.Unix()+maxZoneOffset
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if before(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return time.Unix(hi, 0).In(s.Loc)
}

// day returns the start of the day t falls on in s.Loc and the start of the
// next day, with start <= t < next. The day is t's local date, except where a
// DST change briefly turns the local date back (America/Goose_Bay changed at
// 00:01 until 2011): t belongs to the last day that has started by then, so
// days never overlap and Next always moves forward.
func (s Slots) day(t time.Time) (start, next time.Time) {
	y, m, d := t.In(s.Loc).Date()
	start = s.dateStart(y, m, d)
	for start.After(t) {
		d--
		start = s.dateStart(y, m, d)
	}
	next = s.dateStart(y, m, d+1)
	for !next.After(t) {
		d++
		start, next = next, s.dateStart(y, m, d+1)
	}
	return start, next
}

func (s Slots) onGrid(t time.Time) bool {
	if t.Nanosecond() != 0 {
		return false
	}
	start, _ := s.day(t)
	return (t.Unix()-start.Unix())%int64(s.Minutes*60) == 0
}

// Next returns the key of the slot after key.
func (s Slots) Next(key int64) int64 {
	if s.Unit != persistence.SlotMinutes {
		return key + 1
	}
	_, end := s.day(time.Unix(key, 0))
	return min(key+int64(s.Minutes)*60, end.Unix())
}

// Each calls fn with every slot key of r, in order, until fn returns false.
func (s Slots) Each(r Range, fn func(key int64) bool) {
	for k := r.From; k < r.To; k = s.Next(k) {
		if !fn(k) {
			return
		}
	}
}

// Keys returns the slot keys of r, in order.
func (s Slots) Keys(r Range) []int64 {
	var keys []int64
	s.Each(r, func(k int64) bool { keys = append(keys, k); return true })
	return keys
}

// Count returns the number of slots in r, counting no further than
// MaxRangeSlots+1.
func (s Slots) Count(r Range) int {
	switch s.Unit {
	case persistence.SlotNight, persistence.SlotSingle:
		n := r.To - r.From
		if n > MaxRangeSlots+1 {
			return MaxRangeSlots + 1
		}
		return int(max(n, 0))
	}
	n := 0
	s.Each(r, func(int64) bool { n++; return n <= MaxRangeSlots })
	return n
}

// Format writes a slot key as clients see it: a date for nights, an RFC 3339
// time in the listing's zone for minute slots, "" for a single slot.
func (s Slots) Format(key int64) string {
	switch s.Unit {
	case persistence.SlotNight:
		return dayDate(key).Format(DateLayout)
	case persistence.SlotMinutes:
		t := time.Unix(key, 0).In(s.Loc)
		if _, off := t.Zone(); off%60 != 0 {
			// RFC 3339 offsets are whole minutes; Africa/Monrovia was
			// -00:44:30 until 1972. Write such times in UTC, so they parse
			// back to the same instant.
			t = t.UTC()
		}
		return t.Format(time.RFC3339)
	}
	return ""
}

// End returns the instant the slot key ends, used to tell slots in the past.
func (s Slots) End(key int64) time.Time {
	switch s.Unit {
	case persistence.SlotNight:
		d := dayDate(key + 1)
		// A night ends on the morning of the next date; noon is a fair check-out.
		return time.Date(d.Year(), d.Month(), d.Day(), 12, 0, 0, 0, s.Loc)
	case persistence.SlotMinutes:
		return time.Unix(s.Next(key), 0)
	}
	return time.Time{}
}

// DefaultRange is the range an availability query without from and to shows:
// the next 14 nights, or today's slots (local day) for minute slots, or the
// single slot.
func (s Slots) DefaultRange(now time.Time) Range {
	switch s.Unit {
	case persistence.SlotNight:
		l := now.In(s.Loc)
		d := dayNumber(l.Year(), l.Month(), l.Day())
		return Range{From: d, To: d + 14}
	case persistence.SlotMinutes:
		start, next := s.day(now)
		return Range{From: start.Unix(), To: next.Unix()}
	}
	return Range{From: 0, To: 1}
}

// Describe returns a short human text of the slot unit, for logs and errors.
func (s Slots) Describe() string {
	var b strings.Builder
	b.WriteString(string(s.Unit))
	if s.Unit == persistence.SlotMinutes {
		fmt.Fprintf(&b, ":%d", s.Minutes)
	}
	return b.String()
}
