package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/strata-tsdb/strata/docstore"
)

// Saved dashboards: the built-in dashboard keeps them as JSON documents in
// Options.Dashboards. Reading them takes the read role, changing them the
// write role (see routeRole).
//
//	GET    /api/v1/dashboards      → [{id, title, updated}]
//	GET    /api/v1/dashboards/:id  → the document as it was put
//	PUT    /api/v1/dashboards/:id  → stores the body (a JSON object, ≤ 1 MiB)
//	DELETE /api/v1/dashboards/:id

// dashboardRoutes are the route patterns of the dashboards API.
var dashboardRoutes = map[string]bool{"/api/v1/dashboards": true, "/api/v1/dashboards/:id": true}

func (a *API) dashboardRoutes(e *echo.Echo) {
	e.GET("/api/v1/dashboards", a.listDashboards)
	e.GET("/api/v1/dashboards/:id", a.getDashboard)
	e.PUT("/api/v1/dashboards/:id", a.putDashboard)
	e.DELETE("/api/v1/dashboards/:id", a.deleteDashboard)
}

// dashboardError maps the store's errors to the API's.
func dashboardError(err error) error {
	switch {
	case errors.Is(err, docstore.ErrNotFound):
		return &apiError{typ: errNotFound, status: http.StatusNotFound, err: err}
	case errors.Is(err, docstore.ErrBadID), errors.Is(err, docstore.ErrBadDocument):
		return &apiError{typ: errBadData, status: http.StatusBadRequest, err: err}
	}
	return &apiError{typ: errInternal, status: http.StatusInternalServerError, err: err}
}

func (a *API) dashboards() (*docstore.Store, error) {
	if a.opts.Dashboards == nil {
		return nil, &apiError{typ: errNotFound, status: http.StatusNotFound, err: errors.New("this server keeps no dashboards")}
	}
	return a.opts.Dashboards, nil
}

func (a *API) listDashboards(c echo.Context) error {
	s, err := a.dashboards()
	if err != nil {
		return err
	}
	l, err := s.List()
	if err != nil {
		return dashboardError(err)
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return a.success(c, func(dst []byte) []byte { return append(dst, b...) }, nil, nil)
}

func (a *API) getDashboard(c echo.Context) error {
	s, err := a.dashboards()
	if err != nil {
		return err
	}
	b, err := s.Get(c.Param("id"))
	if err != nil {
		return dashboardError(err)
	}
	return a.success(c, func(dst []byte) []byte { return append(dst, b...) }, nil, nil)
}

func (a *API) putDashboard(c echo.Context) error {
	s, err := a.dashboards()
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, docstore.MaxDocumentBytes+1))
	if err != nil {
		return err
	}
	id := c.Param("id")
	if err := s.Put(id, body); err != nil {
		return dashboardError(err)
	}
	return a.success(c, func(dst []byte) []byte { return append(appendString(append(dst, `{"id":`...), id), '}') }, nil, nil)
}

func (a *API) deleteDashboard(c echo.Context) error {
	s, err := a.dashboards()
	if err != nil {
		return err
	}
	if err := s.Delete(c.Param("id")); err != nil {
		return dashboardError(err)
	}
	return a.success(c, func(dst []byte) []byte { return append(dst, "null"...) }, nil, nil)
}
