// Package querymix draws the range queries a load test sends: PromQL that
// dashboards over the generated fleet (package gen) run — rate, sum by,
// avg_over_time, max_over_time, topk — over random hosts and time windows
// with the steps a dashboard picks for them.
//
// A Mix only builds queries; it must not send them.
package querymix

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/strata-tsdb/strata/loadtest/internal/gen"
)

// Window is a dashboard time range and the step a dashboard uses for it.
type Window struct {
	Range, Step time.Duration
	// Weight is how often the window is drawn relative to the others.
	Weight int
}

// String names the window by its range.
func (w Window) String() string { return formatDuration(w.Range) }

// DefaultWindows are the ranges people look at, shorter ones more often,
// with the steps Grafana picks for a panel about 240 to 1,000 points wide.
func DefaultWindows() []Window {
	return []Window{
		{Range: time.Hour, Step: 15 * time.Second, Weight: 4},
		{Range: 12 * time.Hour, Step: time.Minute, Weight: 3},
		{Range: 24 * time.Hour, Step: 2 * time.Minute, Weight: 2},
		{Range: 7 * 24 * time.Hour, Step: 10 * time.Minute, Weight: 1},
	}
}

// ParseWindows reads "1h,12h,24h,7d": each range gets the step of the
// default window of that range, or range/240 rounded to a whole second.
func ParseWindows(s string) ([]Window, error) {
	var ws []Window
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		r, err := parseDuration(part)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("window %q: want a positive duration such as 1h or 7d", part)
		}
		w := Window{Range: r, Step: max(time.Second, (r / 240).Truncate(time.Second)), Weight: 1}
		for _, d := range DefaultWindows() {
			if d.Range == r {
				w = d
			}
		}
		ws = append(ws, w)
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("no window in %q", s)
	}
	return ws, nil
}

// Params are what a template fills in.
type Params struct {
	// Host is a host drawn at random; Hosts a few more, for panels that
	// show a selection.
	Host  gen.Host
	Hosts []gen.Host
	// Range is the rate/over_time window: Grafana's $__rate_interval,
	// max(step + scrape interval, 4 × scrape interval).
	Range string
}

// Template is one kind of dashboard query.
type Template struct {
	Name string
	// Family is the metric family the query reads.
	Family string
	// Window, when set, is the only window the template is run over.
	Window *Window
	// Expr builds the PromQL.
	Expr func(p Params) string
}

// Query is one range query drawn from a mix.
type Query struct {
	// Template and Window name what was drawn, for per-kind statistics.
	Template, Window string
	Expr             string
	Start, End       time.Time
	Step             time.Duration
}

// Mixes names the known mixes.
var Mixes = []string{"dashboard", "targets"}

func dashboard() []*Template {
	sel := func(p Params) string {
		names := make([]string, len(p.Hosts))
		for i, h := range p.Hosts {
			names[i] = h.Name
		}
		return strings.Join(names, "|")
	}
	return []*Template{
		{Name: "cpu-host", Family: "cpu", Expr: func(p Params) string {
			return fmt.Sprintf(`avg_over_time(cpu_usage_user{host=%q}[%s])`, p.Host.Name, p.Range)
		}},
		{Name: "cpu-host-max", Family: "cpu", Expr: func(p Params) string {
			return fmt.Sprintf(`max_over_time(cpu_usage_system{host=%q}[%s])`, p.Host.Name, p.Range)
		}},
		{Name: "cpu-busy-hosts", Family: "cpu", Expr: func(p Params) string {
			return fmt.Sprintf(`100 - avg by (host) (avg_over_time(cpu_usage_idle{host=~%q}[%s]))`, sel(p), p.Range)
		}},
		{Name: "cpu-by-datacenter", Family: "cpu", Expr: func(p Params) string {
			return fmt.Sprintf(`avg by (datacenter) (avg_over_time(cpu_usage_user[%s]))`, p.Range)
		}},
		{Name: "cpu-topk", Family: "cpu", Expr: func(p Params) string {
			return fmt.Sprintf(`topk(5, avg by (host) (avg_over_time(cpu_usage_user{region=%q}[%s])))`, p.Host.Region, p.Range)
		}},
		{Name: "mem-host", Family: "mem", Expr: func(p Params) string {
			return fmt.Sprintf(`max_over_time(mem_used_percent{host=%q}[%s])`, p.Host.Name, p.Range)
		}},
		{Name: "mem-by-service", Family: "mem", Expr: func(p Params) string {
			return fmt.Sprintf(`sum by (service) (avg_over_time(mem_used{region=%q}[%s]))`, p.Host.Region, p.Range)
		}},
		{Name: "disk-host-rate", Family: "diskio", Expr: func(p Params) string {
			return fmt.Sprintf(`rate(diskio_read_bytes{host=%q}[%s])`, p.Host.Name, p.Range)
		}},
		{Name: "disk-by-rack", Family: "diskio", Expr: func(p Params) string {
			return fmt.Sprintf(`sum by (rack) (rate(diskio_write_bytes{datacenter=%q}[%s]))`, p.Host.Datacenter, p.Range)
		}},
		{Name: "net-host-rate", Family: "net", Expr: func(p Params) string {
			return fmt.Sprintf(`sum by (interface) (rate(net_bytes_recv{host=%q}[%s]))`, p.Host.Name, p.Range)
		}},
		{Name: "net-topk", Family: "net", Expr: func(p Params) string {
			return fmt.Sprintf(`topk(10, sum by (host) (rate(net_bytes_sent{region=%q}[%s])))`, p.Host.Region, p.Range)
		}},
		{Name: "http-p99-host", Family: "http", Expr: func(p Params) string {
			return fmt.Sprintf(`histogram_quantile(0.99, sum by (route) (rate(http_request_duration_seconds{host=%q}[%s])))`, p.Host.Name, p.Range)
		}},
		{Name: "http-p99-region", Family: "http", Expr: func(p Params) string {
			return fmt.Sprintf(`histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds{region=%q}[%s])))`, p.Host.Region, p.Range)
		}},
		{Name: "http-rate-by-route", Family: "http", Expr: func(p Params) string {
			return fmt.Sprintf(`sum by (route) (histogram_count(rate(http_request_duration_seconds[%s])))`, p.Range)
		}},
	}
}

