package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/strata-tsdb/strata/api"
	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/query"
)

// run parses args, starts the server and serves until ctx is done. When
// started is not nil it is called with the server's address once it listens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ func(string) (string, bool), started func(addr string)) error {
	fs := newFlagSet(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return errHelp
		}
		return err
	}
	if ok, _ := fs.GetBool("version"); ok {
		b := buildInfo()
		fmt.Fprintf(stdout, "strata %s (revision %s, %s)\n", b.Version, b.Revision, b.GoVersion)
		return nil
	}
	v, err := loadConfig(fs, environ)
	if err != nil {
		return err
	}
	logger, err := newLogger(v, stderr)
	if err != nil {
		return err
	}
	srv, err := newServer(logger, v)
	if err != nil {
		return err
	}
	return srv.serve(ctx, stdout, started)
}

// server is Strata wired together.
type server struct {
	logger   *slog.Logger
	v        *viper.Viper
	reg      *prometheus.Registry
	head     *buffer.Head
	api      *api.API
	listener net.Listener
}

func newServer(logger *slog.Logger, v *viper.Viper) (*server, error) {
	dataDir := v.GetString("data_dir")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	headOpts := buffer.DefaultOptions()
	headOpts.ChunkSamples = v.GetInt("head.chunk_samples")
	headOpts.MaxSeries = v.GetInt("limits.max_series")
	head, err := buffer.NewHead(headOpts, nil)
	if err != nil {
		return nil, err
	}
	registerHeadMetrics(reg, head)

	queryable := query.NewQueryable(head)
	engine, err := query.NewEngine(logger, reg, queryable, query.Options{
		Timeout:            v.GetDuration("query.timeout"),
		MaxSamples:         v.GetInt("query.max_samples"),
		LookbackDelta:      v.GetDuration("query.lookback_delta"),
		MaxPointsPerSeries: v.GetInt("query.max_points_per_series"),
	})
	if err != nil {
		return nil, err
	}
	a, err := api.New(logger, reg, reg, head, engine, queryable, api.Options{
		MaxBodyBytes: v.GetInt64("limits.max_body_bytes"),
		IngestLimits: ingest.Limits{
			MaxSeriesPerRequest:  v.GetInt("limits.max_series_per_request"),
			MaxSamplesPerRequest: v.GetInt("limits.max_samples_per_request"),
			MaxLabelsPerSeries:   v.GetInt("limits.max_labels_per_series"),
			MaxLabelNameLength:   v.GetInt("limits.max_label_name_length"),
			MaxLabelValueLength:  v.GetInt("limits.max_label_value_length"),
		},
		Build: buildInfo(),
	})
	if err != nil {
		return nil, err
	}
	return &server{logger: logger, v: v, reg: reg, head: head, api: a}, nil
}

func registerHeadMetrics(reg prometheus.Registerer, h *buffer.Head) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_head_series", Help: "Series in the head."},
			func() float64 { return float64(h.NumSeries()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strata_head_samples_appended_total", Help: "Samples appended to the head."},
			func() float64 { return float64(h.NumSamples()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strata_head_out_of_order_samples_total", Help: "Samples appended out of time order."},
			func() float64 { return float64(h.NumOutOfOrder()) }),
	)
}

// serve listens, serves until ctx is done, then shuts down gracefully.
func (s *server) serve(ctx context.Context, stdout io.Writer, started func(string)) error {
	addr := s.v.GetString("listen_addr")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.listener = ln
	hs := &http.Server{
		Handler:           s.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	url := "http://" + ln.Addr().String()
	s.logger.Info("strata started", "version", version, "listen", url, "data_dir", s.v.GetString("data_dir"))
	fmt.Fprintf(stdout, "Strata is listening on %s/ (dashboard), push to %s/api/v1/write\n", url, url)
	if started != nil {
		started(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.logger.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), s.v.GetDuration("shutdown_timeout"))
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		s.logger.Warn("in-flight requests did not finish in time", "err", err)
	}
	s.logger.Info("stopped")
	return nil
}
