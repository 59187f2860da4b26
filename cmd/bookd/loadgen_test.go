package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

// TestLoadgenFlashSale runs `bookd loadgen` against a whole node in this
// process and checks its summary against what the node reports.
func TestLoadgenFlashSale(t *testing.T) {
	n := startNode(t, slowMachine...)
	t.Run("text", func(t *testing.T) { testLoadgenText(t, n) })
	t.Run("interrupt", func(t *testing.T) { testLoadgenInterrupt(t, n) })

	n.newResource(t, "lg-pool", `{"unit":"single"}`, 300, 0)
	n.newResource(t, "lg-pair-a", `{"unit":"single"}`, 100, 0)
	n.newResource(t, "lg-pair-b", `{"unit":"single"}`, 100, 0)
	n.newResource(t, "lg-nights", `{"unit":"night"}`, 10, 0)

	tests := []struct {
		name      string
		args      []string
		resources []string
		from, to  string
		accepted  int64
		rejected  int64
		confirmed int64 // holds
		ceiling   bool  // a ceiling is in the summary
	}{
		{
			name:      "one hot resource",
			args:      []string{"--resources", "lg-pool", "--clients", "16", "--requests", "600"},
			resources: []string{"lg-pool"}, accepted: 300, rejected: 300, ceiling: true,
		},
		{
			name: "two resources, two units, half confirmed, no keys",
			args: []string{"--resources", "lg-pair-a,lg-pair-b", "--clients", "8", "--requests", "200",
				"--quantity", "2", "--confirm-share", "0.5", "--idempotency=false", "--livez-requests", "50"},
			resources: []string{"lg-pair-a", "lg-pair-b"}, accepted: 100, rejected: 100, confirmed: 50, ceiling: true,
		},
		{
			name: "three nights, no ceiling",
			args: []string{"--resources", "lg-nights", "--clients", "4", "--requests", "40",
				"--from", "2030-06-01", "--to", "2030-06-04", "--livez-requests", "-1"},
			resources: []string{"lg-nights"}, from: "2030-06-01", to: "2030-06-04", accepted: 10, rejected: 30,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"--target", n.base, "--token", n.customer, "--json", "--timeout", "30s", "--duration", "60s"}, tt.args...)
			if err := (&Loadgen{Stdout: &out, Stderr: io.Discard}).Run(t.Context(), args); err != nil {
				t.Fatalf("Run(%q) = %v\n%s", args, err, out.String())
			}
			var s loadgenSummary
			if err := json.Unmarshal(out.Bytes(), &s); err != nil {
				t.Fatalf("decode summary: %v\n%s", err, out.String())
			}
			if s.Accepted != tt.accepted || s.Rejected != tt.rejected || s.Errors != 0 || s.Confirmed != tt.confirmed || s.ConfirmErrors != 0 {
				t.Errorf("summary accepted %d rejected %d errors %d %v confirmed %d (%d failed), want %d, %d, 0, %d (0 failed)",
					s.Accepted, s.Rejected, s.Errors, s.ErrorKinds, s.Confirmed, s.ConfirmErrors, tt.accepted, tt.rejected, tt.confirmed)
			}
			if want := tt.accepted + tt.rejected; s.Attempts != want || s.Stopped != "requests" {
				t.Errorf("summary attempts %d stopped by %q, want %d stopped by requests", s.Attempts, s.Stopped, want)
			}
			if !s.Check.OK || len(s.Check.Resources) != len(tt.resources) {
				t.Errorf("check = %+v, want ok for %v", s.Check, tt.resources)
			}
			if (s.Ceiling != nil) != tt.ceiling {
				t.Errorf("ceiling = %+v, want one: %v", s.Ceiling, tt.ceiling)
			} else if tt.ceiling && (s.Ceiling.Errors != 0 || s.Ceiling.RequestsPerSecond <= 0 || s.CeilingShare <= 0) {
				t.Errorf("ceiling = %+v, share %v, want no errors and a rate", s.Ceiling, s.CeilingShare)
			}
			if l := s.Latency; !(l.P50 > 0 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max) {
				t.Errorf("latency = %+v, want 0 < p50 ≤ p95 ≤ p99 ≤ max", l)
			}

			var confirmedUnits int
			for _, id := range tt.resources {
				a := n.availability(t, id, tt.from, tt.to)
				if len(a.Slots) == 0 {
					t.Errorf("availability of %s has no slots", id)
				}
				for _, sl := range a.Slots {
					if sl.Free != 0 {
						t.Errorf("availability of %s at %q = %+v, want 0 free", id, sl.Start, sl)
					}
				}
				confirmedUnits += a.Slots[0].Confirmed
			}
			if q := 2; tt.confirmed > 0 && confirmedUnits != int(tt.confirmed)*q {
				t.Errorf("confirmed units = %d, want %d", confirmedUnits, int(tt.confirmed)*q)
			}
		})
	}
}

