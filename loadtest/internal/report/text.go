package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Derive fills the growth figures from Before and After, and the bytes
// per sample from After's blocks, described by basis.
func (s *Server) Derive(basis string) {
	b, a := s.Before, s.After
	if b != nil && a != nil {
		if b.RSSBytes != nil && a.RSSBytes != nil {
			s.RSSGrowthBytes = Int64(*a.RSSBytes - *b.RSSBytes)
		}
		if b.HeadSeries != nil && a.HeadSeries != nil {
			s.SeriesGrowth = Int64(*a.HeadSeries - *b.HeadSeries)
		}
		if s.RSSGrowthBytes != nil && s.SeriesGrowth != nil && *s.SeriesGrowth > 0 {
			s.RSSPerSeriesBytes = Float64(float64(*s.RSSGrowthBytes) / float64(*s.SeriesGrowth))
		}
	}
	if a != nil && a.BlockBytes != nil && a.BlockSamples != nil && *a.BlockSamples > 0 {
		s.BytesPerSample = Float64(float64(*a.BlockBytes) / float64(*a.BlockSamples))
		s.BytesPerSampleBasis = basis
	}
}

// WriteText writes r for people.
func (r *Report) WriteText(w io.Writer) error {
	p := &printer{w: w}
	p.f("%s against %s (%s), %.1fs", r.Command, r.Target.URL, r.Target.Flavour, r.ElapsedSeconds)
	if r.Preset != "" {
		p.f(", preset %s", r.Preset)
	}
	p.f("\n")
	if in := r.Ingest; in != nil {
		p.f("\ningest   %s, %d writers, %d samples/request, %s series", protocolName(in.Protocol), in.Writers, in.BatchSamples, count(int64(in.Series)))
		if in.Backfill != "" {
			p.f(", backfill %s", in.Backfill)
		}
		p.f("\n")
		p.row("samples", "%s sent, %s acknowledged, %s samples/s", count(in.SamplesSent), count(in.SamplesAcked), rate(in.SamplesPerSecond))
		p.row("requests", "%s (%s ok), %s requests/s, %s sent, over %.1fs", count(in.Requests), count(in.RequestsOK), rate(in.RequestsPerSecond), byteSize(in.BytesSent), in.ElapsedSeconds)
		p.errors(in.Errors, in.ErrorMessages)
		p.latency("latency", in.Latency)
		p.cpu(in.ServerCPUSeconds, in.LoadCPUSeconds, in.SamplesAcked, "µs/sample", 1e6)
	}
	if q := r.Query; q != nil {
		cache := "cache not bypassed"
		if q.NoCache {
			cache = "cache bypassed"
		}
		p.f("\nquery    %s mix, concurrency %d, %s", q.Mix, q.Concurrency, cache)
		if q.Distinct > 0 {
			p.f(", %d distinct queries", q.Distinct)
		}
		p.f("\n")
		p.row("requests", "%s (%s ok), %s queries/s, over %.1fs", count(q.Requests), count(q.RequestsOK), rate(q.RequestsPerSecond), q.ElapsedSeconds)
		p.row("answers", "%s series, %s points, %s empty", count(q.SeriesReturned), count(q.PointsReturned), count(q.EmptyResults))
		p.errors(q.Errors, q.ErrorMessages)
		p.latency("latency", q.Latency)
		for _, b := range q.ByTemplate {
			p.latency("  "+b.Name, b.Latency)
		}
		p.cpu(q.ServerCPUSeconds, q.LoadCPUSeconds, q.Requests, "ms/query", 1e3)
		when := "whenever its runtime chose"
		if q.LoadGCBetween {
			when = "between queries"
		}
		p.row("gc", "load generator %d collections, %s", q.LoadGCCycles, when)
		if len(q.Cache) > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(q.Cache)) {
				parts = append(parts, fmt.Sprintf("%s %s", k, count(q.Cache[k])))
			}
			ratio := ""
			if q.CacheHitRatio != nil {
				ratio = fmt.Sprintf(", hit ratio %.1f%%", 100**q.CacheHitRatio)
			}
			p.row("cache", "%s%s", strings.Join(parts, ", "), ratio)
		}
		if q.SlowOverMs > 0 {
			share := 0.0
			if q.Requests > 0 {
				share = 100 * float64(q.SlowCount) / float64(q.Requests)
			}
			p.row("slow", "%s over %g ms (%.2f%%)", count(q.SlowCount), q.SlowOverMs, share)
		}
		for _, s := range q.Slowest {
			p.f("  %s %8.3f ms  %-16s %-5s %s\n", s.Start.UTC().Format("15:04:05.000000"), s.LatencyMs, s.Template, s.Cache, s.Query)
		}
	}
	if s := r.Server; s != nil && (s.Before != nil || s.After != nil) {
		p.server(s)
	}
	for _, n := range r.Notes {
		p.f("note: %s\n", n)
	}
	return p.err
}

// cpu writes the CPU time of the server and of the load generator, and
// per unit of work (n of them, shown in the unit scaled from seconds).
func (p *printer) cpu(server, load *float64, n int64, unit string, scale float64) {
	var parts []string
	for _, x := range []struct {
		who string
		s   *float64
	}{{"server", server}, {"load generator", load}} {
		if x.s == nil {
			continue
		}
		part := fmt.Sprintf("%s %.1fs", x.who, *x.s)
		if n > 0 {
			part += fmt.Sprintf(" (%.3f %s)", *x.s*scale/float64(n), unit)
		}
		parts = append(parts, part)
	}
	if len(parts) > 0 {
		p.row("cpu", "%s", strings.Join(parts, ", "))
	}
}

