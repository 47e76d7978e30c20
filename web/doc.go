// Package web serves Strata's built-in dashboard: the graph, explore and
// status pages. The pages are plain HTML, CSS and JavaScript modules under
// static/, embedded in the binary with go:embed, so the dashboard works
// offline and `go build` needs no front-end tooling. Third-party code
// (uPlot) is vendored in its built form; see vendor/README.md.
//
// The package only serves files. Everything the pages show comes from the
// HTTP API, fetched by the browser from the same origin; the package must
// not reach into storage or the query engine, and no page may load anything
// from another origin (the Content-Security-Policy forbids it).
package web
