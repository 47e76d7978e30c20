#!/usr/bin/env bash
# Reproduces the reference run of loadtest/README.md: the TARGETS.md
# scenarios against a fresh Strata and a fresh Prometheus for each, on this
# machine. Servers listen on 127.0.0.1 only and are started under `timeout`,
# so they stop by themselves even if this script is interrupted.
#
#   bash loadtest/reference.sh [OUT_DIR]
#
# Needs: go, and /usr/bin/prometheus (Debian: apt-get install -y prometheus;
# the systemd service is not used). Text reports go to stdout, JSON reports
# to OUT_DIR (default: a new temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-$(mktemp -d /tmp/loadtest-reference.XXXX)}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/loadtest-work.XXXX)
STRATA_PORT=${STRATA_PORT:-18531}
PROM_PORT=${PROM_PORT:-19531}
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
SERVER_PID=""

go build -o "$WORK/strata" ./cmd/strata
go build -o "$WORK/loadtest" ./loadtest
printf 'global:\n  scrape_interval: 10s\nscrape_configs: []\n' > "$WORK/prometheus.yml"

stop_server() {
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=""
		cat "$WORK/$FLAVOUR.log" >>"$OUT/$FLAVOUR-server.log" # warnings and errors
	fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT

start_strata() { # data dir in $DATA
	DATA=$(mktemp -d "$WORK/strata-data.XXXX")
	timeout 1800 "$WORK/strata" --data-dir "$DATA" --listen-addr "127.0.0.1:$STRATA_PORT" \
		--enable-admin-api --log.level warn >"$WORK/strata.log" 2>&1 &
	SERVER_PID=$!
	URL="http://127.0.0.1:$STRATA_PORT"
	FLAVOUR=strata
}

start_prometheus() { # data dir in $DATA
	DATA=$(mktemp -d "$WORK/prom-data.XXXX")
	timeout 1800 "$PROMETHEUS" --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$DATA" \
		--web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver \
		--log.level=warn >"$WORK/prometheus.log" 2>&1 &
	SERVER_PID=$!
	URL="http://127.0.0.1:$PROM_PORT"
	FLAVOUR=prometheus
}

lt() { # name, command and flags
	local name=$1
	shift
	echo "== $FLAVOUR: $name"
	"$WORK/loadtest" "$@" --url "$URL" --flavour "$FLAVOUR" --target-data-dir "$DATA" \
		--progress lines --progress-interval 10s --json "$OUT/$FLAVOUR-$name.json"
	echo
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(go version); $("$PROMETHEUS" --version 2>&1 | head -1)"
echo

# Strata: ingest through remote write, flush, then the queries on that data.
start_strata
lt rw ingest --preset targets-rw --flush
lt query-cold query --preset targets-query-cold
lt query-warm query --preset targets-query-warm
lt dashboard-cold query --hosts 200 --families cpu --windows 1h,12h --nocache --concurrency 2 --duration 20s
lt dashboard-warm query --hosts 200 --families cpu --windows 1h,12h --distinct 200 --warmup --end now-5m --concurrency 2 --duration 20s
stop_server
start_strata
lt lp ingest --preset targets-lp
stop_server
start_strata
lt newseries ingest --preset targets-newseries
stop_server
start_strata
lt disk ingest --preset targets-disk
stop_server

# Prometheus: remote write only. --settle gives its head compaction (run
# every minute) time to cut blocks out of the 12 h backfilled.
if [ -x "$PROMETHEUS" ]; then
	start_prometheus
	lt rw ingest --preset targets-rw --settle 75s
	lt query-cold query --preset targets-query-cold
	lt dashboard-cold query --hosts 200 --families cpu --windows 1h,12h --nocache --concurrency 2 --duration 20s
	stop_server
	start_prometheus
	lt newseries ingest --preset targets-newseries
	stop_server
	start_prometheus
	lt disk ingest --preset targets-disk --flush=false --settle 75s
	stop_server
else
	echo "no $PROMETHEUS: Prometheus runs skipped"
fi
echo "JSON reports in $OUT"
