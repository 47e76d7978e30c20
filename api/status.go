package api

import (
	"strconv"

	"github.com/labstack/echo/v4"
)

// TSDBStatus is what GET /api/v1/status/tsdb reports about storage.
type TSDBStatus struct {
	HeadSeries, HeadSamples  int64
	HeadMinTime, HeadMaxTime int64 // ms; 0 when the head is empty
	WALBytes                 int64
	Segments                 []SegmentStatus
	SegmentBytes             int64
	SegmentSamples           uint64
}

// SegmentStatus describes one segment.
type SegmentStatus struct {
	ID               string
	MinTime, MaxTime int64
	Resolution       int64
	Series, Samples  uint64
	Bytes            int64
	Level            int
}

// tsdbStatus answers in the shape of Prometheus' /api/v1/status/tsdb
// (headStats), with Strata's segments and disk figures beside it.
func (a *API) tsdbStatus(c echo.Context) error {
	if a.opts.TSDBStatus == nil {
		return a.success(c, func(dst []byte) []byte { return append(dst, "{}"...) }, nil, nil)
	}
	st := a.opts.TSDBStatus()
	return a.success(c, func(dst []byte) []byte {
		dst = append(dst, `{"headStats":{"numSeries":`...)
		dst = strconv.AppendInt(dst, st.HeadSeries, 10)
		dst = append(dst, `,"numSamples":`...)
		dst = strconv.AppendInt(dst, st.HeadSamples, 10)
		dst = append(dst, `,"minTime":`...)
		dst = strconv.AppendInt(dst, st.HeadMinTime, 10)
		dst = append(dst, `,"maxTime":`...)
		dst = strconv.AppendInt(dst, st.HeadMaxTime, 10)
		dst = append(dst, `},"walBytes":`...)
		dst = strconv.AppendInt(dst, st.WALBytes, 10)
		dst = append(dst, `,"segmentBytes":`...)
		dst = strconv.AppendInt(dst, st.SegmentBytes, 10)
		dst = append(dst, `,"segmentSamples":`...)
		dst = strconv.AppendUint(dst, st.SegmentSamples, 10)
		dst = append(dst, `,"bytesPerSample":`...)
		bps := 0.0
		if st.SegmentSamples > 0 {
			bps = float64(st.SegmentBytes) / float64(st.SegmentSamples)
		}
		dst = strconv.AppendFloat(dst, bps, 'f', 4, 64)
		dst = append(dst, `,"segments":[`...)
		for i, s := range st.Segments {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = appendString(dst, s.ID)
			for _, kv := range []struct {
				k string
				v int64
			}{{"minTime", s.MinTime}, {"maxTime", s.MaxTime}, {"resolution", s.Resolution}, {"series", int64(s.Series)}, {"samples", int64(s.Samples)}, {"bytes", s.Bytes}, {"level", int64(s.Level)}} {
				dst = append(dst, ',', '"')
				dst = append(dst, kv.k...)
				dst = append(dst, '"', ':')
				dst = strconv.AppendInt(dst, kv.v, 10)
			}
			dst = append(dst, '}')
		}
		return append(dst, "]}"...)
	}, nil, nil)
}