func (p *printer) server(s *Server) {
	p.f("\nserver %25s %14s\n", "before", "after")
	line := func(name string, get func(*Snapshot) *int64, format func(int64) string) {
		var b, a *int64
		if s.Before != nil {
			b = get(s.Before)
		}
		if s.After != nil {
			a = get(s.After)
		}
		if b == nil && a == nil {
			return
		}
		str := func(v *int64) string {
			if v == nil {
				return "-"
			}
			return format(*v)
		}
		p.f("  %-20s %14s %14s\n", name, str(b), str(a))
	}
	line("RSS", func(x *Snapshot) *int64 { return x.RSSBytes }, byteSize)
	line("head series", func(x *Snapshot) *int64 { return x.HeadSeries }, count)
	line("head samples", func(x *Snapshot) *int64 { return x.HeadSamples }, count)
	line("samples appended", func(x *Snapshot) *int64 { return x.SamplesAppended }, count)
	line("WAL bytes", func(x *Snapshot) *int64 { return x.WALBytes }, byteSize)
	line("blocks", func(x *Snapshot) *int64 { return x.Blocks }, count)
	line("block bytes", func(x *Snapshot) *int64 { return x.BlockBytes }, byteSize)
	line("block samples", func(x *Snapshot) *int64 { return x.BlockSamples }, count)
	line("disk bytes (dir)", func(x *Snapshot) *int64 { return x.DiskBytes }, byteSize)
	// Below some thousands of new series, RSS growth is the server's
	// buffers, not its series: the figure would mislead.
	if s.RSSPerSeriesBytes != nil && *s.SeriesGrowth >= 10_000 {
		p.f("  %-20s %s over %s new series = %.0f bytes/series\n", "RSS per series", byteSize(*s.RSSGrowthBytes), count(*s.SeriesGrowth), *s.RSSPerSeriesBytes)
	}
	if s.BytesPerSample != nil {
		p.f("  %-20s %.3f (%s)\n", "bytes per sample", *s.BytesPerSample, s.BytesPerSampleBasis)
	}
	if d := s.Disk; d != nil {
		p.f("  window %s to %s, raw segments inside it (bytes incl. index / samples); %s samples sent after the flush closed the day:\n",
			d.From.UTC().Format(time.RFC3339), d.To.UTC().Format(time.RFC3339), count(d.ClosingSamples))
		for _, x := range []struct {
			name string
			f    *DiskFigure
		}{{"after flush", d.AfterFlush}, {"after merge", d.AfterMerge}} {
			if x.f == nil {
				p.f("  %-20s -\n", x.name)
				continue
			}
			p.f("  %-20s %.3f bytes/sample (%s segments, level ≤ %d, %s over %s samples)\n", x.name, x.f.BytesPerSample, count(int64(x.f.Segments)), x.f.MaxLevel, byteSize(x.f.Bytes), count(x.f.Samples))
		}
	}
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) row(name, format string, args ...any) {
	p.f("  %-10s "+format+"\n", append([]any{name}, args...)...)
}

func (p *printer) errors(e Errors, msgs []string) {
	if e.Total() == 0 {
		p.row("errors", "none")
		return
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(e)) {
		parts = append(parts, fmt.Sprintf("%s × %s", count(e[k]), k))
	}
	p.row("errors", "%s", strings.Join(parts, ", "))
	for _, m := range msgs {
		p.f("             %s\n", m)
	}
}

func (p *printer) latency(name string, l Latency) {
	if l.Count == 0 {
		return
	}
	p.f("  %-10s p50 %s  p90 %s  p99 %s  max %s  (mean %s, n=%s)\n", name, ms(l.P50Ms), ms(l.P90Ms), ms(l.P99Ms), ms(l.MaxMs), ms(l.MeanMs), count(l.Count))
}

func protocolName(p string) string {
	switch p {
	case "rw":
		return "remote write"
	case "lp":
		return "line protocol"
	}
	return p
}

// ms formats milliseconds with three significant digits.
func ms(v float64) string {
	switch {
	case v < 1:
		return strconv.FormatFloat(v*1000, 'f', 0, 64) + "µs"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64) + "ms"
	case v < 10_000:
		return strconv.FormatFloat(v, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(v/1000, 'f', 1, 64) + "s"
}

// count formats n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// rate formats a per-second rate.
func rate(v float64) string {
	if v >= 100 {
		return count(int64(v + 0.5))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// byteSize formats a byte count in binary units.
func byteSize(n int64) string {
	v, neg := float64(n), n < 0
	if neg {
		v = -v
	}
	unit := "B"
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if v < 1024 {
			break
		}
		v /= 1024
		unit = u
	}
	s := strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
	if unit == "B" {
		s = strconv.FormatInt(int64(v), 10) + " B"
	}
	if neg {
		return "-" + s
	}
	return s
}

// Count, Rate, Bytes and Ms are the formatters of the text report, for the
// live progress display.
func Count(n int64) string  { return count(n) }
func Rate(v float64) string { return rate(v) }
func Bytes(n int64) string  { return byteSize(n) }
func Ms(v float64) string   { return ms(v) }
