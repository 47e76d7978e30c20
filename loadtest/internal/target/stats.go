package target

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/strata-tsdb/strata/loadtest/internal/report"
)

// Snapshot reads the server's figures: /metrics, Strata's
// /api/v1/status/tsdb, and the data directory when one was given. What
// cannot be read is left nil; the error says what failed, and the snapshot
// holds what could be read anyway.
func (t *Target) Snapshot(ctx context.Context) (*report.Snapshot, error) {
	s := &report.Snapshot{At: time.Now()}
	var errs []error
	metrics, err := t.metrics(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	s.RSSBytes = metrics.int("process_resident_memory_bytes")
	switch t.flavour {
	case Strata:
		s.HeadSeries = metrics.int("strata_head_series")
		s.HeadSamples = metrics.int("strata_head_samples")
		s.SamplesAppended = metrics.int("strata_head_samples_appended_total")
		if err := t.strataStatus(ctx, s); err != nil {
			errs = append(errs, err)
		}
	case Prometheus:
		s.HeadSeries = metrics.int("prometheus_tsdb_head_series")
		s.SamplesAppended = metrics.int("prometheus_tsdb_head_samples_appended_total")
		s.Blocks = metrics.int("prometheus_tsdb_blocks_loaded")
		s.BlockBytes = metrics.int("prometheus_tsdb_storage_blocks_bytes")
		if wal, chunks := metrics.int("prometheus_tsdb_wal_storage_size_bytes"), metrics.int("prometheus_tsdb_head_chunks_storage_size_bytes"); wal != nil && chunks != nil {
			s.WALBytes = report.Int64(*wal + *chunks)
		}
	}
	if t.dataDir != "" {
		if err := t.measureDir(s); err != nil {
			errs = append(errs, err)
		}
	}
	return s, errors.Join(errs...)
}

// BytesPerSampleBasis says what the bytes per sample of this flavour's
// snapshots count.
func (t *Target) BytesPerSampleBasis() string {
	switch t.flavour {
	case Strata:
		return "segment bytes / segment samples, from /api/v1/status/tsdb; the head and WAL are not counted"
	case Prometheus:
		return "block bytes / block samples, from the blocks' meta.json; the head (WAL, chunks_head) is not counted"
	}
	return "block bytes / block samples"
}

// CPUSeconds returns the CPU time the server's process has used
// (process_cpu_seconds_total, which every flavour exports), or an error
// when it cannot be read.
func (t *Target) CPUSeconds(ctx context.Context) (float64, error) {
	m, err := t.metrics(ctx)
	if err != nil {
		return 0, err
	}
	v, ok := m["process_cpu_seconds_total"]
	if !ok {
		return 0, errors.New("the server exports no process_cpu_seconds_total")
	}
	return v, nil
}

// metricSet is a scraped /metrics page: the sum of every sample of each
// metric name.
type metricSet map[string]float64

func (m metricSet) int(name string) *int64 {
	v, ok := m[name]
	if !ok {
		return nil
	}
	return report.Int64(int64(v))
}

func (t *Target) metrics(ctx context.Context) (metricSet, error) {
	body, err := t.get(ctx, "/metrics")
	if err != nil {
		return metricSet{}, err
	}
	return parseMetrics(body), nil
}

// parseMetrics reads the Prometheus text format, summing the samples of
// each name over their labels. Lines it cannot read are skipped.
func parseMetrics(body []byte) metricSet {
	m := metricSet{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if name == "" {
			continue
		}
		if strings.HasPrefix(rest, "{") {
			end := labelsEnd(rest)
			if end < 0 {
				continue
			}
			rest = rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		m[name] += v
	}
	return m
}

// labelsEnd returns the index of the brace closing the label set that s
// starts with, skipping quoted values; -1 if there is none.
func labelsEnd(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '}':
			return i
		}
	}
	return -1
}

func (t *Target) strataStatus(ctx context.Context, s *report.Snapshot) error {
	body, err := t.get(ctx, "/api/v1/status/tsdb")
	if err != nil {
		return err
	}
	var st struct {
		Data struct {
			HeadStats struct {
				NumSeries  int64 `json:"numSeries"`
				NumSamples int64 `json:"numSamples"`
			} `json:"headStats"`
			WALBytes       int64            `json:"walBytes"`
			SegmentBytes   int64            `json:"segmentBytes"`
			SegmentSamples int64            `json:"segmentSamples"`
			Segments       []report.Segment `json:"segments"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("decode /api/v1/status/tsdb: %w", err)
	}
	d := st.Data
	s.HeadSeries = report.Int64(d.HeadStats.NumSeries)
	s.HeadSamples = report.Int64(d.HeadStats.NumSamples)
	s.WALBytes = report.Int64(d.WALBytes)
	s.BlockBytes = report.Int64(d.SegmentBytes)
	s.BlockSamples = report.Int64(d.SegmentSamples)
	s.Blocks = report.Int64(int64(len(d.Segments)))
	s.Segments = d.Segments
	return nil
}

// measureDir adds up the data directory. For Prometheus it also splits it
// into blocks (directories with a meta.json, whose stats give the samples)
// and the head (wal/ and chunks_head/).
func (t *Target) measureDir(s *report.Snapshot) error {
	total, err := dirSize(t.dataDir)
	if err != nil {
		return fmt.Errorf("measure %s: %w", t.dataDir, err)
	}
	s.DiskBytes = report.Int64(total)
	if t.flavour != Prometheus {
		return nil
	}
	entries, err := os.ReadDir(t.dataDir)
	if err != nil {
		return err
	}
	var blocks, blockBytes, blockSamples, head int64
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(t.dataDir, e.Name())
		size, err := dirSize(dir)
		if err != nil {
			return err
		}
		switch {
		case e.Name() == "wal" || e.Name() == "chunks_head":
			head += size
		default:
			meta, err := os.ReadFile(filepath.Join(dir, "meta.json"))
			if err != nil {
				continue // a temporary or deleted block
			}
			var m struct {
				Stats struct {
					NumSamples int64 `json:"numSamples"`
				} `json:"stats"`
			}
			if json.Unmarshal(meta, &m) != nil {
				continue
			}
			blocks++
			blockBytes += size
			blockSamples += m.Stats.NumSamples
		}
	}
	s.Blocks, s.BlockBytes, s.BlockSamples, s.WALBytes = &blocks, &blockBytes, &blockSamples, &head
	return nil
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking (compaction)
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n, err
}
