package main

import (
	"bufio"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlock returns the first ```sh block under the README heading.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no %q section", heading)
	}
	doc = doc[i:]
	start := strings.Index(doc, "```sh\n")
	if start < 0 {
		t.Fatalf("README.md's %q section has no sh block", heading)
	}
	doc = doc[start+len("```sh\n"):]
	end := strings.Index(doc, "```")
	return doc[:end]
}

// TestReadmePushAndQuery runs the README's "Push and query" examples as
// they are written, against a real server, with curl failing on any HTTP
// error, and checks that what they pushed is stored and answered.
func TestReadmePushAndQuery(t *testing.T) {
	s := startServer(t, "")
	script := readmeBlock(t, "## Push and query")
	if !strings.Contains(script, "http://127.0.0.1:8430") {
		t.Fatal("the examples no longer name the default address")
	}
	script = "curl() { command curl --fail-with-body \"$@\"; echo; }\n" + strings.ReplaceAll(script, "http://127.0.0.1:8430", s.url)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README examples: %v\n%s", err, out)
	}
	// The two queries answer the line-protocol sample; the range query's
	// last step covers it (it was pushed without a timestamp just now).
	answers := strings.Count(string(out), `"status":"success"`)
	if answers != 2 || !strings.Contains(string(out), `"resultType":"matrix","result":[{"metric":{},"values":`) || !strings.Contains(string(out), `,"12.5"]]}]`) {
		t.Fatalf("README examples printed (%d successes):\n%s", answers, out)
	}
	for q, want := range map[string]string{
		`cpu_usage_user{host="web1"}`:     "12.5",
		`cpu_usage_system{host="web1"}`:   "3",
		`temperature{room="lab"}`:         "21.5",
		`http_requests_total{code="200"}`: "1027",
	} {
		var d struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		}
		s.get("/api/v1/query", url.Values{"query": {q}}, &d)
		if len(d.Result) != 1 || d.Result[0].Value[1] != want {
			t.Errorf("%s: %+v, want one series at %s", q, d.Result, want)
		}
	}
}

// TestReadmeRunIt runs the README's zero-configuration start: the binary
// with no flags in an empty directory listens on 127.0.0.1:8430, prints the
// dashboard URL, serves the dashboard there, keeps its data in
// ./strata-data and stops cleanly on SIGTERM.
func TestReadmeRunIt(t *testing.T) {
	if !strings.Contains(readmeBlock(t, "## Run it"), "go run ./cmd/strata\n") {
		t.Fatal("README's Run it no longer says go run ./cmd/strata")
	}
	bin := strataBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRATA_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	banner := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case banner <- sc.Text():
			default:
			}
		}
	}()
	var line string
	select {
	case line = <-banner:
	case <-time.After(60 * time.Second):
		t.Fatal("no banner within 60s")
	}
	if !regexp.MustCompile(`^Strata is listening on http://127\.0\.0\.1:8430/ \(dashboard\)`).MatchString(line) {
		t.Fatalf("banner %q", line)
	}
	resp, err := http.Get("http://127.0.0.1:8430/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("dashboard: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if st, err := os.Stat(filepath.Join(dir, "strata-data")); err != nil || !st.IsDir() {
		t.Errorf("./strata-data: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("no exit within 30s of SIGTERM")
	}
}
