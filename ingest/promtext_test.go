package ingest

import (
	"math"
	"testing"
	"time"
)

// exposition is a realistic /metrics page, as client_golang writes it, with
// a counter, gauges, an untyped metric, a classic histogram and a summary.
const exposition = `# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# TYPE go_goroutines gauge
go_goroutines 42
# TYPE temperature gauge
temperature{room="lab"} NaN
temperature{room="roof"} -Inf

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="1"} 100392
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{service="a",quantile="0.01"} 3102
rpc_duration_seconds{service="a",quantile="0.5"} 4773
rpc_duration_seconds{service="a",quantile="0.99"} 76656
rpc_duration_seconds_sum{service="a"} 1.7560473e+07
rpc_duration_seconds_count{service="a"} 2693
`

func TestDecodePromText(t *testing.T) {
	def := time.UnixMilli(1_700_000_000_000)
	const d = 1_700_000_000_000
	lim := DefaultLimits()
	tight := Limits{MaxSeriesPerRequest: 2, MaxSamplesPerRequest: 2, MaxLabelsPerSeries: 2, MaxLabelNameLength: 4, MaxLabelValueLength: 6}
	hist := "http_request_duration_seconds"

	for _, tc := range []struct {
		name        string
		body        string
		contentType string
		lim         Limits
		want        []Series
		err         *wantErr
	}{
		{
			name:        "full exposition",
			body:        exposition,
			contentType: "text/plain; version=0.0.4; charset=utf-8",
			want: []Series{
				series(ls("__name__", "go_goroutines"), Sample{d, 42}),
				series(ls("__name__", hist+"_bucket", "le", "0.05"), Sample{d, 24054}),
				series(ls("__name__", hist+"_bucket", "le", "0.1"), Sample{d, 33444}),
				series(ls("__name__", hist+"_bucket", "le", "1.0"), Sample{d, 100392}),
				series(ls("__name__", hist+"_bucket", "le", "+Inf"), Sample{d, 144320}),
				series(ls("__name__", hist+"_sum"), Sample{d, 53423}),
				series(ls("__name__", hist+"_count"), Sample{d, 144320}),
				series(ls("__name__", "http_requests_total", "code", "200", "method", "post"), Sample{1395066363000, 1027}),
				series(ls("__name__", "http_requests_total", "code", "400", "method", "post"), Sample{1395066363000, 3}),
				series(ls("__name__", "metric_without_timestamp_and_labels"), Sample{d, 12.47}),
				series(ls("__name__", "msdos_file_access_time_seconds", "error", "Cannot find file:\n\"FILE.TXT\"", "path", `C:\DIR\FILE.TXT`), Sample{d, 1.458255915e9}),
				series(ls("__name__", "rpc_duration_seconds", "quantile", "0.01", "service", "a"), Sample{d, 3102}),
				series(ls("__name__", "rpc_duration_seconds", "quantile", "0.5", "service", "a"), Sample{d, 4773}),
				series(ls("__name__", "rpc_duration_seconds", "quantile", "0.99", "service", "a"), Sample{d, 76656}),
				series(ls("__name__", "rpc_duration_seconds_sum", "service", "a"), Sample{d, 1.7560473e+07}),
				series(ls("__name__", "rpc_duration_seconds_count", "service", "a"), Sample{d, 2693}),
				series(ls("__name__", "temperature", "room", "lab"), Sample{d, math.NaN()}),
				series(ls("__name__", "temperature", "room", "roof"), Sample{d, math.Inf(-1)}),
			},
		},
		{
			name: "repeated series merge; empty label values dropped",
			body: "a{x=\"1\"} 1 1000\na{x=\"1\",y=\"\"} 2 2000\n",
			want: []Series{series(ls("__name__", "a", "x", "1"), Sample{1000, 1}, Sample{2000, 2})},
		},
		{
			name: "histogram without sum and count",
			body: "# TYPE h histogram\nh_bucket{le=\"2.5\"} 1\nh_bucket{le=\"+Inf\"} 2\n",
			want: []Series{
				series(ls("__name__", "h_bucket", "le", "2.5"), Sample{d, 1}),
				series(ls("__name__", "h_bucket", "le", "+Inf"), Sample{d, 2}),
			},
		},

		{name: "empty body", body: "", err: &wantErr{is: ErrEmptyBody, msg: "empty body"}},
		{name: "blank body", body: "\n\n", err: &wantErr{is: ErrEmptyBody, msg: "empty body"}},
		{name: "any other content type is the text format", contentType: "application/x-www-form-urlencoded", body: "a 1\n", want: []Series{series(ls("__name__", "a"), Sample{d, 1})}},
		{name: "no final newline", body: "a 1\nb{x=\"y\"} 2 1700000001000", want: []Series{series(ls("__name__", "a"), Sample{d, 1}), series(ls("__name__", "b", "x", "y"), Sample{d + 1000, 2})}},
		{
			name:        "OpenMetrics",
			contentType: "application/openmetrics-text; version=1.0.0; charset=utf-8",
			body: "# TYPE req counter\n# HELP req Requests.\nreq_total{code=\"200\"} 7 1700000002.5\nreq_created{code=\"200\"} 1600000000\n" +
				"# TYPE lat histogram\nlat_bucket{le=\"0.5\"} 1\nlat_bucket{le=\"+Inf\"} 3\nlat_sum 1.25\nlat_count 3\n# TYPE temp gauge\ntemp 21.5\n# EOF",
			want: []Series{
				series(ls("__name__", "req_total", "code", "200"), Sample{d + 2500, 7}),
				series(ls("__name__", "lat_bucket", "le", "0.5"), Sample{d, 1}),
				series(ls("__name__", "lat_bucket", "le", "+Inf"), Sample{d, 3}),
				series(ls("__name__", "lat_sum"), Sample{d, 1.25}),
				series(ls("__name__", "lat_count"), Sample{d, 3}),
				series(ls("__name__", "temp"), Sample{d, 21.5}),
			},
		},
		{name: "OpenMetrics without EOF", contentType: "application/openmetrics-text", body: "a 1\n", err: &wantErr{is: ErrMalformed, msg: "parse OpenMetrics text"}},
		{name: "OpenMetrics limits hold", contentType: "application/openmetrics-text", lim: tight, body: "a 1\nb 1\nc 1\n# EOF\n", err: &wantErr{is: ErrTooManySeries, msg: "too many series: more than 2"}},
		{name: "protobuf refused", contentType: "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", body: "x", err: &wantErr{is: ErrUnsupported, msg: "is not supported"}},
		{name: "bad content type", contentType: "text/plain; ;", body: "a 1", err: &wantErr{is: ErrUnsupported, msg: "invalid content type"}},
		{name: "syntax error names its line", body: "a 1\nb 2\nc{x=\"1\" 3\n", err: &wantErr{is: ErrMalformed, msg: "line 3: ", line: 3}},
		{name: "bad value", body: "a 1\nb abc\n", err: &wantErr{is: ErrMalformed, msg: `line 2: expected float as value, got "abc"`, line: 2}},
		{name: "bad timestamp", body: "a 1 1.5\n", err: &wantErr{is: ErrMalformed, msg: `line 1: expected integer as timestamp`, line: 1}},
		{name: "invalid metric name", body: "1abc 1\n", err: &wantErr{is: ErrMalformed, msg: "line 1: "}},
		{name: "invalid label name", body: "a{1abc=\"x\"} 1\n", err: &wantErr{is: ErrMalformed, msg: "line 1: "}},
		{
			name: "utf8 quoted names",
			body: "# TYPE \"http.requests\" counter\n{\"http.requests\",\"service.name\"=\"api\",code=\"200\"} 7\n# TYPE \"req.lat\" histogram\n{\"req.lat_bucket\",le=\"1\"} 2\n{\"req.lat_bucket\",le=\"+Inf\"} 3\n{\"req.lat_count\"} 3\n",
			want: []Series{
				series(ls("__name__", "http.requests", "code", "200", "service.name", "api"), Sample{d, 7}),
				series(ls("__name__", "req.lat_bucket", "le", "1.0"), Sample{d, 2}),
				series(ls("__name__", "req.lat_bucket", "le", "+Inf"), Sample{d, 3}),
				series(ls("__name__", "req.lat_count"), Sample{d, 3}),
			},
		},
		{
			name:        "OpenMetrics utf8 quoted names",
			contentType: "application/openmetrics-text",
			body:        "# TYPE \"room.temp\" gauge\n{\"room.temp\",\"building.floor\"=\"2\"} 21.5\n# EOF\n",
			want:        []Series{series(ls("__name__", "room.temp", "building.floor", "2"), Sample{d, 21.5})},
		},
		{name: "legacy: quoted names refused", lim: legacyLimits, body: "{\"http.requests\"} 7\n", err: &wantErr{is: ErrMalformed, msg: "line 1: "}},
		{name: "reserved label", body: "a{__x=\"1\"} 1\n", err: &wantErr{is: ErrReservedLabel, msg: `reserved label name "__x" in series a{__x="1"}`}},
		{name: "duplicate label", body: "a{x=\"1\",x=\"2\"} 1\n", err: &wantErr{is: ErrMalformed, msg: `line 1: duplicate label names for metric "a"`, line: 1}},
		{name: "too many series", lim: tight, body: "a 1\nb 1\nc 1\n", err: &wantErr{is: ErrTooManySeries, msg: "too many series: more than 2"}},
		{name: "too many samples", lim: tight, body: "a 1 1\na 1 2\na 1 3\n", err: &wantErr{is: ErrTooManySamples, msg: "too many samples: more than 2"}},
		{name: "too many labels", lim: tight, body: "a{x=\"1\",y=\"2\"} 1\n", err: &wantErr{is: ErrTooManyLabels, msg: "too many labels: 3, limit is 2"}},
		{name: "label name too long", lim: tight, body: "a{abcde=\"1\"} 1\n", err: &wantErr{is: ErrLabelTooLong, msg: `label name "abcde" too long`}},
		{name: "label value too long", lim: tight, body: "a{x=\"1234567\"} 1\n", err: &wantErr{is: ErrLabelTooLong, msg: `value of label "x" too long`}},
		{name: "histogram name too long", lim: tight, body: "# TYPE h histogram\nh_count 1\n", err: &wantErr{is: ErrLabelTooLong, msg: "metric name too long: 7 bytes, limit is 6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lim
			if tc.lim != (Limits{}) {
				l = tc.lim
			}
			got, err := DecodePromText([]byte(tc.body), tc.contentType, def, l)
			checkResult(t, got, err, tc.want, tc.err)
			if err == nil {
				checkBatchValid(t, got, l)
			}
		})
	}
}
