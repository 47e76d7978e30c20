package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/pflag"
)

// healthcheck implements `strata healthcheck`, the container's HEALTHCHECK:
// it reads the same configuration as the server (flags, STRATA_*
// environment, --config), GETs /readyz on the listen address with a short
// timeout and returns the exit status: 0 when ready, 1 otherwise.
func healthcheck(args []string, stdout, stderr io.Writer, environ func(string) (string, bool)) int {
	fs := newFlagSet(stderr)
	fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: strata healthcheck [flags]\n\nExits 0 when the server configured by the same flags, STRATA_* variables\nor --config file answers /readyz with 200, 1 otherwise.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 1
	}
	v, err := loadConfig(fs, environ)
	if err != nil {
		fmt.Fprintln(stderr, "strata healthcheck:", err)
		return 1
	}
	tokens, err := authTokens(v)
	if err != nil {
		fmt.Fprintln(stderr, "strata healthcheck:", err)
		return 1
	}
	timeout, _ := fs.GetDuration("timeout")
	useTLS := v.GetString("tls.cert_file") != ""
	url, err := readyURL(v.GetString("listen_addr"), useTLS)
	if err != nil {
		fmt.Fprintln(stderr, "strata healthcheck:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "strata healthcheck:", err)
		return 1
	}
	// /readyz is open; the read token is sent anyway for proxies in front
	// that guard every path.
	if tokens.Read != "" {
		req.Header.Set("Authorization", "Bearer "+tokens.Read)
	}
	client := &http.Client{Transport: &http.Transport{
		// The probe talks to its own process over loopback, where the
		// certificate's names (the public ones) cannot match.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		Proxy:           nil,
	}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "strata healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "strata healthcheck: %s: %s %s\n", url, resp.Status, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s", url, body)
	return 0
}

// readyURL is the /readyz URL of a server listening on addr: a wildcard or
// empty host is reached on loopback.
func readyURL(addr string, useTLS bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen_addr %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/readyz", nil
}
