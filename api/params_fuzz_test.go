package api

import (
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// strictParams keeps the checks that parseTime and parseDuration refuse
// NaN, ±Inf and out-of-range numbers, and that matchersParam refuses
// selectors matching every series, such as "{}" (as Prometheus does). They
// failed once; the inputs that showed it are seeds in testdata/fuzz.
const strictParams = true

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"0", "1700000000", "1700000000.123", "-1.5", "1e9", "0x1p30", "1_000",
		"2023-11-14T22:13:20Z", "2023-11-14T22:13:20.123456789+02:00", "2023-11-14 22:13:20",
		minTimeFormatted, maxTimeFormatted, "NaN", "Inf", "-Inf", "1e300", "9223372036854775807", "", " 1", "now",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTime(s)
		again, err2 := parseTime(s)
		if (err == nil) != (err2 == nil) || !got.Equal(again) {
			t.Fatalf("parseTime(%q) is not deterministic", s)
		}
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("parseTime(%q): error %q does not quote the input", s, err)
			}
			return
		}
		inRange := !got.Before(minTime) && !got.After(maxTime)
		if strictParams && !inRange {
			t.Fatalf("parseTime(%q) = %v, outside the API's range [%v, %v]", s, got, minTime, maxTime)
		}
		if v, ferr := strconv.ParseFloat(s, 64); ferr == nil {
			// Seconds: the answer is the number to the millisecond, compared
			// exactly (float64 arithmetic cannot hold 1e16 ms to the unit).
			if !math.IsInf(v, 0) && !math.IsNaN(v) {
				want := new(big.Float).SetPrec(256).SetFloat64(v)
				want.Mul(want, big.NewFloat(1000))
				d := new(big.Float).SetPrec(256).SetInt64(got.UnixMilli())
				if d.Sub(d, want).Abs(d).Cmp(big.NewFloat(1)) > 0 {
					t.Fatalf("parseTime(%q) = %d ms, want %s ms", s, got.UnixMilli(), want.Text('f', 3))
				}
				if got.Nanosecond()%int(time.Millisecond) != 0 {
					t.Fatalf("parseTime(%q) = %v: not a whole millisecond", s, got)
				}
			}
			return
		}
		// RFC 3339: formatting the answer and parsing it again is lossless.
		back, err := parseTime(got.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(got) {
			t.Fatalf("parseTime(%q) = %v, which does not round-trip: %v, %v", s, got, back, err)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{
		"0", "15", "1.5", "-1", "1e-9", "5m", "1h30m", "1y2w3d", "0s", "1ms", "9223372036.854775807",
		"9223372036.854775808", "NaN", "Inf", "", "1m-1s", "100000000000000000000y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("parseDuration(%q): error %q does not quote the input", s, err)
			}
			return
		}
		v, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			// A Prometheus duration is never negative.
			if d < 0 {
				t.Fatalf("parseDuration(%q) = %v, negative", s, d)
			}
			return
		}
		ns := v * float64(time.Second)
		if math.IsNaN(ns) || math.Abs(ns) >= math.Exp2(63) {
			// NaN and ±2^63 ns slip through the overflow check today.
			if strictParams {
				t.Fatalf("parseDuration(%q) = %v, want an error", s, d)
			}
			return
		}
		if diff := math.Abs(float64(d) - ns); diff > 1+math.Abs(ns)*1e-15 {
			t.Fatalf("parseDuration(%q) = %d ns, want %.0f ns", s, int64(d), ns)
		}
	})
}

// FuzzMatchersParam sends match[] values through the form parsing the
// metadata handlers use: every selector either fails with bad_data or gives
// matchers whose printed form parses back to the same matchers.
func FuzzMatchersParam(f *testing.F) {
	for _, s := range []string{
		`up`, `{job="a"}`, `up{job=~"a|b",instance!="x",env!~""}`, `{__name__=~".+"}`, `{a="\n\"\\"}`,
		`{`, `up{job=}`, `{"quoted.name"="v"}`, `up offset 5m`, `rate(x[5m])`, `{job="a",}`, `{a=~"("}`, "up\x00",
	} {
		f.Add(s, `{x="y"}`)
	}
	p := parser.NewParser(parser.Options{})
	e := echo.New()
	f.Fuzz(func(t *testing.T, first, second string) {
		form := url.Values{"match[]": {first, second}}
		req := httptest.NewRequest(http.MethodPost, "/api/v1/series", strings.NewReader(form.Encode()))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
		c := e.NewContext(req, httptest.NewRecorder())
		sets, err := matchersParam(c, p)
		if err != nil {
			if typ, status := classify(err); typ != errBadData || status != http.StatusBadRequest {
				t.Fatalf("matchersParam(%q, %q): %v answered %d %s, want 400 bad_data", first, second, err, status, typ)
			}
			return
		}
		if len(sets) != 2 {
			t.Fatalf("matchersParam(%q, %q): %d sets, want 2", first, second, len(sets))
		}
		for _, ms := range sets {
			// Prometheus refuses a set whose matchers all match the empty
			// string ("{}", `{a=~".*"}`): it selects every series, which
			// delete_series then deletes. matchersParam accepts them today.
			if strictParams && !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches("") }) {
				t.Fatalf("matchersParam(%q, %q): the set %v matches every series", first, second, ms)
			}
			printed := make([]string, len(ms))
			for i, m := range ms {
				printed[i] = m.String()
			}
			sel := "{" + strings.Join(printed, ",") + "}"
			back, err := p.ParseMetricSelector(sel)
			if err != nil {
				t.Fatalf("matchers %v print as %q, which does not parse: %v", ms, sel, err)
			}
			if !sameMatchers(ms, back) {
				t.Fatalf("matchers %v print as %q, which parses to %v", ms, sel, back)
			}
		}
	})
}

