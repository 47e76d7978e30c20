package api

import (
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/labstack/echo/v4"
)

// snapshot serves POST /api/v1/admin/snapshot (and Prometheus' spelling,
// /api/v1/admin/tsdb/snapshot): it flushes the head and hard-links every
// segment into a new directory, a consistent copy for backups. The answer
// names the directory: {"name": "<name>", "dir": "<path>"}.
func (a *API) snapshot(c echo.Context) error {
	if a.opts.Snapshot == nil {
		return echo.ErrNotFound
	}
	dir, err := a.opts.Snapshot(c.Request().Context())
	if err != nil {
		return &apiError{typ: errInternal, status: http.StatusInternalServerError, err: fmt.Errorf("snapshot: %w", err)}
	}
	return a.success(c, func(dst []byte) []byte {
		dst = append(dst, `{"name":`...)
		dst = appendString(dst, filepath.Base(dir))
		dst = append(dst, `,"dir":`...)
		dst = appendString(dst, dir)
		return append(dst, '}')
	}, nil, nil)
}
