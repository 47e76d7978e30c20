package api

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAuthRoleOf(t *testing.T) {
	f := func(route string, want role) {
		t.Helper()
		if got := roleOf(route); got != want {
			t.Fatalf("roleOf(%q) = %v, want %v", route, got, want)
		}
	}
	f("/healthz", roleOpen)
	f("/readyz", roleOpen)
	f("/", roleOpen)
	f("/*", roleOpen)
	for route := range writeRoutes {
		f(route, roleWrite)
	}
	f("/api/v1/admin/tsdb/flush", roleAdmin)
	f("/api/v1/admin/:job/run", roleAdmin)
	f("/debug/pprof/*", roleAdmin)
	f("/api/v1/query", roleRead)
	f("/api/v1/read", roleRead)
	f("/metrics", roleRead)
	f("/api/v1/status/config", roleRead)
	f("/api/v1/administrator", roleRead) // a prefix is not a path segment
	f("", roleRead)                      // unmatched: guarded by default
	f("/api/v2/new-route", roleRead)
}

func TestAuthRouteRoleDashboards(t *testing.T) {
	f := func(method, route string, want role) {
		t.Helper()
		if got := routeRole(method, route); got != want {
			t.Fatalf("routeRole(%s, %q) = %v, want %v", method, route, got, want)
		}
	}
	f(http.MethodGet, "/api/v1/dashboards", roleRead)
	f(http.MethodGet, "/api/v1/dashboards/:id", roleRead)
	f(http.MethodHead, "/api/v1/dashboards/:id", roleRead)
	f(http.MethodPut, "/api/v1/dashboards/:id", roleWrite)
	f(http.MethodDelete, "/api/v1/dashboards/:id", roleWrite)
	f(http.MethodPost, "/api/v1/query", roleRead) // only the dashboards API changes with the method
	f(http.MethodGet, "/api/v1/write", roleWrite)
}

func TestAuthCredential(t *testing.T) {
	f := func(header, want string, wantOK bool) {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		got, ok := credential(r)
		if got != want || ok != wantOK {
			t.Fatalf("credential(%q) = %q, %v; want %q, %v", header, got, ok, want, wantOK)
		}
	}
	f("", "", false)
	f("Bearer abc", "abc", true)
	f("bearer  abc ", "abc", true)
	f("Bearer", "", false)
	f("Bearer ", "", false)
	f("Basic dXNlcjpzZWNyZXQ=", "secret", true) // user:secret
	f("Basic dXNlcjo=", "", false)              // user: (no password)
	f("Basic !!!", "", false)
	f("Token abc", "", false)
	f("abc", "", false)
}

func TestAuthSecret(t *testing.T) {
	s := newSecret("tok")
	if s.matches(sha256.Sum256([]byte("tok"))) != 1 || s.matches(sha256.Sum256([]byte("tok2"))) != 0 {
		t.Fatal("secret does not compare tokens")
	}
	var unset secret
	if unset.matches(sha256.Sum256(nil)) != 0 {
		t.Fatal("an unset secret matched the empty token")
	}
}

func TestAuthTokensValidate(t *testing.T) {
	// Anywhere in the token, the first byte included.
	for _, tok := range []string{"a b", "a\tb", "a\nb", "é", " ab", "\x7fab", "éa"} {
		if (Tokens{Write: tok}).Validate() == nil {
			t.Errorf("token %q accepted", tok)
		}
	}
	if err := (Tokens{Read: "r-1.2_3~+/=", Admin: "x"}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestAuthTokensEnabled(t *testing.T) {
	for _, tok := range []Tokens{{Read: "r"}, {Write: "w"}, {Admin: "a"}, {Read: "r", Write: "w", Admin: "a"}} {
		if !tok.Enabled() {
			t.Errorf("%+v: not enabled", tok)
		}
	}
	if (Tokens{}).Enabled() {
		t.Error("no token: enabled")
	}
}
