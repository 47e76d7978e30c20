package api

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// The widest times the API accepts, as in Prometheus' web/api/v1.
var (
	minTime = time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
	maxTime = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()

	minTimeFormatted = minTime.Format(time.RFC3339Nano)
	maxTimeFormatted = maxTime.Format(time.RFC3339Nano)
)

// parseTime accepts a Unix timestamp in seconds (fractions allowed) or an
// RFC 3339 time, as Prometheus does.
func parseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		// Outside the API's range (NaN and the infinities included) a float
		// would wrap around in the conversions below.
		if !(t >= float64(minTime.Unix()) && t <= float64(maxTime.Unix())) {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp: out of range", s)
		}
		sec, frac := math.Modf(t)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	switch s {
	case minTimeFormatted:
		return minTime, nil
	case maxTimeFormatted:
		return maxTime, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseDuration accepts seconds (fractions allowed) or a Prometheus duration
// such as 1m30s.
func parseDuration(s string) (time.Duration, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		ts := d * float64(time.Second)
		// float64(math.MaxInt64) is 2^63, which does not fit: >= refuses it.
		if !(ts < float64(math.MaxInt64) && ts >= float64(math.MinInt64)) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ts), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

// formValue reads a parameter from the query string or a form body, as
// http.Request.FormValue does. A GET request without a body (what
// dashboards send) is read from its query string directly: FormValue
// first parses the whole string into a map of every parameter, 0.6 KB
// and about 3 % of the server's CPU of a range query answered from the
// cache.
func formValue(c echo.Context, name string) string {
	r := c.Request()
	if r.Form == nil && r.Method == http.MethodGet && r.ContentLength == 0 && r.Header.Get(echo.HeaderContentType) == "" {
		if v, ok := queryValue(r.URL.RawQuery, name); ok {
			return v
		}
	}
	return c.FormValue(name)
}

// maxQueryValueParams is the most parameters queryValue reads; beyond,
// url.ParseQuery may refuse the whole string (GODEBUG urlmaxqueryparams).
const maxQueryValueParams = 64

// queryValue returns the first value of key in the query string raw, as
// url.ParseQuery(raw).Get(key) gives it (pairs with a semicolon or a bad
// escape skipped), without making a map; ok is false when raw has more
// than maxQueryValueParams parameters.
func queryValue(raw, key string) (v string, ok bool) {
	if strings.Count(raw, "&") >= maxQueryValueParams {
		return "", false
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(k); err != nil || k != key {
			continue
		}
		if v, err := url.QueryUnescape(v); err == nil {
			return v, true
		}
	}
	return "", true
}

func timeParam(c echo.Context, name string, def time.Time) (time.Time, error) {
	v := formValue(c, name)
	if v == "" {
		return def, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return time.Time{}, badData("invalid parameter %q: %v", name, err)
	}
	return t, nil
}

// matchersParam parses every match[] selector.
func matchersParam(c echo.Context, p parser.Parser) ([][]*labels.Matcher, error) {
	if err := c.Request().ParseForm(); err != nil {
		return nil, badData("error parsing form values: %v", err)
	}
	var out [][]*labels.Matcher
	for _, s := range c.Request().Form["match[]"] {
		ms, err := p.ParseMetricSelector(s)
		if err != nil {
			return nil, badData("invalid parameter \"match[]\": %v", err)
		}
		// As Prometheus: a selector every series matches ({} or
		// {a=~".*"}) would select (or delete) everything.
		nonEmpty := false
		for _, m := range ms {
			if !m.Matches("") {
				nonEmpty = true
				break
			}
		}
		if !nonEmpty {
			return nil, badData("invalid parameter \"match[]\": match[] must contain at least one non-empty matcher")
		}
		out = append(out, ms)
	}
	return out, nil
}

func limitParam(c echo.Context) (int, error) {
	v := formValue(c, "limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badData("limit must be a non-negative number")
	}
	return n, nil
}
