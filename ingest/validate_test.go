package ingest

import (
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

func TestValidateSeries(t *testing.T) {
	lim := Limits{MaxLabelsPerSeries: 3, MaxLabelNameLength: 8, MaxLabelValueLength: 10}
	f := func(lset labels.Labels, we *wantErr) {
		t.Helper()
		err := ValidateSeries(lset, lim)
		if we == nil {
			if err != nil {
				t.Errorf("ValidateSeries(%s) = %v, want nil", lset, err)
			}
			return
		}
		checkResult(t, nil, err, nil, we)
	}
	unsorted := labels.NewScratchBuilder(2)
	unsorted.Add("__name__", "up")
	unsorted.Add("a", "1")
	unsorted.Add("Z", "1")

	f(ls("__name__", "up"), nil)
	f(ls("__name__", "a:b_c9", "job", "x", "_i", "y"), nil)
	f(ls("__name__", "up", "job", "0123456789"), nil)
	f(ls("job", "x"), &wantErr{is: ErrInvalidMetricName, msg: "missing metric name"})
	// UTF-8 names (Prometheus 3's default) take anything but empty or
	// invalid UTF-8; legacy names take Prometheus 2's character set.
	f(ls("__name__", "1abc", "a:b", "x", "a.b", "é"), nil)
	f(ls("__name__", "a\xff"), &wantErr{is: ErrInvalidMetricName, msg: `invalid metric name "a\xff": names must be valid, non-empty UTF-8`})
	f(ls("__name__", "up", "\xff", "x"), &wantErr{is: ErrInvalidLabelName, msg: `invalid label name "\xff"`})
	lim.LegacyNames = true
	f(ls("__name__", "1abc"), &wantErr{is: ErrInvalidMetricName, msg: `invalid metric name "1abc" (ingest.name_validation: legacy)`})
	f(ls("__name__", "a-b"), &wantErr{is: ErrInvalidMetricName, msg: `invalid metric name "a-b"`})
	f(ls("__name__", "up", "1abc", "x"), &wantErr{is: ErrInvalidLabelName, msg: `invalid label name "1abc"`})
	f(ls("__name__", "up", "a:b", "x"), &wantErr{is: ErrInvalidLabelName, msg: `invalid label name "a:b"`})
	f(ls("__name__", "up", "__x", "x"), &wantErr{is: ErrReservedLabel, msg: `reserved label name "__x"`})
	f(ls("__name__", "up", "a", "1", "a", "2"), &wantErr{is: ErrDuplicateLabel, msg: `duplicate label name "a"`})
	f(unsorted.Labels(), &wantErr{is: ErrInvalidLabelName, msg: "out of order"})
	lim.LegacyNames = false
	f(ls("__name__", "up", "a", ""), &wantErr{is: ErrInvalidLabelValue, msg: `empty value for label "a"`})
	f(ls("__name__", "up", "a", "\xff"), &wantErr{is: ErrInvalidLabelValue, msg: "not valid UTF-8"})
	f(ls("__name__", "up", "a", "1", "b", "2", "c", "3"), &wantErr{is: ErrTooManyLabels, msg: "too many labels: 4, limit is 3"})
	f(ls("__name__", "up", "abcdefghi", "1"), &wantErr{is: ErrLabelTooLong, msg: `label name "abcdefghi" too long: 9 bytes, limit is 8`})
	f(ls("__name__", "up", "a", "01234567890"), &wantErr{is: ErrLabelTooLong, msg: `value of label "a" too long: 11 bytes, limit is 10`})
	f(ls("__name__", "up_up_up_up"), &wantErr{is: ErrLabelTooLong, msg: "metric name too long: 11 bytes, limit is 10"})
	// The message names the series.
	f(ls("__name__", "up", "", "x"), &wantErr{is: ErrInvalidLabelName, msg: `in series {""="x", __name__="up"}`})
}

func TestNames(t *testing.T) {
	for s, want := range map[string]bool{"a": true, "_": true, ":": true, "a:b": true, "A9_": true, "": false, "9a": false, "a-b": false, "é": false} {
		if got := isMetricName(s); got != want {
			t.Errorf("isMetricName(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]bool{"a": true, "_": true, "A9_": true, ":": false, "a:b": false, "": false, "9a": false, "a.b": false} {
		if got := isLabelName(s); got != want {
			t.Errorf("isLabelName(%q) = %v, want %v", s, got, want)
		}
	}
	long := strings.Repeat("x", 1000)
	if got := truncate(long); len(got) > maxQuoted+3 {
		t.Errorf("truncate kept %d bytes", len(got))
	}
}
