package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"
)

// Tokens are the bearer tokens of the three roles. When a role's token is
// set, its routes require it; an empty token leaves them open. The admin
// token is accepted on read and write routes too, so one token can do
// everything. /healthz, /readyz and the dashboard's static files are always
// open.
type Tokens struct {
	// Read guards queries, metadata, status endpoints and /metrics.
	Read string
	// Write guards the write endpoints.
	Write string
	// Admin guards /api/v1/admin/ (which also needs EnableAdmin).
	Admin string
}

// Validate refuses tokens that cannot travel in an Authorization header.
func (t Tokens) Validate() error {
	for _, tok := range []struct{ role, v string }{{"read", t.Read}, {"write", t.Write}, {"admin", t.Admin}} {
		if strings.IndexFunc(tok.v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII }) >= 0 {
			return fmt.Errorf("%s token: only printable ASCII without spaces is allowed", tok.role)
		}
	}
	return nil
}

// Enabled reports whether any token is set.
func (t Tokens) Enabled() bool { return t.Read != "" || t.Write != "" || t.Admin != "" }

// Error types of refused credentials (Prometheus has none of its own).
const (
	errUnauthorized errorType = "unauthorized"
	errForbidden    errorType = "forbidden"
)

// role is what a route needs.
type role int

const (
	roleOpen role = iota
	roleRead
	roleWrite
	roleAdmin
)

func (r role) String() string {
	return [...]string{"open", "read", "write", "admin"}[r]
}

// roleOf maps a route pattern (echo's c.Path()) to its role. What is not
// known to be open, a write or an admin route is a read route, so a route
// added later is guarded by default.
func roleOf(route string) role {
	switch {
	case route == "/healthz", route == "/readyz", route == "/-/healthy", route == "/-/ready":
		return roleOpen
	case route == "/", route == "/*":
		// The dashboard's files; its API calls go to guarded routes, and
		// the catch-all answers 404 for /api/ paths.
		return roleOpen
	case writeRoutes[route]:
		return roleWrite
	case route == "/api/v1/admin" || strings.HasPrefix(route, "/api/v1/admin/"), strings.HasPrefix(route, "/debug/pprof"):
		return roleAdmin
	}
	return roleRead
}

// routeRole is the role a request needs: its route's, except that changing
// a saved dashboard (any method but GET and HEAD on the dashboards API)
// takes the write role.
func routeRole(method, route string) role {
	r := roleOf(route)
	if r == roleRead && dashboardRoutes[route] && method != http.MethodGet && method != http.MethodHead {
		return roleWrite
	}
	return r
}

// secret is a token's SHA-256: comparing digests in constant time leaks
// neither the token's bytes nor its length.
type secret struct {
	set    bool
	digest [sha256.Size]byte
}

func newSecret(token string) secret {
	if token == "" {
		return secret{}
	}
	return secret{set: true, digest: sha256.Sum256([]byte(token))}
}

// matches compares in constant time; an unset secret matches nothing.
func (s secret) matches(cred [sha256.Size]byte) int {
	if !s.set {
		return 0
	}
	return subtle.ConstantTimeCompare(s.digest[:], cred[:])
}

// credential returns the token of an Authorization header: a bearer token,
// or the password of basic auth (the user name is ignored, for clients
// that only speak basic auth). ok is false when there is none.
func credential(r *http.Request) (token string, ok bool) {
	h := r.Header.Get(echo.HeaderAuthorization)
	scheme, rest, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		token = strings.TrimSpace(rest)
		return token, token != ""
	case strings.EqualFold(scheme, "Basic"):
		_, pw, ok := r.BasicAuth()
		return pw, ok && pw != ""
	}
	return "", false
}

// authenticate returns the middleware that checks credentials against the
// route's role. A request without usable credentials gets 401 with
// WWW-Authenticate: Bearer; one with a wrong token 403. Tokens never reach
// a log: only the route and the role are named.
func (a *API) authenticate() echo.MiddlewareFunc {
	secrets := map[role]secret{
		roleRead:  newSecret(a.opts.Tokens.Read),
		roleWrite: newSecret(a.opts.Tokens.Write),
		roleAdmin: newSecret(a.opts.Tokens.Admin),
	}
	admin := secrets[roleAdmin]
	if a.opts.Tokens.Enabled() && a.opts.EnableAdmin && !admin.set {
		a.logger.Warn("the admin API is enabled without auth.admin_token: admin endpoints are open to anyone who can connect")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := routeRole(c.Request().Method, c.Path())
			want, ok := secrets[r]
			if !ok || !want.set {
				return next(c)
			}
			tok, ok := credential(c.Request())
			if !ok {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="strata"`)
				return &apiError{typ: errUnauthorized, status: http.StatusUnauthorized,
					err: fmt.Errorf("authentication required: %s endpoints need the %s token as a bearer token", r, r)}
			}
			d := sha256.Sum256([]byte(tok))
			// Both comparisons run, whatever the first one says.
			if want.matches(d)|admin.matches(d) != 1 {
				return &apiError{typ: errForbidden, status: http.StatusForbidden,
					err: errors.New("invalid token for " + r.String() + " endpoints")}
			}
			return next(c)
		}
	}
}
