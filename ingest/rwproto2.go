package ingest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
)

// A hand-written reader for remote write 2.0's message
// (prompb/io/prometheus/write/v2/types.proto), like the 1.0 reader in
// rwproto.go and for the same reason (no allocation per label or sample):
//
//	Request    { repeated string symbols = 4; repeated TimeSeries timeseries = 5; }
//	TimeSeries { repeated uint32 labels_refs = 1; repeated Sample samples = 2;
//	             repeated Histogram histograms = 3; repeated Exemplar exemplars = 4;
//	             Metadata metadata = 5; }
//	Sample     { double value = 1; int64 timestamp = 2; int64 start_timestamp = 3; }
//	Exemplar   { repeated uint32 labels_refs = 1; double value = 2; int64 timestamp = 3; }
//	Metadata   { MetricType type = 1; uint32 help_ref = 3; uint32 unit_ref = 4; }
//	Histogram  the 1.0 Histogram, plus int64 start_timestamp = 17
//
// Strings are references into the symbols table: labels_refs holds pairs of
// (name, value) indexes. The symbols may come after the series on the wire,
// so the request is read twice: symbols first, then series. It follows
// gogo-protobuf's generated code on what is an error; the differential fuzz
// target FuzzDecodeRemoteWriteV2 checks it against the writev2 types.
//
// Unlike 1.0, a 2.0 request may be written in part (the spec's "partial
// write"): a series whose labels cannot be stored, a histogram Prometheus
// refuses or an exemplar with bad labels is left out, counted and named in
// a *Rejected, and the rest is written. Malformed protobuf or snappy and
// the per-request limits still refuse the whole request.

// Rejected says what DecodeRemoteWriteV2 left out of its Batch, and why. It
// is an error: the 4xx message of a partial write.
type Rejected struct {
	// Samples, Histograms and Exemplars count what was left out.
	Samples, Histograms, Exemplars int
	// Errs are the first problems found (at most maxRejectedErrs), each
	// an *Error naming its series; More counts the others.
	Errs []error
	More int
}

const maxRejectedErrs = 10

func (r *Rejected) add(err error, samples, histograms, exemplars int) {
	r.Samples += samples
	r.Histograms += histograms
	r.Exemplars += exemplars
	if len(r.Errs) < maxRejectedErrs {
		r.Errs = append(r.Errs, err)
	} else {
		r.More++
	}
}

// Error says what was not written and why.
func (r *Rejected) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "not written: %d samples, %d histograms, %d exemplars (everything else was written): ", r.Samples, r.Histograms, r.Exemplars)
	for i, e := range r.Errs {
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(e.Error())
	}
	if r.More > 0 {
		sb.WriteString("; and " + strconv.Itoa(r.More) + " more")
	}
	return sb.String()
}

// Unwrap returns the problems, so that errors.Is finds their sentinels.
func (r *Rejected) Unwrap() []error { return r.Errs }

// DecodeRemoteWriteV2 decodes a Prometheus remote write 2.0 request body: a
// snappy block-compressed io.prometheus.write.v2.Request.
//
// It returns the Batch of everything that can be written (float samples
// with their start timestamps, native histograms, exemplars, metadata) and,
// when something could not be, a *Rejected saying what and why (nil
// otherwise). An error (an *Error: empty body, bad snappy or protobuf, a
// per-request limit) refuses the whole request, with no Batch.
func DecodeRemoteWriteV2(body []byte, lim Limits) (*Batch, *Rejected, error) {
	return DecodeRemoteWriteV2Known(body, lim, nil)
}

// DecodeRemoteWriteV2Known is DecodeRemoteWriteV2 with the help of known
// (nil: none), as DecodeRemoteWriteKnown.
func DecodeRemoteWriteV2Known(body []byte, lim Limits, known Known) (*Batch, *Rejected, error) {
	raw, release, err := unsnappy(body)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	b := getBuilder(lim)
	defer b.release()
	if known != nil {
		b.known, b.epoch = known, known.KnownEpoch()
	}
	var rej Rejected
	if err := decodeV2Request(raw, b, &rej); err != nil {
		return nil, nil, protoError(err)
	}
	if rej.Samples+rej.Histograms+rej.Exemplars+len(rej.Errs) == 0 {
		return b.batch(), nil, nil
	}
	return b.batch(), &rej, nil
}

