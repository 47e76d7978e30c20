package query

import (
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/util/annotations"
)

// maxAnnotations is how many warnings, and how many infos, an answer
// carries; the rest are counted in one more line, as the engine's
// Annotations.AsStrings does.
const maxAnnotations = 10

// annotationStrings returns every warning and info of a, sorted: the
// cached path merges them from pieces, so both paths sort them to agree.
func annotationStrings(qs string, a annotations.Annotations) (warnings, infos []string) {
	warnings, infos = a.AsStrings(qs, 0, 0)
	return dedupStrings(warnings), dedupStrings(infos)
}

// limitAnnotations keeps the first maxAnnotations of sorted s and counts
// the rest (kind is "warning" or "info").
func limitAnnotations(s []string, kind string) []string {
	if len(s) <= maxAnnotations {
		return s
	}
	out := slices.Clone(s[:maxAnnotations])
	return append(out, fmt.Sprintf("%d more %s annotations omitted", len(s)-maxAnnotations, kind))
}

// mergeMatrices joins pieces of one query evaluated over consecutive step
// ranges (in time order) into one matrix sorted by labels.
func mergeMatrices(parts []promql.Matrix) promql.Matrix {
	switch len(parts) {
	case 0:
		return promql.Matrix{}
	case 1:
		return parts[0]
	}
	// First pass: the output series of every input series, and how many
	// points each output series gets; then one array holds every point.
	idx := make(map[uint64][]int, len(parts[0]))
	var (
		out    promql.Matrix
		counts []int
		total  int
	)
	where := make([][]int, len(parts))
	for p, m := range parts {
		where[p] = make([]int, len(m))
		for j, s := range m {
			h := s.Metric.Hash()
			found := -1
			for _, i := range idx[h] {
				if labels.Equal(out[i].Metric, s.Metric) {
					found = i
					break
				}
			}
			if found < 0 {
				found = len(out)
				idx[h] = append(idx[h], found)
				out = append(out, promql.Series{Metric: s.Metric})
				counts = append(counts, 0)
			}
			where[p][j] = found
			counts[found] += len(s.Floats)
			total += len(s.Floats)
		}
	}
	all := make([]promql.FPoint, total)
	off := 0
	for i := range out {
		out[i].Floats = all[off : off : off+counts[i]]
		off += counts[i]
	}
	for p, m := range parts {
		for j, s := range m {
			i := where[p][j]
			out[i].Floats = append(out[i].Floats, s.Floats...)
			out[i].Histograms = append(out[i].Histograms, s.Histograms...)
		}
	}
	for i := range out {
		if len(out[i].Floats) == 0 {
			out[i].Floats = nil
		}
		f := out[i].Floats
		if !slices.IsSortedFunc(f, func(a, b promql.FPoint) int { return cmpInt64(a.T, b.T) }) {
			slices.SortStableFunc(f, func(a, b promql.FPoint) int { return cmpInt64(a.T, b.T) })
		}
		h := out[i].Histograms
		if !slices.IsSortedFunc(h, func(a, b promql.HPoint) int { return cmpInt64(a.T, b.T) }) {
			slices.SortStableFunc(h, func(a, b promql.HPoint) int { return cmpInt64(a.T, b.T) })
		}
	}
	slices.SortFunc(out, func(a, b promql.Series) int { return labels.Compare(a.Metric, b.Metric) })
	return out
}

// trimMatrix keeps the points in [a, b], dropping series left empty.
func trimMatrix(m promql.Matrix, a, b int64) promql.Matrix {
	out := make(promql.Matrix, 0, len(m))
	for _, s := range m {
		lo, _ := slices.BinarySearchFunc(s.Floats, a, func(p promql.FPoint, t int64) int { return cmpInt64(p.T, t) })
		hi, found := slices.BinarySearchFunc(s.Floats, b, func(p promql.FPoint, t int64) int { return cmpInt64(p.T, t) })
		if found {
			hi++
		}
		hlo, _ := slices.BinarySearchFunc(s.Histograms, a, func(p promql.HPoint, t int64) int { return cmpInt64(p.T, t) })
		hhi, found := slices.BinarySearchFunc(s.Histograms, b, func(p promql.HPoint, t int64) int { return cmpInt64(p.T, t) })
		if found {
			hhi++
		}
		if lo < hi || hlo < hhi {
			t := promql.Series{Metric: s.Metric}
			if lo < hi {
				t.Floats = s.Floats[lo:hi]
			}
			if hlo < hhi {
				t.Histograms = s.Histograms[hlo:hhi]
			}
			out = append(out, t)
		}
	}
	return out
}

// dedupStrings sorts s and drops duplicates, in place.
func dedupStrings(s []string) []string {
	if len(s) < 2 {
		return s
	}
	slices.Sort(s)
	return slices.Compact(s)
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func mod(a, b int64) int64 { return a - floorDiv(a, b)*b }

func alignDown(t, r int64) int64 { return floorDiv(t, r) * r }
