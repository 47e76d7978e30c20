package querymix

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/strata-tsdb/strata/loadtest/internal/gen"
)

var now = time.Date(2025, 6, 1, 12, 34, 56, 0, time.UTC)

func newMix(t *testing.T, o Options) *Mix {
	t.Helper()
	if o.Hosts == nil {
		o.Hosts = gen.Hosts(50, 1)
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDashboardQueriesParse(t *testing.T) {
	m := newMix(t, Options{Families: gen.FamilyNames()})
	r := rand.New(rand.NewPCG(1, 1))
	seen := map[string]bool{}
	windows := map[string]int{}
	var all strings.Builder
	for range 2000 {
		q := m.Next(r, now)
		seen[q.Template] = true
		windows[q.Window]++
		if _, err := parser.NewParser(parser.Options{}).ParseExpr(q.Expr); err != nil {
			t.Fatalf("%s: %v", q.Expr, err)
		}
		if !q.End.Equal(q.End.Truncate(q.Step)) || q.End.After(now) || now.Sub(q.End) >= q.Step {
			t.Fatalf("%s: end %s not aligned to step %s before %s", q.Template, q.End, q.Step, now)
		}
		all.WriteString(q.Expr + "\n")
	}
	if len(seen) != len(dashboard()) {
		t.Fatalf("drew %d of %d templates", len(seen), len(dashboard()))
	}
	for _, fn := range []string{"rate(", "sum by (", "avg_over_time(", "max_over_time(", "topk(", "histogram_quantile("} {
		if !strings.Contains(all.String(), fn) {
			t.Errorf("no query uses %s", fn)
		}
	}
	// The fleet has no classic histograms: histogram_quantile reads the
	// native ones only.
	for _, q := range strings.Split(all.String(), "\n") {
		if strings.Contains(q, "histogram_quantile") && !strings.Contains(q, "rate(http_request_duration_seconds") {
			t.Errorf("histogram_quantile over something else than the native histograms: %s", q)
		}
	}
	// Shorter windows come up more often: weights 4:3:2:1.
	if !(windows["1h"] > windows["12h"] && windows["12h"] > windows["1d"] && windows["1d"] > windows["7d"] && windows["7d"] > 100) {
		t.Fatalf("window counts %v", windows)
	}
}

func TestRateRangeAndSteps(t *testing.T) {
	f := func(w Window, interval time.Duration, want string) {
		t.Helper()
		m := newMix(t, Options{Windows: []Window{w}, Interval: interval, Templates: []string{"disk-host-rate"}})
		q := m.Next(rand.New(rand.NewPCG(2, 2)), now)
		if !strings.HasSuffix(q.Expr, "["+want+"])") || q.Step != w.Step || q.End.Sub(q.Start) != w.Range {
			t.Fatalf("%+v: %s step %s span %s, want range %s", w, q.Expr, q.Step, q.End.Sub(q.Start), want)
		}
	}
	f(Window{Range: time.Hour, Step: 15 * time.Second}, 10*time.Second, "40s")             // 4 × scrape
	f(Window{Range: 7 * 24 * time.Hour, Step: 10 * time.Minute}, 10*time.Second, "10m10s") // step + scrape
	f(Window{Range: 24 * time.Hour, Step: 2 * time.Minute}, time.Minute, "4m")
}

func TestFamiliesAndTemplatesFilter(t *testing.T) {
	m := newMix(t, Options{Families: []string{"cpu"}})
	for _, tp := range m.Templates() {
		if tp.Family != "cpu" {
			t.Fatalf("template %s reads %s", tp.Name, tp.Family)
		}
	}
	if _, err := New(Options{Hosts: gen.Hosts(1, 1), Templates: []string{"nope"}}); err == nil {
		t.Fatal("unknown template accepted")
	}
	if _, err := New(Options{Hosts: gen.Hosts(1, 1), Families: []string{"mem"}, Templates: []string{"cpu-host"}}); err == nil {
		t.Fatal("empty mix accepted")
	}
	if _, err := New(Options{Hosts: gen.Hosts(1, 1), Mix: "olap"}); err == nil {
		t.Fatal("unknown mix accepted")
	}
}

func TestTargetsMix(t *testing.T) {
	m := newMix(t, Options{Mix: "targets", Hosts: gen.Hosts(200, 1)})
	r := rand.New(rand.NewPCG(3, 3))
	for range 50 {
		q := m.Next(r, now)
		switch q.Template {
		case "avg-by-host-11h":
			if q.Expr != `avg by (host) (avg_over_time(cpu_usage_user[1h]))` || q.Step != time.Hour || q.End.Sub(q.Start) != 11*time.Hour {
				t.Fatalf("%+v", q)
			}
		case "max-host-1h":
			if !strings.HasPrefix(q.Expr, `max_over_time(cpu_usage_user{host="host_`) || q.Step != time.Minute || q.End.Sub(q.Start) != time.Hour {
				t.Fatalf("%+v", q)
			}
		default:
			t.Fatalf("template %s", q.Template)
		}
	}
}

func TestDeterministic(t *testing.T) {
	m := newMix(t, Options{})
	a, b := rand.New(rand.NewPCG(9, 9)), rand.New(rand.NewPCG(9, 9))
	for range 100 {
		if qa, qb := m.Next(a, now), m.Next(b, now); qa != qb {
			t.Fatalf("%+v != %+v", qa, qb)
		}
	}
}

func TestParseWindows(t *testing.T) {
	ws, err := ParseWindows("1h, 7d,30m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 3 || ws[0].Step != 15*time.Second || ws[1].Range != 7*24*time.Hour || ws[1].Step != 10*time.Minute || ws[2].Step != 7*time.Second {
		t.Fatalf("windows %+v", ws)
	}
	for _, bad := range []string{"", "1x", "-1h", "0s"} {
		if _, err := ParseWindows(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for d, want := range map[time.Duration]string{time.Hour: "1h", 7 * 24 * time.Hour: "7d", 90 * time.Second: "1m30s", 0: "0s"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %s", d, got)
		}
	}
}
