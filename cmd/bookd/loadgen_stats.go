package main

import (
	"fmt"
	"io"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// ---- latency histogram ------------------------------------------------

// The histogram is log-linear, as HdrHistogram is: values below histSub
// microseconds have a bucket each; above, every power of two is cut into
// histSub buckets, so a bucket is at most 1/histSub (1.6 %) of its value
// wide. Memory is fixed whatever the number of samples.
const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	histMaxExp  = 32 // values up to 2^(32+6) µs (76 hours) have their own bucket
	histBuckets = (histMaxExp + 1) * histSub
)

// histogram counts latencies in microseconds. Record may be called from any
// goroutine; a snapshot taken while others record is not a single instant,
// which progress lines can live with.
type histogram struct {
	counts [histBuckets]atomic.Int64
	max    atomic.Int64 // µs
}

type histCounts [histBuckets]int64

// histIndex is the bucket of v µs.
func histIndex(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - histSubBits - 1 // v>>e is in [histSub, 2·histSub)
	if e >= histMaxExp {
		return histBuckets - 1
	}
	return e*histSub + int(v>>e)
}

// histUpper is the highest value that falls into bucket i.
func histUpper(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	e := i/histSub - 1
	lower := int64(i-e*histSub) << e
	return lower + int64(1)<<e - 1
}

