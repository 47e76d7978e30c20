package api

import (
	"net/http"
	"net/http/pprof"
	"strings"
)

// servePprof serves Go's profiles under /debug/pprof/ (the index, the
// named profiles such as heap and goroutine, and the CPU profile, trace,
// command line and symbol lookups), as net/http/pprof registers them on
// the default mux.
func servePprof(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r)
	}
}