// decodeV2Request reads a Request into b, leaving out (into rej) what
// cannot be written. Errors refuse the whole request.
func decodeV2Request(raw []byte, b *builder, rej *Rejected) error {
	syms := b.syms[:0]
	for i := 0; i < len(raw); {
		field, wt, next, err := pbKey(raw, i, "Request")
		if err != nil {
			return err
		}
		switch field {
		case 4, 5:
			if wt != 2 {
				return errWireType(wt, [...]string{4: "Symbols", 5: "Timeseries"}[field])
			}
			var v []byte
			if v, i, err = pbBytes(raw, next); err != nil {
				return err
			}
			if field == 4 {
				syms = append(syms, yoloString(v))
			}
		default:
			if i, err = pbSkip(raw, i); err != nil {
				return err
			}
		}
	}
	b.syms = syms
	for i := 0; i < len(raw); {
		// The first pass checked the framing.
		field, _, next, err := pbKey(raw, i, "Request")
		if err != nil {
			return err
		}
		if field != 5 {
			if i, err = pbSkip(raw, i); err != nil {
				return err
			}
			continue
		}
		var ts []byte
		if ts, i, err = pbBytes(raw, next); err != nil {
			return err
		}
		if err := decodeV2TimeSeries(ts, b, syms, rej); err != nil {
			return err
		}
	}
	return nil
}

// v2Series is what the first pass over a TimeSeries finds.
type v2Series struct {
	refs                []uint32
	mdType              uint64
	helpRef, unitRef    uint32
	nSamples, nHists    int
	nExemplars          int
	hasMetadataRefError bool
}

// decodeV2TimeSeries reads one TimeSeries: labels and metadata first, then
// samples, histograms and exemplars.
func decodeV2TimeSeries(msg []byte, b *builder, syms []string, rej *Rejected) error {
	s := v2Series{refs: b.refs[:0]}
	for i := 0; i < len(msg); {
		field, wt, next, err := pbKey(msg, i, "TimeSeries")
		if err != nil {
			return err
		}
		switch field {
		case 1:
			if i, err = pbRepeatedUint32(msg, next, wt, "LabelsRefs", &s.refs); err != nil {
				return err
			}
		case 2, 3, 4, 5:
			if wt != 2 {
				return errWireType(wt, [...]string{2: "Samples", 3: "Histograms", 4: "Exemplars", 5: "Metadata"}[field])
			}
			var v []byte
			if v, i, err = pbBytes(msg, next); err != nil {
				return err
			}
			switch field {
			case 2:
				s.nSamples++
			case 3:
				s.nHists++
			case 4:
				s.nExemplars++
			case 5:
				if err := s.decodeMetadata(v); err != nil {
					return err
				}
			}
		default:
			if i, err = pbSkip(msg, i); err != nil {
				return err
			}
		}
	}
	b.refs = s.refs
	reject := func(err error) {
		rej.add(err, s.nSamples, s.nHists, s.nExemplars)
	}
	if err := b.setLabelRefs(s.refs, syms); err != nil {
		reject(err)
		return nil
	}
	b.finishLabels()
	if int(s.helpRef) >= len(syms) || int(s.unitRef) >= len(syms) {
		reject(withSeries(newError(ErrMalformed, fmt.Sprintf("metadata help_ref %d or unit_ref %d outside of the symbols table (size %d)", s.helpRef, s.unitRef, len(syms))), formatSeries(b.name, b.pending)))
		return nil
	}
	if s.nSamples+s.nHists+s.nExemplars == 0 {
		reject(withSeries(newError(ErrEmptySeries, "series without samples, histograms or exemplars"), formatSeries(b.name, b.pending)))
		return nil
	}
	ref, err := b.seriesRef()
	if err != nil {
		if errors.Is(err, ErrTooManySeries) {
			return err
		}
		reject(err)
		return nil
	}
	if s.mdType != 0 || s.helpRef != 0 || s.unitRef != 0 {
		mt := metricType(s.mdType)
		b.addMetadata(metadataFamily(b.name, mt), Metadata{Type: mt, Help: syms[s.helpRef], Unit: syms[s.unitRef]})
	}
	for i := 0; i < len(msg); {
		field, _, next, err := pbKey(msg, i, "TimeSeries")
		if err != nil {
			return err
		}
		if field < 2 || field > 4 {
			if i, err = pbSkip(msg, i); err != nil {
				return err
			}
			continue
		}
		var v []byte
		if v, i, err = pbBytes(msg, next); err != nil {
			return err
		}
		switch field {
		case 2:
			t, val, st, err := decodeV2Sample(v)
			if err != nil {
				return err
			}
			if err := b.addWithStart(ref, t, val, st); err != nil {
				return err
			}
		case 3:
			t, h, fh, st, err := decodeHistogram(v, true)
			if err != nil {
				return err
			}
			if err := b.addHistogram(ref, t, h, fh); err != nil {
				if !errors.Is(err, ErrInvalidHistogram) {
					return err
				}
				rej.add(err, 0, 1, 0)
				continue
			}
			b.setHistogramStart(st)
		case 4:
			if err := decodeV2Exemplar(v, b, ref, syms); err != nil {
				if !errors.Is(err, ErrInvalidExemplar) {
					return err
				}
				rej.add(err, 0, 0, 1)
			}
		}
	}
	return nil
}

