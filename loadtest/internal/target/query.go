package target

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// RangeQuery is one call of /api/v1/query_range.
type RangeQuery struct {
	Expr       string
	Start, End time.Time
	Step       time.Duration
}

// QueryOutcome is what became of one query.
type QueryOutcome struct {
	Outcome
	// Cache is the X-Strata-Cache header of the answer, empty when absent.
	Cache string
	// Series and Points count what a successful answer held.
	Series, Points int
}

// CacheHeader is the header Strata reports its cache decision in.
const CacheHeader = "X-Strata-Cache"

// QueryRange runs q. With noCache the request asks the server to bypass its
// result cache, with the nocache=1 parameter and Cache-Control: no-cache.
// An answer whose status is 2xx but whose body is not a successful matrix
// is reported with Status 0 and Err set.
func (t *Target) QueryRange(ctx context.Context, q RangeQuery, noCache bool) QueryOutcome {
	v := url.Values{}
	v.Set("query", q.Expr)
	v.Set("start", formatTime(q.Start))
	v.Set("end", formatTime(q.End))
	v.Set("step", strconv.FormatFloat(q.Step.Seconds(), 'f', -1, 64))
	if noCache {
		v.Set("nocache", "1")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base.String()+"/api/v1/query_range?"+v.Encode(), nil)
	if err != nil {
		return QueryOutcome{Outcome: Outcome{Err: err}}
	}
	if noCache {
		req.Header.Set("Cache-Control", "no-cache")
	}
	var (
		ans    matrixAnswer
		decErr error
	)
	out, h := t.do(req, func(b []byte) { decErr = json.Unmarshal(b, &ans) })
	qo := QueryOutcome{Outcome: out}
	if h != nil {
		qo.Cache = h.Get(CacheHeader)
	}
	if out.OK() {
		switch {
		case decErr != nil:
			qo.Err = errBadAnswer{"decode answer: " + decErr.Error()}
		case ans.Status != "success" || ans.Data.ResultType != "matrix":
			qo.Err = errBadAnswer{"answer status " + ans.Status + ", result type " + ans.Data.ResultType}
		default:
			qo.Series = len(ans.Data.Result)
			for _, s := range ans.Data.Result {
				qo.Points += len(s.Values)
			}
		}
	}
	return qo
}

type errBadAnswer struct{ msg string }

func (e errBadAnswer) Error() string { return e.msg }

// matrixAnswer decodes what the report needs of a range query answer: the
// status, and the number of series and points, without keeping them.
type matrixAnswer struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Values []skip `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

// skip is a JSON value read and dropped.
type skip struct{}

func (*skip) UnmarshalJSON([]byte) error { return nil }

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}