func sameMatchers(a, b []*labels.Matcher) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Name != b[i].Name || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

// FuzzFormValue compares formValue with http.Request.FormValue, which it
// stands in for: for the GET request of any query string (the fast path,
// which reads the string itself) and for the same parameters posted as a
// form (echo's FormValue), every key of the string and a few others get the
// same value. queryValue must agree with url.ParseQuery for every string
// it accepts.
func FuzzFormValue(f *testing.F) {
	for _, s := range []string{
		"query=up&start=1&end=2&step=15",
		"query=sum+by+%28host%29+%28x%29&query=second&step=1m",
		"a=1&a=2&&b&=c&d=%zz&d=ok&e=1;2&e=3&%71uery=escaped&query",
		"x=%&x=%4&x=%41",
		strings.Repeat("p=1&", 70) + "query=many",
		"", "&", "=", ";", "query=a=b", "q%uery=1",
	} {
		f.Add(s, "query")
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, raw, key string) {
		std := httptest.NewRequest(http.MethodGet, "/api/v1/query", nil)
		std.URL.RawQuery = raw
		keys := []string{key, "query", "start", "step", "", "a", "x"}
		if m, err := url.ParseQuery(raw); err == nil || len(m) > 0 {
			for k := range m {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			if v, ok := queryValue(raw, k); ok {
				if want := std.FormValue(k); v != want {
					t.Fatalf("queryValue(%q, %q) = %q, FormValue %q", raw, k, v, want)
				}
			} else if strings.Count(raw, "&") < maxQueryValueParams {
				t.Fatalf("queryValue(%q, %q) declined a string of %d parameters", raw, k, strings.Count(raw, "&")+1)
			}
			get := httptest.NewRequest(http.MethodGet, "/api/v1/query", nil)
			get.URL.RawQuery = raw
			if v, want := formValue(e.NewContext(get, httptest.NewRecorder()), k), std.FormValue(k); v != want {
				t.Fatalf("formValue(GET ?%s, %q) = %q, FormValue %q", raw, k, v, want)
			}
		}
	})
}

// TestFormValueSources: formValue reads the query string of a GET
// request, a form body (after the query string's values, as FormValue
// does), and the query string of a GET whose form was parsed already.
func TestFormValueSources(t *testing.T) {
	e := echo.New()
	get := httptest.NewRequest(http.MethodGet, "/api/v1/query?query=up%7Bjob%3D%22a%22%7D&step=15&query=second", nil)
	if v := formValue(e.NewContext(get, httptest.NewRecorder()), "query"); v != `up{job="a"}` {
		t.Fatalf("GET: query = %q", v)
	}
	if get.Form != nil {
		t.Fatal("GET: the form was parsed: the query string was not read directly")
	}
	post := httptest.NewRequest(http.MethodPost, "/api/v1/query?step=15", strings.NewReader("query=posted&step=30"))
	post.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
	pc := e.NewContext(post, httptest.NewRecorder())
	if q, s := formValue(pc, "query"), formValue(pc, "step"); q != "posted" || s != "30" {
		t.Fatalf("POST: query %q, step %q; want posted, 30 (the body's values first)", q, s)
	}
	parsed := httptest.NewRequest(http.MethodGet, "/api/v1/query?query=up", nil)
	if err := parsed.ParseForm(); err != nil {
		t.Fatal(err)
	}
	if v := formValue(e.NewContext(parsed, httptest.NewRecorder()), "query"); v != "up" {
		t.Fatalf("GET, form parsed: query = %q", v)
	}
}
