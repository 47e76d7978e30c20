package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strata-tsdb/strata/query"
)

// newAuthTestServer serves an API with opts over an empty in-memory head.
func newAuthTestServer(t *testing.T, opts Options) string {
	t.Helper()
	a, _ := newTestAPI(t, slog.New(slog.DiscardHandler), query.Options{}, opts)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAuthMiddleware drives the authenticate middleware through the API's
// real routes: per role, no credentials get 401 with WWW-Authenticate, a
// wrong token (or another role's) 403 with a JSON error naming the role,
// the role's token or the admin token passes (as a bearer token or a basic
// auth password), and open routes need nothing.
func TestAuthMiddleware(t *testing.T) {
	tokens := Tokens{Read: "r-secret", Write: "w-secret", Admin: "a-secret"}
	url := newAuthTestServer(t, Options{Tokens: tokens, EnableAdmin: true})
	type route struct {
		role         role
		method, path string
		body         string
	}
	routes := []route{
		{roleOpen, http.MethodGet, "/healthz", ""},
		{roleOpen, http.MethodGet, "/readyz", ""},
		{roleRead, http.MethodGet, "/api/v1/query?query=1", ""},
		{roleRead, http.MethodGet, "/api/v1/labels", ""},
		{roleRead, http.MethodGet, "/metrics", ""},
		{roleWrite, http.MethodPost, "/write?precision=ms", "m v=1 1000\n"},
		{roleAdmin, http.MethodPost, "/api/v1/admin/nosuchjob/run", ""},
		{roleAdmin, http.MethodGet, "/debug/pprof/cmdline", ""},
	}
	do := func(r route, auth string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(r.method, url+r.path, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	passes := func(code int) bool { return code != http.StatusUnauthorized && code != http.StatusForbidden }
	tokenOf := map[role]string{roleRead: tokens.Read, roleWrite: tokens.Write, roleAdmin: tokens.Admin}
	for _, r := range routes {
		name := r.role.String() + " " + r.method + " " + r.path
		if r.role == roleOpen {
			if code, _, body := do(r, ""); !passes(code) {
				t.Errorf("%s without credentials: %d %s", name, code, body)
			}
			continue
		}
		code, h, body := do(r, "")
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s without credentials: %d (WWW-Authenticate %q), want 401 with a Bearer challenge", name, code, h.Get("WWW-Authenticate"))
		}
		checkAuthError(t, name, body, "unauthorized", r.role.String()+" token")
		code, _, body = do(r, "Bearer wrong")
		if code != http.StatusForbidden {
			t.Errorf("%s with a wrong token: %d, want 403", name, code)
		}
		checkAuthError(t, name, body, "forbidden", "invalid token for "+r.role.String())
		for other, tok := range tokenOf {
			if other == r.role || other == roleAdmin {
				continue
			}
			if code, _, _ := do(r, "Bearer "+tok); code != http.StatusForbidden {
				t.Errorf("%s with the %s token: %d, want 403", name, other, code)
			}
		}
		for _, auth := range []string{"Bearer " + tokenOf[r.role], "Bearer " + tokens.Admin, basicAuth("anyone", tokenOf[r.role])} {
			if code, _, body := do(r, auth); !passes(code) {
				t.Errorf("%s with %q: %d %s", name, auth, code, body)
			}
		}
	}

	// A role without a token is open; the others stay guarded.
	url = newAuthTestServer(t, Options{Tokens: Tokens{Write: "w-secret"}, EnableAdmin: true})
	for _, r := range routes {
		code, _, body := do(r, "")
		if r.role == roleWrite && code != http.StatusUnauthorized || r.role != roleWrite && !passes(code) {
			t.Errorf("only a write token set: %s %s without credentials: %d %s", r.method, r.path, code, body)
		}
	}
}

func basicAuth(user, password string) string {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}

// checkAuthError checks a Prometheus-style JSON error body.
func checkAuthError(t *testing.T, name, body, typ, msg string) {
	t.Helper()
	var eb struct{ Status, ErrorType, Error string }
	if err := json.Unmarshal([]byte(body), &eb); err != nil {
		t.Errorf("%s: error body %q: %v", name, body, err)
		return
	}
	if eb.Status != "error" || eb.ErrorType != typ || !strings.Contains(eb.Error, msg) {
		t.Errorf("%s: error %+v, want type %q and a message containing %q", name, eb, typ, msg)
	}
	if strings.Contains(body, "secret") {
		t.Errorf("%s: the error body names a token: %s", name, body)
	}
}