// setLabelRefs describes the label set of refs (pairs of name and value
// indexes into syms) to b, as resetLabels and addLabel would.
func (b *builder) setLabelRefs(refs []uint32, syms []string) error {
	b.resetLabels()
	if len(refs)%2 != 0 {
		return newError(ErrMalformed, fmt.Sprintf("labels_refs of odd length %d", len(refs)))
	}
	for i := 0; i < len(refs); i += 2 {
		n, v := refs[i], refs[i+1]
		if int(n) >= len(syms) || int(v) >= len(syms) {
			return newError(ErrMalformed, fmt.Sprintf("labels_refs %d (name) = %d (value) outside of the symbols table (size %d)", n, v, len(syms)))
		}
		b.addLabel(syms[n], syms[v])
	}
	return nil
}

// decodeMetadata reads a Metadata; a repeated one overwrites what it sets.
func (s *v2Series) decodeMetadata(msg []byte) error {
	for i := 0; i < len(msg); {
		field, wt, next, err := pbKey(msg, i, "Metadata")
		if err != nil {
			return err
		}
		if field != 1 && field != 3 && field != 4 {
			if i, err = pbSkip(msg, i); err != nil {
				return err
			}
			continue
		}
		if wt != 0 {
			return errWireType(wt, [...]string{1: "Type", 3: "HelpRef", 4: "UnitRef"}[field])
		}
		var u uint64
		if u, i, err = pbVarint(msg, next); err != nil {
			return err
		}
		switch field {
		case 1:
			s.mdType = uint64(int32(u))
		case 3:
			s.helpRef = uint32(u)
		case 4:
			s.unitRef = uint32(u)
		}
	}
	return nil
}

// metadataFamily is the metric family a series of a remote write 2.0
// request belongs to, for its metadata: the metric name, less the suffix of
// a classic histogram's or summary's series (_bucket, _sum, _count,
// _created, a gauge histogram's _gsum and _gcount), so that the series of
// one family share one entry, as in Prometheus' /api/v1/metadata.
func metadataFamily(name string, t model.MetricType) string {
	switch t {
	case model.MetricTypeHistogram, model.MetricTypeGaugeHistogram, model.MetricTypeSummary:
		for _, suffix := range []string{"_bucket", "_sum", "_count", "_created", "_gsum", "_gcount"} {
			if f, ok := strings.CutSuffix(name, suffix); ok && f != "" {
				return f
			}
		}
	}
	return name
}