// Record counts one latency.
func (h *histogram) Record(d time.Duration) {
	us := d.Microseconds()
	h.counts[histIndex(us)].Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

func (h *histogram) snapshot() *histCounts {
	var c histCounts
	for i := range h.counts {
		c[i] = h.counts[i].Load()
	}
	return &c
}

// minus is c − prev bucket by bucket: the samples recorded between two
// snapshots.
func (c *histCounts) minus(prev *histCounts) *histCounts {
	var d histCounts
	for i := range c {
		d[i] = c[i] - prev[i]
	}
	return &d
}

// quantile is the latency below or at which a share q (0..1) of the samples
// lie, as the upper bound of its bucket, and false when there are none.
func (c *histCounts) quantile(q float64) (time.Duration, bool) {
	var total int64
	for _, n := range c {
		total += n
	}
	if total == 0 {
		return 0, false
	}
	rank := max(int64(q*float64(total)+0.999999), 1)
	var seen int64
	for i, n := range c {
		seen += n
		if seen >= rank {
			return time.Duration(histUpper(i)) * time.Microsecond, true
		}
	}
	return time.Duration(histUpper(histBuckets-1)) * time.Microsecond, true
}

// ---- outcome counters -------------------------------------------------

// phaseStats counts the outcomes of one phase (the /livez ceiling or the
// sale). Every method may be called from any goroutine.
type phaseStats struct {
	attempts atomic.Int64 // finished attempts, whatever their outcome
	ok       atomic.Int64 // 201 hold (sale) or 200 (ceiling)
	rejected atomic.Int64 // 409 sold-out
	timeouts atomic.Int64
	failed   atomic.Int64 // transport errors other than timeouts
	stopped  atomic.Int64 // cut off by the caller's context (interrupt)
	statuses atomic.Int64 // answers with any other status…
	byStatus [600]atomic.Int64
	latency  histogram
}

// Kinds of error, as the summary names them.
const (
	errKindTimeout   = "timeout"
	errKindTransport = "transport"
	errKindStopped   = "interrupted"
)

func (s *phaseStats) status(code int) {
	s.statuses.Add(1)
	s.byStatus[min(max(code, 0), len(s.byStatus)-1)].Add(1)
}

func (s *phaseStats) fail(kind string) {
	switch kind {
	case errKindTimeout:
		s.timeouts.Add(1)
	case errKindStopped:
		s.stopped.Add(1)
	default:
		s.failed.Add(1)
	}
}

func (s *phaseStats) errors() int64 {
	return s.timeouts.Load() + s.failed.Load() + s.stopped.Load() + s.statuses.Load()
}

// errorKinds counts errors by kind: "status 503", "timeout", "transport",
// "interrupted".
func (s *phaseStats) errorKinds() map[string]int64 {
	m := map[string]int64{}
	for code := range s.byStatus {
		if n := s.byStatus[code].Load(); n > 0 {
			m[fmt.Sprintf("status %d", code)] = n
		}
	}
	for kind, n := range map[string]int64{errKindTimeout: s.timeouts.Load(), errKindTransport: s.failed.Load(), errKindStopped: s.stopped.Load()} {
		if n > 0 {
			m[kind] = n
		}
	}
	return m
}

// ---- the summary ------------------------------------------------------

// loadgenSummary is what `bookd loadgen` reports at the end; --json prints it
// as it is. Latencies are in milliseconds, rates per second.
type loadgenSummary struct {
	Target    string   `json:"target"`
	Clients   int      `json:"clients"`
	Resources []string `json:"resources"`
	Quantity  int      `json:"quantity"`

	// Ceiling is GET /livez with the same clients; nil when skipped.
	Ceiling *ceilingSummary `json:"ceiling,omitempty"`
	// CeilingShare is attempts/s of the sale ÷ requests/s of the ceiling.
	CeilingShare float64 `json:"ceiling_share,omitempty"`

	Attempts          int64   `json:"attempts"`
	Seconds           float64 `json:"seconds"`
	AttemptsPerSecond float64 `json:"attempts_per_second"`
	// Stopped says what ended the sale: "requests", "duration" or "interrupted".
	Stopped  string `json:"stopped"`
	Accepted int64  `json:"accepted"`
	Rejected int64  `json:"rejected"` // 409 sold-out
	Errors   int64  `json:"errors"`
	// ErrorKinds counts errors by kind: "status 503", "timeout", "transport", "interrupted".
	ErrorKinds map[string]int64 `json:"error_kinds"`
	// Unknown counts attempts whose outcome the run could not learn (timeouts,
	// transport errors, 5xx): the server may have held them.
	Unknown       int64          `json:"unknown_outcomes"`
	Confirmed     int64          `json:"confirmed"`
	ConfirmErrors int64          `json:"confirm_errors"`
	Latency       latencySummary `json:"latency"`
	Check         checkSummary   `json:"check"`
}

type ceilingSummary struct {
	Requests          int64          `json:"requests"`
	Seconds           float64        `json:"seconds"`
	RequestsPerSecond float64        `json:"requests_per_second"`
	Errors            int64          `json:"errors"`
	Latency           latencySummary `json:"latency"`
}

type latencySummary struct {
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func latencyOf(h *histogram) latencySummary {
	c := h.snapshot()
	q := func(p float64) float64 { d, _ := c.quantile(p); return ms(d) }
	// The exact max caps the upper bound of the highest bucket.
	mx := ms(time.Duration(h.max.Load()) * time.Microsecond)
	return latencySummary{P50: min(q(0.50), mx), P95: min(q(0.95), mx), P99: min(q(0.99), mx), Max: mx}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// checkSummary is the verdict on what availability reports after the sale.
type checkSummary struct {
	OK        bool            `json:"ok"`
	Resources []resourceCheck `json:"resources"`
}

// resourceCheck compares, for one resource, the units the run was told yes
// to with what its availability reports as taken (held + confirmed).
type resourceCheck struct {
	Resource string      `json:"resource"`
	Accepted int64       `json:"accepted"`
	Units    int64       `json:"units"`         // accepted × quantity
	Unknown  int64       `json:"unknown_units"` // units of attempts with an unknown outcome
	Slots    []slotCheck `json:"slots"`
	OK       bool        `json:"ok"`
	Problem  string      `json:"problem,omitempty"`
}

type slotCheck struct {
	Start  string `json:"start,omitempty"`
	Before int64  `json:"taken_before"`
	After  int64  `json:"taken_after"`
}

// slotTaken is one slot of an availability answer: units held + confirmed.
type slotTaken struct {
	Start string
	Taken int64
}

// checkSlots judges one resource. Every slot of the range must report at
// least the accepted units as taken, and must have grown by exactly them
// since before the run, or, when some attempts ended with an unknown
// outcome, by at most that many units more. It assumes nobody else books the
// resource during the run and no hold of the run expires before the check.
func checkSlots(units, unknown int64, before, after []slotTaken) ([]slotCheck, string) {
	if len(after) == 0 {
		return nil, "availability lists no slot"
	}
	was := map[string]int64{}
	for _, s := range before {
		was[s.Start] = s.Taken
	}
	var slots []slotCheck
	var problems []string
	for _, s := range after {
		b, ok := was[s.Start]
		slots = append(slots, slotCheck{Start: s.Start, Before: b, After: s.Taken})
		where := ""
		if s.Start != "" {
			where = " at " + s.Start
		}
		grew := s.Taken - b
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("slot%s was not listed before the run", where))
		case s.Taken < units:
			problems = append(problems, fmt.Sprintf("taken %d%s < %d accepted units", s.Taken, where, units))
		case unknown == 0 && grew != units:
			problems = append(problems, fmt.Sprintf("taken grew by %d%s, want exactly %d accepted units", grew, where, units))
		case grew < units || grew > units+unknown:
			problems = append(problems, fmt.Sprintf("taken grew by %d%s, want %d accepted units plus at most %d of unknown outcome", grew, where, units, unknown))
		}
	}
	if len(before) != len(after) {
		problems = append(problems, fmt.Sprintf("%d slots before the run, %d after", len(before), len(after)))
	}
	return slots, strings.Join(problems, "; ")
}

// writeText prints the summary for people.
func (s *loadgenSummary) writeText(w io.Writer) {
	fmt.Fprintf(w, "target     %s: clients %d, quantity %d, resources %s\n", s.Target, s.Clients, s.Quantity, strings.Join(s.Resources, ","))
	if c := s.Ceiling; c != nil {
		fmt.Fprintf(w, "ceiling    GET /livez: %d requests in %.2f s = %.0f requests/s, p50 %.2f ms, p99 %.2f ms, %d errors\n",
			c.Requests, c.Seconds, c.RequestsPerSecond, c.Latency.P50, c.Latency.P99, c.Errors)
	}
	ended := map[string]string{"requests": "all requests made", "duration": "duration passed", "interrupted": "interrupted"}[s.Stopped]
	fmt.Fprintf(w, "sale       POST /v1/holds: %d attempts in %.2f s = %.0f attempts/s (ended: %s)\n", s.Attempts, s.Seconds, s.AttemptsPerSecond, ended)
	if s.Ceiling != nil && s.Ceiling.RequestsPerSecond > 0 {
		fmt.Fprintf(w, "           holds/s = %.0f%% of the /livez ceiling\n", 100*s.CeilingShare)
	}
	fmt.Fprintf(w, "outcomes   accepted %d (%d units), rejected %d (409 sold-out), errors %d%s\n",
		s.Accepted, s.Accepted*int64(s.Quantity), s.Rejected, s.Errors, kindsText(s.ErrorKinds))
	if s.Unknown > 0 {
		fmt.Fprintf(w, "           %d attempts ended without an answer the run could trust; the server may have held them\n", s.Unknown)
	}
	if s.Confirmed > 0 || s.ConfirmErrors > 0 {
		fmt.Fprintf(w, "confirmed  %d holds, %d confirms failed\n", s.Confirmed, s.ConfirmErrors)
	}
	l := s.Latency
	fmt.Fprintf(w, "latency    p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms\n", l.P50, l.P95, l.P99, l.Max)
	for _, r := range s.Check.Resources {
		verdict := "ok"
		if !r.OK {
			verdict = "FAILED: " + r.Problem
		}
		for _, sl := range r.Slots {
			at := ""
			if sl.Start != "" {
				at = " " + sl.Start
			}
			fmt.Fprintf(w, "check      %s%s: taken %d → %d (+%d), accepted %d × %d = %d units: %s\n",
				r.Resource, at, sl.Before, sl.After, sl.After-sl.Before, r.Accepted, s.Quantity, r.Units, verdict)
		}
		if len(r.Slots) == 0 {
			fmt.Fprintf(w, "check      %s: %s\n", r.Resource, verdict)
		}
	}
	if s.Check.OK {
		fmt.Fprintln(w, "check: ok")
	} else {
		fmt.Fprintf(w, "check: FAILED %s\n", s.checkProblems())
	}
}

func (s *loadgenSummary) checkProblems() string {
	var p []string
	for _, r := range s.Check.Resources {
		if !r.OK {
			p = append(p, r.Resource+": "+r.Problem)
		}
	}
	return strings.Join(p, "; ")
}

// kindsText is ": 2 × status 503, 1 × timeout", or "" without errors.
func kindsText(kinds map[string]int64) string {
	if len(kinds) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		parts = append(parts, fmt.Sprintf("%d × %s", kinds[k], k))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
