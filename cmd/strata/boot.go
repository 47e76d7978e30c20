package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/spf13/viper"

	"github.com/strata-tsdb/strata/api"
	"github.com/strata-tsdb/strata/buffer/wal"
)

// listener is the HTTP server, started before the storage is opened so
// that /healthz, /readyz ("replaying n%") and /api/v1/status/walreplay
// answer while the write-ahead log is replayed. Every other path answers
// 503 with Retry-After until serveAPI hands it the API.
type listener struct {
	ln       net.Listener
	hs       *http.Server
	url      string
	errc     chan error                   // the result of Serve
	api      atomic.Pointer[http.Handler] // nil until the API is up
	replay   atomic.Pointer[wal.Progress] // the replay's progress
	handlers atomic.Int64                 // requests being served
}

// listenHookKey is the context key of a func(addr string) that run calls
// as soon as it listens, before the storage is open (tests watch the
// replay through it); started is called only once the API serves.
type listenHookKey struct{}

// replayHookKey is the context key of a func(wal.Progress) called with
// each replay progress report, once the server shows it (tests hold the
// replay at a known point with it).
type replayHookKey struct{}

func listen(logger *slog.Logger, v *viper.Viper, tlsConfig *tls.Config) (*listener, error) {
	addr := v.GetString("listen_addr")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if tlsConfig == nil {
		// A range answer leaves in one write (api/joinwrites.go).
		ln = api.JoinWrites(ln)
	}
	l := &listener{ln: ln, errc: make(chan error, 1)}
	l.hs = &http.Server{
		ConnContext: api.ConnContext,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			l.handlers.Add(1)
			defer l.handlers.Add(-1)
			if h := l.api.Load(); h != nil {
				(*h).ServeHTTP(w, r)
				return
			}
			l.serveBoot(w, r)
		}),
		ReadHeaderTimeout: v.GetDuration("http.read_header_timeout"),
		ReadTimeout:       v.GetDuration("http.read_timeout"),
		IdleTimeout:       v.GetDuration("http.idle_timeout"),
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	l.url = scheme + "://" + ln.Addr().String()
	go func() {
		if tlsConfig != nil {
			l.errc <- l.hs.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			return
		}
		l.errc <- l.hs.Serve(ln)
	}()
	return l, nil
}

// onReplay records a replay progress report.
func (l *listener) onReplay(ctx context.Context) func(wal.Progress) {
	hook, _ := ctx.Value(replayHookKey{}).(func(wal.Progress))
	return func(p wal.Progress) {
		l.replay.Store(&p)
		if hook != nil {
			hook(p)
		}
	}
}

// replayStatus is the replay's progress in the API's shape.
func (l *listener) replayStatus() api.WALReplay {
	return walReplayStatus(l.replay.Load())
}

func walReplayStatus(p *wal.Progress) api.WALReplay {
	switch {
	case p == nil: // not started
		return api.WALReplay{}
	case p.First < 0: // no log to replay
		return api.WALReplay{Percent: 100}
	}
	return api.WALReplay{Min: p.First, Max: p.Last, Current: max(p.Current, p.First), Percent: p.Percent()}
}

// serveBoot answers while the storage opens.
func (l *listener) serveBoot(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		_, _ = io.WriteString(w, "ok\n")
	case "/readyz":
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: replaying %d%%\n", l.replayStatus().Percent)
	case "/api/v1/status/walreplay":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(api.WALReplayBody(l.replayStatus()))
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, `{"status":"error","errorType":"unavailable","error":"not ready: replaying the write-ahead log (%d%%)"}`, l.replayStatus().Percent)
	}
}

// close stops the listener when the server fails to start.
func (l *listener) close() error {
	err := l.hs.Close()
	<-l.errc
	return err
}
