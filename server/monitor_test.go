package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// findChromium returns Debian's chromium (or another Chrome) or fails the
// test with the install command: the monitor page is part of the product.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CALLWATCH_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: install it with `apt-get install -y chromium` (or `make chromium`), or set CALLWATCH_CHROMIUM")
	return ""
}

// TestMonitorPage drives the live call monitor in headless Chromium over
// the DevTools protocol: a phishing sample must reach dangerous with its
// reasons highlighted, a normal one must not, and the page loads nothing
// from the network.
func TestMonitorPage(t *testing.T) {
	if testing.Short() {
		t.Log("-short: the browser test still runs; it takes a few seconds")
	}
	ts := newTestServer(t, testConfig(), true)
	ctx := startBrowser(t)

	for _, c := range []struct {
		sample    string
		wantLevel string
	}{
		{"sample-prosecutor", "dangerous"},
		{"sample-bank-deposit", "none"},
	} {
		t.Run(c.sample, func(t *testing.T) {
			err := chromedp.Do(ctx,
				chromedp.Navigate(ts.URL+"/?delay=0&sample="+c.sample),
				chromedp.WaitVisible(`#model`),
				voidOf(chromedp.Poll[bool](`document.getElementById("sample").value === "`+c.sample+`" && document.getElementById("model").textContent.includes("sha256")`)),
				chromedp.Click(`#play`),
				chromedp.WaitVisible(`#status[data-state="done"], #status[data-state="error"]`),
			)
			if err != nil {
				t.Fatal(err)
			}
			level := must(t, ctx, chromedp.TextContent(`#level`)) // DOM text, not the upper-cased rendering
			status := must(t, ctx, chromedp.Text(`#status`))
			marks := must(t, ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#transcript mark")).map(m => m.textContent).join(" | ")`))
			points := must(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#chart circle.pt").length`))
			shot := must(t, ctx, chromedp.FullScreenshot(100)) // quality 100 = PNG
			path := filepath.Join(t.ArtifactDir(), "monitor-"+c.sample+".png")
			if err := os.WriteFile(path, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: level %s, status %q, %d chart points, highlighted %q; screenshot %s (%d bytes)", c.sample, level, status, points, marks, path, len(shot))
			if !strings.HasPrefix(status, "done") {
				t.Fatalf("page status %q", status)
			}
			if level != c.wantLevel {
				t.Fatalf("level %q, want %q", level, c.wantLevel)
			}
			n := len(samples(t)[c.sample].Segments)
			if points != n {
				t.Errorf("chart has %d points for %d segments", points, n)
			}
			if c.wantLevel == "dangerous" && marks == "" {
				t.Error("alert reasons are not highlighted in the transcript")
			}
			if c.wantLevel == "none" && marks != "" {
				t.Errorf("normal call has highlighted reasons %q", marks)
			}
		})
	}
}

// startBrowser starts headless Chromium for one test; the context it
// returns carries a 90 s limit.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	bin := findChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelB)
	// The first call starts the browser; it must not carry a timeout (that
	// would stop the browser), later ones do.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium %s: %v", bin, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestMonitorPageAuth: with API keys configured the page still loads, asks
// for a key, says when one is refused, keeps the accepted one in
// sessionStorage (not in the URL), sends it as a Bearer key, and plays a
// call to its alert; a reload keeps the key for the tab.
func TestMonitorPageAuth(t *testing.T) {
	ts := newTestServer(t, authConfig(t, false), true)
	ctx := startBrowser(t)
	const sample = "sample-prosecutor"
	visible := func(sel string) string {
		return `(() => { const e = document.querySelector("` + sel + `"); return !!e && !e.hidden; })()`
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/?delay=0&sample="+sample),
		voidOf(chromedp.Poll[bool](visible("#auth")+` && document.getElementById("model").textContent.includes("API key needed")`)),
	)
	if err != nil {
		t.Fatalf("the page did not ask for a key: %v", err)
	}
	shot := must(t, ctx, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "monitor-asks-key.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	submit := func(key string) error {
		return chromedp.Do(ctx,
			chromedp.SetValue(`#api-key`, key),
			chromedp.Click(`#auth button[type=submit]`), // as a user does (form.submit() would skip the handler)
		)
	}
	if err := submit("wrong-key-0123456789"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, voidOf(chromedp.Poll[bool](`document.getElementById("auth-msg").textContent.includes("refused")`))); err != nil {
		t.Fatalf("a wrong key was not refused on the page: %v", err)
	}
	if err := submit(keyAll); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		voidOf(chromedp.Poll[bool](`document.getElementById("model").textContent.includes("sha256") && document.getElementById("auth").hidden`)),
		chromedp.Click(`#play`),
		chromedp.WaitVisible(`#status[data-state="done"], #status[data-state="error"]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	status := must(t, ctx, chromedp.Text(`#status`))
	level := must(t, ctx, chromedp.TextContent(`#level`))
	stored := must(t, ctx, chromedp.Evaluate[string](`sessionStorage.getItem("callwatch.apiKey") || ""`))
	local := must(t, ctx, chromedp.Evaluate[int](`localStorage.length`))
	href := must(t, ctx, chromedp.Evaluate[string](`location.href`))
	t.Logf("after the key: status %q, level %s", status, level)
	if !strings.HasPrefix(status, "done") || level != "dangerous" {
		t.Fatalf("with the key: status %q, level %q; want done, dangerous", status, level)
	}
	if stored != keyAll || local != 0 || strings.Contains(href, keyAll) {
		t.Fatalf("the key is kept in sessionStorage %q, localStorage holds %d items, URL %s", stored, local, href)
	}
	// A reload in the same tab keeps the key: no form.
	err = chromedp.Do(ctx,
		chromedp.Reload(),
		voidOf(chromedp.Poll[bool](`document.getElementById("model").textContent.includes("sha256") && document.getElementById("auth").hidden && !document.getElementById("forget-key").hidden`)),
	)
	if err != nil {
		t.Fatalf("after a reload: %v", err)
	}
	// Forget it, and use a stream-only key: no model details, calls play.
	err = chromedp.Do(ctx,
		chromedp.Click(`#forget-key`),
		voidOf(chromedp.Poll[bool](visible("#auth"))),
	)
	if err != nil {
		t.Fatalf("forgetting the key: %v", err)
	}
	if err := submit(keyStream); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		voidOf(chromedp.Poll[bool](`document.getElementById("model").textContent.includes("classify scope") && document.getElementById("auth").hidden`)),
		chromedp.Click(`#play`),
		chromedp.WaitVisible(`#status[data-state="done"], #status[data-state="error"]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if status := must(t, ctx, chromedp.Text(`#status`)); !strings.HasPrefix(status, "done") {
		t.Fatalf("with a stream-only key: status %q", status)
	}
}

func must[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// voidOf drops an action's value so it can run in a chromedp.Do sequence.
func voidOf[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, tg)
		return chromedp.Void{}, err
	}
}