// testLoadgenText checks the summary for people, and that a sale on a
// sold-out resource still checks ok: every attempt is a 409.
func testLoadgenText(t *testing.T, n *testNode) {
	n.newResource(t, "lg-tiny", `{"unit":"single"}`, 3, 0)
	var out, progress bytes.Buffer
	// --register: loadgen signs up a customer of its own.
	args := []string{"--target", n.base, "--register", "--resources", "lg-tiny", "--clients", "2", "--requests", "10", "--timeout", "30s"}
	if err := (&Loadgen{Stdout: &out, Stderr: &progress}).Run(t.Context(), args); err != nil {
		t.Fatalf("Run(%q) = %v\n%s", args, err, out.String())
	}
	for _, want := range []string{"accepted 3 (3 units), rejected 7 (409 sold-out), errors 0", "of the /livez ceiling", "lg-tiny: taken 0 → 3 (+3)", "\ncheck: ok\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(progress.String(), "sale: POST /v1/holds × 10") {
		t.Errorf("stderr lacks the sale's start:\n%s", progress.String())
	}

	out.Reset()
	if err := (&Loadgen{Stdout: &out, Stderr: io.Discard}).Run(t.Context(), args); err != nil {
		t.Fatalf("second Run(%q) = %v\n%s", args, err, out.String())
	}
	if want := "accepted 0 (0 units), rejected 10 (409 sold-out), errors 0"; !strings.Contains(out.String(), want) {
		t.Errorf("second summary lacks %q:\n%s", want, out.String())
	}
}

// testLoadgenInterrupt ends the context during the sale: the run stops
// early and still prints a summary that checks ok.
func testLoadgenInterrupt(t *testing.T, n *testNode) {
	n.newResource(t, "lg-big", `{"unit":"single"}`, 1_000_000, 0)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	var out bytes.Buffer
	args := []string{"--target", n.base, "--token", n.customer, "--resources", "lg-big", "--clients", "4", "--requests", "100000000", "--livez-requests", "-1", "--json"}
	began := time.Now()
	if err := (&Loadgen{Stdout: &out, Stderr: io.Discard}).Run(ctx, args); err != nil {
		t.Fatalf("Run(%q) = %v\n%s", args, err, out.String())
	}
	if d := time.Since(began); d > 20*time.Second {
		t.Errorf("Run took %v after its context ended at 1 s", d)
	}
	var s loadgenSummary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("decode summary: %v\n%s", err, out.String())
	}
	if s.Stopped != "interrupted" || s.Accepted == 0 || !s.Check.OK {
		t.Errorf("summary stopped by %q, accepted %d, check %+v; want interrupted, some accepted, ok", s.Stopped, s.Accepted, s.Check)
	}
}

