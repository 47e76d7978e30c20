package ingest

import (
	"math"
	"testing"
)

func TestDecodeJSONLines(t *testing.T) {
	lim := DefaultLimits()
	tight := Limits{MaxSeriesPerRequest: 1, MaxSamplesPerRequest: 2, MaxLabelsPerSeries: 2, MaxLabelNameLength: 4, MaxLabelValueLength: 6}
	const okLine = `{"metric":{"__name__":"up"},"values":[1],"timestamps":[1]}`

	for _, tc := range []struct {
		name string
		body string
		lim  Limits
		want []Series
		err  *wantErr
	}{
		{
			name: "VictoriaMetrics export format",
			body: `{"metric":{"__name__":"cpu_usage","job":"node","instance":"a"},"values":[1.5,2,-3e2],"timestamps":[1700000000000,1700000010000,1700000020000]}
{"metric":{"__name__":"up","job":"node"},"values":[1],"timestamps":[1700000000000]}`,
			want: []Series{
				series(ls("__name__", "cpu_usage", "instance", "a", "job", "node"),
					Sample{1700000000000, 1.5}, Sample{1700000010000, 2}, Sample{1700000020000, -300}),
				series(ls("__name__", "up", "job", "node"), Sample{1700000000000, 1}),
			},
		},
		{
			name: "special values as strings",
			body: `{"metric":{"__name__":"x"},"values":["NaN","Inf","+Inf","-Inf",0],"timestamps":[1,2,3,4,5]}`,
			want: []Series{series(ls("__name__", "x"),
				Sample{1, math.NaN()}, Sample{2, math.Inf(1)}, Sample{3, math.Inf(1)}, Sample{4, math.Inf(-1)}, Sample{5, 0})},
		},
		{
			name: "lines of one series merge; blank lines, CRLF and unknown keys are fine; empty values dropped",
			body: "\n" + `{"metric":{"job":"a","__name__":"up","env":""},"values":[1],"timestamps":[10],"extra":{"x":[1]}}` + "\r\n\n" +
				`{"metric":{"__name__":"up","job":"a"},"values":[2],"timestamps":[5]}` + "\n",
			want: []Series{series(ls("__name__", "up", "job", "a"), Sample{10, 1}, Sample{5, 2})},
		},
		{
			name: "escaped label values",
			body: `{"metric":{"__name__":"up","path":"C:\\dir \"q\" \u00e9\n"},"values":[1],"timestamps":[1]}`,
			want: []Series{series(ls("__name__", "up", "path", "C:\\dir \"q\" é\n"), Sample{1, 1})},
		},

		{name: "empty body", body: "", err: &wantErr{is: ErrEmptyBody, msg: "empty body"}},
		{name: "blank body", body: "\n \n", err: &wantErr{is: ErrEmptyBody, msg: "empty body"}},
		{name: "invalid JSON", body: okLine + "\n{\"metric\":", err: &wantErr{is: ErrMalformed, msg: "line 2: invalid JSON", line: 2}},
		{name: "two objects on a line", body: okLine + okLine, err: &wantErr{is: ErrMalformed, msg: "line 1: invalid JSON", line: 1}},
		{name: "line is an array", body: `[1,2]`, err: &wantErr{is: ErrMalformed, msg: "line 1: invalid JSON: line: got array, want object"}},
		{name: "values not an array", body: `{"metric":{"__name__":"up"},"values":1,"timestamps":[1]}`, err: &wantErr{is: ErrMalformed, msg: "line 1: invalid JSON: values: got number, want array"}},
		{name: "string value", body: `{"metric":{"__name__":"up"},"values":["1.5"],"timestamps":[1]}`, err: &wantErr{is: ErrMalformed, msg: `line 1: invalid value "1.5"`}},
		{name: "null value", body: okLine + "\n" + `{"metric":{"__name__":"up"},"values":[null],"timestamps":[1]}`, err: &wantErr{is: ErrMalformed, msg: "line 2: invalid value null", line: 2}},
		{name: "bool value", body: `{"metric":{"__name__":"up"},"values":[true],"timestamps":[1]}`, err: &wantErr{is: ErrMalformed, msg: "line 1: invalid value true"}},
		{name: "value out of range", body: `{"metric":{"__name__":"up"},"values":[1e999],"timestamps":[1]}`, err: &wantErr{is: ErrMalformed, msg: "line 1: invalid value 1e999: out of range"}},
		{name: "string timestamp", body: `{"metric":{"__name__":"up"},"values":[1],"timestamps":["1"]}`, err: &wantErr{is: ErrMalformed, msg: "line 1: invalid JSON: timestamps: got string, want integer timestamps in milliseconds"}},
		{name: "float timestamp", body: `{"metric":{"__name__":"up"},"values":[1],"timestamps":[1.5]}`, err: &wantErr{is: ErrMalformed, msg: "want integer timestamps in milliseconds"}},
		{name: "label value not a string", body: `{"metric":{"__name__":"up","job":1},"values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrMalformed, msg: `line 1: invalid JSON: metric: value of label "job" is not a string`}},
		{name: "metric not an object", body: `{"metric":"up","values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrMalformed, msg: "metric: want an object"}},
		{
			name: "length mismatch names the line",
			body: okLine + "\n\n" + `{"metric":{"__name__":"up"},"values":[1,2],"timestamps":[1]}`,
			err:  &wantErr{is: ErrMalformed, msg: "line 3: 2 values but 1 timestamps", line: 3},
		},
		{name: "no samples", body: `{"metric":{"__name__":"up"},"values":[],"timestamps":[]}`, err: &wantErr{is: ErrMalformed, msg: "line 1: no samples"}},
		{name: "missing values", body: `{"metric":{"__name__":"up"},"timestamps":[1]}`, err: &wantErr{is: ErrMalformed, msg: "line 1: 0 values but 1 timestamps"}},
		{name: "missing metric name", body: `{"metric":{"job":"a"},"values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrInvalidMetricName, msg: "line 1: missing metric name"}},
		{name: "null metric", body: `{"metric":null,"values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrInvalidMetricName, msg: "line 1: missing metric name"}},
		{name: "legacy: invalid metric name", lim: legacyLimits, body: `{"metric":{"__name__":"1abc"},"values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrInvalidMetricName, msg: `line 1: invalid metric name "1abc" (ingest.name_validation: legacy)`}},
		{name: "legacy: invalid label name", lim: legacyLimits, body: `{"metric":{"__name__":"up","1abc":"x"},"values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrInvalidLabelName, msg: `line 1: invalid label name "1abc"`}},
		{
			name: "utf8 names",
			body: `{"metric":{"__name__":"http.server.duration","service.name":"api","1abc":"x"},"values":[1],"timestamps":[1]}`,
			want: []Series{series(ls("__name__", "http.server.duration", "1abc", "x", "service.name", "api"), Sample{1, 1})},
		},
		{name: "utf8: empty label name", body: `{"metric":{"__name__":"up","":"x"},"values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrInvalidLabelName, msg: `line 1: invalid label name "": names must be valid, non-empty UTF-8`}},
		{name: "duplicate label", body: `{"metric":{"__name__":"up","job":"a","job":"b"},"values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrDuplicateLabel, msg: `line 1: duplicate label name "job"`}},
		{name: "reserved label", body: `{"metric":{"__name__":"up","__x":"a"},"values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrReservedLabel, msg: `line 1: reserved label name "__x"`}},
		{name: "too many series", lim: tight, body: okLine + "\n" + `{"metric":{"__name__":"down"},"values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrTooManySeries, msg: "line 2: too many series: more than 1"}},
		{name: "too many samples", lim: tight, body: okLine + "\n" + `{"metric":{"__name__":"up"},"values":[1,2],"timestamps":[1,2]}`, err: &wantErr{is: ErrTooManySamples, msg: "line 2: too many samples: more than 2"}},
		{name: "too many labels", lim: tight, body: `{"metric":{"__name__":"up","a":"1","b":"2"},"values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrTooManyLabels, msg: "line 1: too many labels: 3, limit is 2"}},
		{name: "label name too long", lim: tight, body: `{"metric":{"__name__":"up","abcde":"1"},"values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrLabelTooLong, msg: `line 1: label name "abcde" too long`}},
		{name: "label value too long", lim: tight, body: `{"metric":{"__name__":"up","a":"1234567"},"values":[1],"timestamps":[1]}`, err: &wantErr{is: ErrLabelTooLong, msg: `line 1: value of label "a" too long`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lim
			if tc.lim != (Limits{}) {
				l = tc.lim
			}
			got, err := DecodeJSONLines([]byte(tc.body), l)
			checkResult(t, got, err, tc.want, tc.err)
			if err == nil {
				checkBatchValid(t, got, l)
			}
		})
	}
}