// targets are the two cold/warm queries of TARGETS.md.
func targets() []*Template {
	return []*Template{
		{Name: "avg-by-host-11h", Family: "cpu", Window: &Window{Range: 11 * time.Hour, Step: time.Hour, Weight: 1},
			Expr: func(Params) string { return `avg by (host) (avg_over_time(cpu_usage_user[1h]))` }},
		{Name: "max-host-1h", Family: "cpu", Window: &Window{Range: time.Hour, Step: time.Minute, Weight: 1},
			Expr: func(p Params) string { return fmt.Sprintf(`max_over_time(cpu_usage_user{host=%q}[1m])`, p.Host.Name) }},
	}
}

// Options configures a Mix.
type Options struct {
	// Mix is "dashboard" (default) or "targets".
	Mix string
	// Hosts is the fleet the data was generated for; it must not be empty.
	Hosts []gen.Host
	// Families are the families that were loaded; templates over other
	// families are left out. Empty means gen.DefaultFamilyNames().
	Families []string
	// Windows are drawn for templates without a fixed window; empty means
	// DefaultWindows.
	Windows []Window
	// Templates keeps only the templates named; empty keeps all.
	Templates []string
	// Interval is the scrape interval of the data; zero means 10 s.
	Interval time.Duration
	// SelectHosts is how many hosts a multi-host panel shows; zero means 8.
	SelectHosts int
}

// Mix draws queries. It is safe for concurrent use when each caller
// passes its own *rand.Rand.
type Mix struct {
	templates []*Template
	windows   []Window
	weight    int
	hosts     []gen.Host
	interval  time.Duration
	selectN   int
}

// New checks o and returns its mix.
func New(o Options) (*Mix, error) {
	if len(o.Hosts) == 0 {
		return nil, fmt.Errorf("query mix: no hosts")
	}
	var all []*Template
	switch o.Mix {
	case "", "dashboard":
		all = dashboard()
	case "targets":
		all = targets()
	default:
		return nil, fmt.Errorf("unknown query mix %q (known: %s)", o.Mix, strings.Join(Mixes, ", "))
	}
	m := &Mix{windows: o.Windows, hosts: o.Hosts, interval: o.Interval, selectN: o.SelectHosts}
	if len(m.windows) == 0 {
		m.windows = DefaultWindows()
	}
	if m.interval == 0 {
		m.interval = 10 * time.Second
	}
	if m.selectN == 0 {
		m.selectN = 8
	}
	for _, w := range m.windows {
		m.weight += max(1, w.Weight)
	}
	for _, name := range o.Templates {
		if !slices.ContainsFunc(all, func(t *Template) bool { return t.Name == name }) {
			return nil, fmt.Errorf("unknown query template %q in mix %s", name, o.Mix)
		}
	}
	families := o.Families
	if len(families) == 0 {
		families = gen.DefaultFamilyNames() // what gen.New loads when given none
	}
	for _, t := range all {
		if !slices.Contains(families, t.Family) {
			continue
		}
		if len(o.Templates) > 0 && !slices.Contains(o.Templates, t.Name) {
			continue
		}
		m.templates = append(m.templates, t)
	}
	if len(m.templates) == 0 {
		return nil, fmt.Errorf("query mix %s: no template reads the loaded families %v", o.Mix, o.Families)
	}
	return m, nil
}

// Templates returns the templates the mix draws from.
func (m *Mix) Templates() []*Template { return m.templates }

// Next draws a query ending at now, aligned to its step as Grafana does.
func (m *Mix) Next(r *rand.Rand, now time.Time) Query {
	t := m.templates[r.IntN(len(m.templates))]
	w := m.window(r)
	if t.Window != nil {
		w = *t.Window
	}
	p := Params{Host: m.hosts[r.IntN(len(m.hosts))]}
	for range min(m.selectN, len(m.hosts)) {
		p.Hosts = append(p.Hosts, m.hosts[r.IntN(len(m.hosts))])
	}
	p.Range = formatDuration(max(w.Step+m.interval, 4*m.interval))
	end := now.Truncate(w.Step)
	return Query{Template: t.Name, Window: w.String(), Expr: t.Expr(p), Start: end.Add(-w.Range), End: end, Step: w.Step}
}

func (m *Mix) window(r *rand.Rand) Window {
	x := r.IntN(m.weight)
	for _, w := range m.windows {
		if x -= max(1, w.Weight); x < 0 {
			return w
		}
	}
	return m.windows[len(m.windows)-1]
}

// formatDuration writes d in PromQL's syntax: 1h30m, 7d, 45s.
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.unit)
			d -= n * u.d
		}
	}
	return b.String()
}

// parseDuration reads a Go duration, or a whole number of days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	return time.ParseDuration(s)
}
