package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWriteTimeBounds sends samples around the edges of the accepted
// window: more than limits.max_future_skew (default 10 min) ahead of the
// server's clock is refused with 400 naming the sample and nothing of the
// request is stored; within it is accepted; limits.max_sample_age, when
// set, refuses samples older than it.
func TestWriteTimeBounds(t *testing.T) {
	s := startServer(t, "", "--limits.max-sample-age", "24h")
	now := time.Now()
	push := func(lines string) (int, string) {
		code, _, body := s.call(http.MethodPost, "/write?precision=s", "", []byte(lines))
		return code, body
	}
	// One good sample and one an hour ahead, in one request.
	code, body := push(fmt.Sprintf("tb,h=ok v=1 %d\ntb,h=future v=2 %d\n", now.Unix(), now.Add(time.Hour).Unix()))
	checkError(t, code, body, http.StatusBadRequest, "bad_data", "out of bounds: sample of {__name__=\"tb_v\", h=\"future\"}")
	if !strings.Contains(body, "limits.max_future_skew 10m0s") {
		t.Errorf("the refusal does not name the limit: %s", body)
	}
	code, body = push(fmt.Sprintf("tb,h=old v=3 %d\n", now.Add(-48*time.Hour).Unix()))
	checkError(t, code, body, http.StatusBadRequest, "bad_data", "out of bounds: sample of {__name__=\"tb_v\", h=\"old\"}")
	if got := s.metric("", rejections("limits.max_future_skew")); got != 1 {
		t.Errorf("%s = %v, want 1", rejections("limits.max_future_skew"), got)
	}
	if got := s.metric("", rejections("limits.max_sample_age")); got != 1 {
		t.Errorf("%s = %v, want 1", rejections("limits.max_sample_age"), got)
	}
	if names := s.metricNames(""); len(names) != 0 {
		t.Fatalf("a refused write stored series: %v", names)
	}
	if code, body := push(fmt.Sprintf("tb,h=ok v=1 %d\ntb,h=soon v=2 %d\n", now.Unix(), now.Add(5*time.Minute).Unix())); code != http.StatusNoContent {
		t.Fatalf("samples within the window: %d %s", code, body)
	}
}
