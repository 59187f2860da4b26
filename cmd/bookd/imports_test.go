package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportBoundaries keeps the dependency rule of the design true:
// messages imports only protobuf; actors never import the edge, our cluster
// bootstrap or net/http; the edge reaches actors only through messages and
// the cluster client; persistence knows nothing above it.
func TestImportBoundaries(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/bookd/bookd/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/bookd/bookd/"
	rules := []struct {
		pkg     string // a package path prefix
		allowed func(imp string) bool
		why     string
	}{
		{mod + "messages", func(imp string) bool {
			return isStd(imp) || strings.HasPrefix(imp, "google.golang.org/protobuf/") || strings.HasPrefix(imp, mod+"messages")
		}, "messages imports only protobuf"},
		{mod + "actors", func(imp string) bool {
			return imp != "net/http" && !strings.HasPrefix(imp, mod+"edge") && !strings.HasPrefix(imp, mod+"cluster") && !strings.HasPrefix(imp, mod+"cmd")
		}, "actors never import the edge, the cluster bootstrap or net/http"},
		{mod + "edge", func(imp string) bool {
			return !strings.HasPrefix(imp, mod+"actors") && !strings.HasPrefix(imp, mod+"cmd")
		}, "the edge talks to actors only through messages and the cluster client"},
		{mod + "persistence", func(imp string) bool {
			return !strings.HasPrefix(imp, mod+"actors") && !strings.HasPrefix(imp, mod+"edge") && !strings.HasPrefix(imp, mod+"cluster") && !strings.HasPrefix(imp, mod+"cmd")
		}, "persistence knows nothing above it"},
		{mod + "cluster", func(imp string) bool {
			return !strings.HasPrefix(imp, mod+"edge") && !strings.HasPrefix(imp, mod+"cmd")
		}, "the cluster bootstrap does not serve HTTP"},
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		for _, r := range rules {
			if pkg != r.pkg && !strings.HasPrefix(pkg, r.pkg+"/") {
				continue
			}
			checked++
			for _, imp := range imports {
				if !r.allowed(imp) {
					t.Errorf("%s imports %s: %s", pkg, imp, r.why)
				}
			}
		}
	}
	if checked < 5 {
		t.Errorf("checked %d packages, want every package under messages, actors, edge, persistence and cluster", checked)
	}
}

// isStd reports whether imp is a standard library package.
func isStd(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}
