package main

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// TestBenchFlash runs the whole benchmark small: every mode at 1 and 4
// clients, 200 requests each, against a real PostgreSQL server and a real
// bookd. Its timings decide nothing; it checks that every run made its
// decisions without errors and that loadgen's check held for each.
func TestBenchFlash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and builds bookd")
	}
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	err := m.Run(t.Context(), []string{"--clients", "1,4", "--requests", "200", "--duration", "20s", "--rounds", "1"})
	t.Logf("stdout:\n%s", stdout.String())
	if err != nil {
		t.Fatalf("Run = %v, want nil; stderr:\n%s", err, stderr.String())
	}

	rows, ratios := summarize(m.Results)
	if got, want := len(rows), 3*2; got != want {
		t.Fatalf("table has %d rows, want %d (3 modes × 2 client counts)", got, want)
	}
	for _, r := range rows {
		name := fmt.Sprintf("%s at %d clients", r.Mode.Name, r.Clients)
		if r.ChecksFailed != 0 || r.Errors != 0 {
			t.Errorf("%s: %d checks failed, %d errors, want none", name, r.ChecksFailed, r.Errors)
		}
		if r.DecisionsPerSecond <= 0 {
			t.Errorf("%s: %v decisions/s, want > 0", name, r.DecisionsPerSecond)
		}
	}
	for _, res := range m.Results {
		if res.Decisions != 200 || res.Stopped != "requests" {
			t.Errorf("%s at %d clients: %d decisions, stopped by %q, want 200 stopped by \"requests\"",
				res.Mode, res.Clients, res.Decisions, res.Stopped)
		}
	}
	if len(ratios) != 2 || ratios[0].AC == 0 || ratios[0].AB == 0 {
		t.Errorf("ratios = %+v, want a/c and a/b at 1 and 4 clients", ratios)
	}
	if len(m.Ceilings) != 2 || m.Ceilings[1].RequestsPerSecond <= 0 || m.Ceilings[1].Errors != 0 {
		t.Errorf("ceilings = %+v, want GET /livez measured without errors at 1 and 4 clients", m.Ceilings)
	}

	// Every run knows what CPU its server and PostgreSQL used per decision.
	if runtime.GOOS == "linux" {
		for _, r := range m.Results {
			if r.ServerCPU <= 0 || r.PostgresCPU <= 0 || r.LoadgenCPU <= 0 {
				t.Errorf("%s at %d clients: CPU per decision server %.1f µs, postgres %.1f µs, loadgen %.1f µs, want all measured",
					r.Mode, r.Clients, r.ServerCPU, r.PostgresCPU, r.LoadgenCPU)
			}
		}
	}
	for _, c := range m.Ceilings {
		if c.LoadgenCPU <= 0 {
			t.Errorf("GET /livez at %d clients: loadgen CPU per request %.1f µs, want it measured", c.Clients, c.LoadgenCPU)
		}
	}

	// The printed table: a line per row, each with its check.
	out := stdout.String()
	for _, md := range modes {
		if n := strings.Count(out, " "+md.Key+" "+md.Name); n != 2 {
			t.Errorf("table prints %d lines of mode %s %s, want 2:\n%s", n, md.Key, md.Name, out)
		}
	}
	oks := 0
	for line := range strings.Lines(out) {
		if strings.Contains(line, " ok ") {
			oks++
		}
	}
	if oks != 6 {
		t.Errorf("table shows %d checks ok, want 6:\n%s", oks, out)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string // "" for none
	}{
		{nil, ""},
		{[]string{"--clients", "1,0"}, "--clients"},
		{[]string{"--clients", "x"}, "clients"},
		{[]string{"--requests", "0"}, "--requests"},
		{[]string{"--requests", "1000001"}, "--requests"},
		{[]string{"--rounds", "0"}, "--rounds"},
		{[]string{"--modes", "a,d"}, "--modes"},
		{[]string{"--modes", "a,a"}, "--modes"},
		{[]string{"--rowlock-pool", "100000"}, "--rowlock-pool"},
		{[]string{"--max-connections", "10"}, "--max-connections"},
		{[]string{"--duration", "0s"}, "--duration"},
		{[]string{"--loadgen-procs", "-1"}, "--loadgen-procs"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			m := &Main{Stderr: io.Discard}
			fs := m.flags()
			err := fs.Parse(tt.args)
			if err == nil {
				err = m.Validate()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate(%v) = %v, want nil", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate(%v) = %v, want an error naming %s", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(append([]float64(nil), tt.in...)); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
