package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
)

// walFrames returns the offset and length of every frame of a WAL segment
// (docs/wal-format.md: type 1 B, length 4 B little endian, CRC 4 B, payload).
func walFrames(t *testing.T, path string) (b []byte, offs, lens []int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off+9 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+1:]))
		offs, lens = append(offs, off), append(lens, n)
		off += 9 + n
	}
	return b, offs, lens
}

// lastWALSegment returns the path of the highest-numbered WAL segment.
func lastWALSegment(t *testing.T, dataDir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, "wal", "[0-9]*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no WAL segment in %s (%v)", dataDir, err)
	}
	return files[len(files)-1]
}

// processQuery returns the single value of an instant query.
func processQuery(t *testing.T, base, q string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {q}, "time": {"1700010000"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	if len(env.Data.Result) != 1 {
		t.Fatalf("%s: %d results", q, len(env.Data.Result))
	}
	v, err := strconv.ParseFloat(fmt.Sprint(env.Data.Result[0].Value[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func processMetric(t *testing.T, base, name string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestWALCorruption damages the middle of the last WAL segment of a
// killed server in two ways: a flipped payload byte and a frame length
// enlarged past the end of the file (which is not a torn tail, since good
// records follow). The server must refuse to start only with
// --storage.wal.strict; by default it starts with every record but the
// damaged one (replay resynchronises after it), keeps a copy of the segment in wal/quarantine, logs an error and
// counts it in strata_wal_corruptions_total. `strata wal repair` does the
// same offline, after which a strict start works. A damaged tombstones.json
// is quarantined too.
// The same with native histograms: their WAL records are found damaged,
// quarantined and repaired the same way.
func TestWALCorruption(t *testing.T) {
	bin := strataBinary(t)
	for _, kind := range []string{"floats", "histograms"} {
		t.Run(kind, func(t *testing.T) { walCorruption(t, bin, kind == "histograms") })
	}
}

// walCorruption runs TestWALCorruption with pushes of float samples, or
// of native histograms (series wc_h, whose count is the push's number).
func walCorruption(t *testing.T, bin string, histograms bool) {
	const pushes, perPush, damaged = 10, 20, 8 // frame 0 is the series record
	t0 := int64(1_700_000_000)
	push := func(base string, k int) *http.Response {
		if !histograms {
			var body bytes.Buffer
			for i := range perPush {
				fmt.Fprintf(&body, "wc,host=a v=%d %d\n", k, t0+int64(k*perPush+i)*10)
			}
			resp, err := http.Post(base+"/write?precision=s", "text/plain", &body)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "wc_h"}, {Name: "host", Value: "a"}}}
		for i := range perPush {
			h := &histogram.Histogram{Schema: 3, Count: uint64(k + i), ZeroCount: uint64(i), Sum: float64(k),
				PositiveSpans: []histogram.Span{{Offset: 1, Length: 1}}, PositiveBuckets: []int64{int64(k)}}
			ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram((t0+int64(k*perPush+i)*10)*1000, h))
		}
		raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(base+"/api/v1/write", "application/x-protobuf", bytes.NewReader(snappy.Encode(nil, raw)))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// count and last read the samples back: how many, and the newest
	// push's number.
	count, last := "count_over_time(wc_v[1d])", "max_over_time(wc_v[1d])"
	if histograms {
		count, last = "count_over_time(wc_h[1d])", "histogram_sum(last_over_time(wc_h[1d]))"
	}
	for _, tc := range []struct {
		name   string
		damage func(b []byte, off, n int)
		repair bool // repair with `strata wal repair` before starting
	}{
		{"flipped payload byte", func(b []byte, off, n int) { b[off+9+n/2] ^= 0x40 }, false},
		{"length past end of file", func(b []byte, off, n int) { binary.LittleEndian.PutUint32(b[off+1:], 1<<30) }, false},
		{"repair subcommand", func(b []byte, off, n int) { b[off+9+n/2] ^= 0x40 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := startProcess(t, bin, dir, "--storage.maintenance-interval", "1h")
			for k := range pushes {
				resp := push(p.url, k)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					t.Fatalf("push %d: %d", k, resp.StatusCode)
				}
			}
			p.kill(t)

			seg := lastWALSegment(t, dir)
			b, offs, lens := walFrames(t, seg)
			if len(offs) != pushes+1 {
				t.Fatalf("want %d frames (a series record and one per push), got %d", pushes+1, len(offs))
			}
			tc.damage(b, offs[damaged], lens[damaged])
			if err := os.WriteFile(seg, b, 0o644); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			base := []string{"--listen-addr", "127.0.0.1:0", "--data-dir", dir}
			if tc.repair {
				out, err := exec.CommandContext(ctx, bin, append([]string{"wal", "repair"}, base[2:]...)...).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "1 damaged") {
					t.Fatalf("strata wal repair: %v\n%s", err, out)
				}
			} else {
				out, err := exec.CommandContext(ctx, bin, append(base, "--storage.wal.strict")...).CombinedOutput()
				if err == nil || !strings.Contains(string(out), "wal corruption") || !strings.Contains(string(out), seg) {
					t.Fatalf("strict start on a damaged WAL: %v, want a refusal naming %s:\n%s", err, seg, out)
				}
			}

			if err := os.WriteFile(filepath.Join(dir, "segments", "tombstones.json"), []byte(`[{"segment":`), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"--storage.maintenance-interval", "1h"}
			if tc.repair {
				args = append(args, "--storage.wal.strict")
			}
			p = startProcess(t, bin, dir, args...)
			// Only the damaged push is lost: replay resynchronises on the
			// frame after it.
			if got, want := processQuery(t, p.url, count), float64((pushes-1)*perPush); got != want {
				t.Errorf("samples after the restart: %v, want the %v of every push but the damaged one", got, want)
			}
			if got := processQuery(t, p.url, last); got != pushes-1 {
				t.Errorf("last push replayed: %v, want %d", got, pushes-1)
			}
			if !tc.repair {
				if got := processMetric(t, p.url, "strata_wal_corruptions_total"); got != "1" {
					t.Errorf("strata_wal_corruptions_total = %q, want 1", got)
				}
			}
			copies, _ := filepath.Glob(filepath.Join(dir, "wal", "quarantine", filepath.Base(seg)+".*"))
			if len(copies) != 1 {
				t.Errorf("quarantined copies of %s: %v", seg, copies)
			}
			if _, err := os.Stat(filepath.Join(dir, "segments", "quarantine", "tombstones.json")); err != nil {
				t.Errorf("damaged tombstones not quarantined: %v", err)
			}
			p.kill(t)
			if logs := p.cmd.Stderr.(*bytes.Buffer).String(); !strings.Contains(logs, "tombstones file is damaged") ||
				(!tc.repair && !strings.Contains(logs, "WAL segment damaged")) {
				t.Errorf("no error log for the damage:\n%s", logs)
			}
		})
	}
}
