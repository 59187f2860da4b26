package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium (persistence/testserver/ensure-deps.sh
// installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: install the Debian package chromium (make deps does)")
	return ""
}

// TestDashboardShowsHoldLive is the acceptance 5: headless
// Chromium opens the dashboard on a listing, a hold is made through the
// API, and the page's grid shows it within a second (the page's deadline,
// not a timing of the server). It saves a screenshot and logs its path.
func TestDashboardShowsHoldLive(t *testing.T) {
	n := startNode(t) // the demo data: hotel-alfama and its pool of 20
	actx, cancel := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.Headless, chromedp.WindowSize(1100, 700))...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first Run starts the browser: no timeout on its context.
	if err := chromedp.Do(bctx, chromedp.Navigate(n.base+"/dashboard?listing=hotel-alfama")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()

	day := time.Now().UTC().AddDate(0, 0, 2).Format("2006-01-02")
	next := time.Now().UTC().AddDate(0, 0, 3).Format("2006-01-02")
	cell := fmt.Sprintf(`.cell[data-resource="hotel-alfama-standard"][data-slot="%s"]`, day)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(cell+" .box"))); err != nil {
		t.Fatalf("wait for the grid: %v", err)
	}
	before, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(cell), "data-held"))
	if err != nil || before.Value != "0" {
		t.Fatalf("held on %s before the hold = %q (%v), want 0", day, before.Value, err)
	}

	var hold holdDoc
	n.mustJSON(t, "POST", "/v1/holds", jsonHeader(), fmt.Sprintf(`{"resource_id":"hotel-alfama-standard","from":%q,"to":%q,"quantity":3}`, day, next), http.StatusCreated, &hold)

	// The page must show it within a second of the API's answer.
	js := fmt.Sprintf(`new Promise((ok) => { const end = Date.now() + 1000; (function poll() {
		const c = document.querySelector(%q);
		if (c && c.dataset.held === "3" && c.dataset.free === "17") return ok(true);
		if (Date.now() > end) return ok(false);
		setTimeout(poll, 10); })(); })`, cell)
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("poll the page: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := filepath.Join(os.TempDir(), "bookd-dashboard-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dashboard.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	if !shown {
		t.Errorf("the dashboard did not show hold %s (3 held, 17 free on %s) within a second", hold.ID, day)
	}

	// The cluster view is for admins: without a token it asks for one;
	// with the admin's it shows this node and its activations.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("tab-cluster")), chromedp.WaitVisible(chromedp.ID("admin-form"))); err != nil {
		t.Fatalf("the cluster tab without a token did not ask for an admin token: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("admin-token"), n.admin), chromedp.Click(chromedp.CSS("#admin-form button"))); err != nil {
		t.Fatalf("give the cluster tab the admin's token: %v", err)
	}
	// The view is drawn again every 2 s, so poll the page for it.
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`new Promise((ok) => { const end = Date.now() + 10000; (function poll() {
		const n = document.querySelector(".node.self");
		if (n && document.getElementById("admin-form").hidden) return ok(n.textContent);
		if (Date.now() > end) return ok("");
		setTimeout(poll, 50); })(); })`, chromedp.EvalAwaitPromise))
	if err != nil || !strings.Contains(text, "this node") || !strings.Contains(text, "resources") {
		t.Errorf("the cluster view with the admin's token shows %q (%v), want this node with its active resources", text, err)
	}
}
