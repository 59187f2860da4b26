package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// walkthrough returns the shell block of README.md that follows the
// walkthrough marker.
func walkthrough(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "<!-- walkthrough:")
	if !ok {
		t.Fatal("README.md has no walkthrough marker")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatal("README.md: no ```sh block after the walkthrough marker")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README.md: the walkthrough block does not end")
	}
	return block
}

// TestREADMEWalkthrough runs the README's walk-through, as written, against a
// fresh node (its address in place of localhost:3000). Every curl must get
// the answer the text around it promises.
func TestREADMEWalkthrough(t *testing.T) {
	script := walkthrough(t)
	if !strings.Contains(script, "localhost:3000") {
		t.Fatal("the walkthrough does not talk to localhost:3000")
	}
	p := startBookd(t, t.TempDir())
	script = strings.ReplaceAll(script, "localhost:3000", p.addr)
	// Print a marker before each command so the output can be cut per command.
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{
		`"email":"ana@example.com","name":"","role":"customer"`, // registered, and /v1/me
		`"type":"/problems/unauthorized"`,                       // the hold without a token
		"HTTP 401",
		`"id":"velodrom-concert"`,                 // the listing
		`"id":"concert-standing"`,                 // its resource
		`"free":5000,"held":0,"confirmed":0`,      // fresh availability
		`"free":4998,"held":2,"confirmed":0`,      // after the hold
		`"status":"confirmed"`,                    // confirm
		`"free":4998,"held":0,"confirmed":2`,      // after the confirmation
		`{"start":"2030-06-01","free":0,"held":1`, // the room's first night
		`{"start":"2030-06-04","free":1,"held":0`, // the night after the stay
		`"type":"/problems/sold-out"`,             // the overlapping night
		"HTTP 409",
		`"resource_id":"tasca-table-1","status":"held"`, // the table
		`"field":"quantity"`,                            // the bad input names its field
		"HTTP 400",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the walkthrough's output lacks %s\noutput:\n%s", want, got)
		}
	}
	// The two identical requests with one Idempotency-Key made one hold.
	if n := strings.Count(got, `"quantity":2`); n != 2 {
		t.Errorf("the walkthrough shows %d holds of quantity 2, want the same hold twice (2)", n)
	}
}