// decodeV2Sample reads a Sample.
func decodeV2Sample(msg []byte) (t int64, v float64, st int64, err error) {
	for i := 0; i < len(msg); {
		field, wt, next, err := pbKey(msg, i, "Sample")
		if err != nil {
			return 0, 0, 0, err
		}
		switch field {
		case 1:
			if wt != 1 {
				return 0, 0, 0, errWireType(wt, "Value")
			}
			if v, i, err = pbDouble(msg, next); err != nil {
				return 0, 0, 0, err
			}
		case 2, 3:
			if wt != 0 {
				return 0, 0, 0, errWireType(wt, [...]string{2: "Timestamp", 3: "StartTimestamp"}[field])
			}
			var u uint64
			if u, i, err = pbVarint(msg, next); err != nil {
				return 0, 0, 0, err
			}
			if field == 2 {
				t = int64(u)
			} else {
				st = int64(u)
			}
		default:
			if i, err = pbSkip(msg, i); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	return t, v, st, nil
}

// decodeV2Exemplar reads an Exemplar of series ref into b. Bad label
// references are an ErrInvalidExemplar, like bad labels.
func decodeV2Exemplar(msg []byte, b *builder, ref int32, syms []string) error {
	refs := b.exRefs[:0]
	var (
		t int64
		v float64
	)
	for i := 0; i < len(msg); {
		field, wt, next, err := pbKey(msg, i, "Exemplar")
		if err != nil {
			return err
		}
		switch field {
		case 1:
			if i, err = pbRepeatedUint32(msg, next, wt, "LabelsRefs", &refs); err != nil {
				return err
			}
		case 2:
			if wt != 1 {
				return errWireType(wt, "Value")
			}
			if v, i, err = pbDouble(msg, next); err != nil {
				return err
			}
		case 3:
			if wt != 0 {
				return errWireType(wt, "Timestamp")
			}
			var u uint64
			if u, i, err = pbVarint(msg, next); err != nil {
				return err
			}
			t = int64(u)
		default:
			if i, err = pbSkip(msg, i); err != nil {
				return err
			}
		}
	}
	b.exRefs = refs
	lset := b.series[ref].lset
	if len(refs)%2 != 0 {
		return withSeries(newError(ErrInvalidExemplar, fmt.Sprintf("invalid exemplar: labels_refs of odd length %d", len(refs))), lset.String())
	}
	b.exsb.Reset()
	for i := 0; i < len(refs); i += 2 {
		n, val := refs[i], refs[i+1]
		if int(n) >= len(syms) || int(val) >= len(syms) {
			return withSeries(newError(ErrInvalidExemplar, fmt.Sprintf("invalid exemplar: labels_refs %d (name) = %d (value) outside of the symbols table (size %d)", n, val, len(syms))), lset.String())
		}
		if syms[val] != "" {
			b.exsb.Add(syms[n], syms[val])
		}
	}
	return b.addExemplar(ref, t, v)
}

// pbRepeatedUint32 reads one occurrence of a repeated uint32 field, packed
// (wire type 2) or not (0), whose value starts at msg[i:]. Like gogo's
// generated code, the last varint of a packed run may run past the run,
// bounded by the message, and reading carries on after it.
func pbRepeatedUint32(msg []byte, i, wt int, name string, dst *[]uint32) (int, error) {
	switch wt {
	case 0:
		u, next, err := pbVarint(msg, i)
		if err != nil {
			return 0, err
		}
		*dst = append(*dst, uint32(u))
		return next, nil
	case 2:
		v, end, err := pbBytes(msg, i)
		if err != nil {
			return 0, err
		}
		j := end - len(v)
		for j < end {
			var u uint64
			if u, j, err = pbVarint(msg, j); err != nil {
				return 0, err
			}
			*dst = append(*dst, uint32(u))
		}
		return j, nil
	}
	return 0, errWireType(wt, name)
}