func TestLoadgenFlagsValidate(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the error
	}{
		{[]string{}, "--resources"},
		{[]string{"--resources", " , "}, "--resources"},
		{[]string{"--resources", "a,a"}, "--resources: a is named twice"},
		{[]string{"--resources", "a", "--target", "localhost:3000"}, "--target"},
		{[]string{"--resources", "a", "--target", "ftp://127.0.0.1/"}, "--target"},
		{[]string{"--resources", "a", "--clients", "0"}, "--clients"},
		{[]string{"--resources", "a", "--quantity", "0"}, "--quantity"},
		{[]string{"--resources", "a", "--requests", "0"}, "--requests"},
		{[]string{"--resources", "a", "--duration", "0s"}, "--duration"},
		{[]string{"--resources", "a", "--timeout", "-1s"}, "--timeout"},
		{[]string{"--resources", "a", "--confirm-share", "1.5"}, "--confirm-share"},
		{[]string{"--resources", "a", "--confirm-share", "NaN"}, "--confirm-share"},
		{[]string{"--resources", "a", "--from", "2030-06-01"}, "--from and --to"},
		{[]string{"--resources", "a", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		err := (&Loadgen{Stdout: io.Discard, Stderr: io.Discard}).Run(t.Context(), tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run(%q) = %v, want an error naming %q", tt.args, err, tt.want)
		}
	}
}

func TestLoadgenHistogram(t *testing.T) {
	// Every value falls into a bucket whose bounds hold it, and buckets are
	// at most 1/histSub of their value wide.
	for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 129, 255, 256, 1000, 4095, 4096, 123456, 1 << 30, 1<<37 + 12345} {
		i := histIndex(v)
		lo := int64(0)
		if i > 0 {
			lo = histUpper(i-1) + 1
		}
		if up := histUpper(i); v < lo || v > up || float64(up-lo) > float64(v)/histSub {
			t.Errorf("histIndex(%d) = %d, bucket [%d, %d], want it to hold %d within 1/%d", v, i, lo, up, v, histSub)
		}
	}

	var h histogram
	for v := 1; v <= 10000; v++ {
		h.Record(time.Duration(v) * time.Microsecond)
	}
	c := h.snapshot()
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.95, 9500 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {1, 10000 * time.Microsecond}} {
		got, ok := c.quantile(tt.q)
		if !ok || got < tt.want || float64(got-tt.want) > float64(tt.want)/histSub {
			t.Errorf("quantile(%v) = %v, %v, want %v within 1/%d above", tt.q, got, ok, tt.want, histSub)
		}
	}
	if l := latencyOf(&h); l.Max != 10 {
		t.Errorf("latencyOf max = %v ms, want 10", l.Max)
	}
	if _, ok := c.minus(c).quantile(0.99); ok {
		t.Errorf("quantile of an empty window is ok, want none")
	}
}

func TestLoadgenCheckSlots(t *testing.T) {
	one := func(taken int64) []slotTaken { return []slotTaken{{Taken: taken}} }
	tests := []struct {
		name           string
		units, unknown int64
		before, after  []slotTaken
		want           string // in the problem; "" for ok
	}{
		{"exact", 300, 0, one(0), one(300), ""},
		{"exact over earlier holds", 300, 0, one(12), one(312), ""},
		{"fewer taken than accepted", 300, 0, one(0), one(299), "taken 299 < 300"},
		{"more taken than accepted", 300, 0, one(0), one(301), "grew by 301, want exactly 300"},
		{"unknown outcomes within bounds", 300, 5, one(0), one(303), ""},
		{"unknown outcomes exceeded", 300, 5, one(0), one(306), "at most 5 of unknown outcome"},
		{"earlier holds released", 300, 0, one(100), one(350), "grew by 250"},
		{"no slots", 1, 0, nil, nil, "no slot"},
		{"one of two nights wrong", 2, 0,
			[]slotTaken{{"2030-06-01", 0}, {"2030-06-02", 0}}, []slotTaken{{"2030-06-01", 2}, {"2030-06-02", 3}}, "grew by 3 at 2030-06-02"},
		{"slot appeared", 2, 0, []slotTaken{{"a", 0}}, []slotTaken{{"a", 2}, {"b", 2}}, "slot at b was not listed"},
	}
	for _, tt := range tests {
		_, got := checkSlots(tt.units, tt.unknown, tt.before, tt.after)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s: checkSlots(%d, %d, %v, %v) = %q, want %q", tt.name, tt.units, tt.unknown, tt.before, tt.after, got, tt.want)
		}
	}
}
