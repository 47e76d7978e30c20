#!/usr/bin/env bash
# A bounded soak: a fresh Strata on 127.0.0.1 under steady mixed ingest and
# query load (`loadtest mixed`), sampled every SAMPLE_EVERY seconds, to show
# whether memory, goroutines and latency stay flat.
#
#   bash loadtest/soak.sh [OUT_DIR]
#
# Settings (environment): DURATION (15m), RATE samples/s (20000), HOSTS
# (1000: 33,000 series), QPS (10), CACHE_BYTES (32 MiB), BLOCK (2m: short
# blocks, so that the head flushes several times within the run and the
# steady state, not the filling of one 2 h block, is what is measured),
# SAMPLE_EVERY (20), PORT (18777).
#
# OUT_DIR gets samples.tsv (one row per sample: seconds since start; RSS and
# its anonymous and file-backed parts from /proc/PID/status; Go heap in use
# and memory obtained from the OS; the result cache's bytes; head series and
# samples; segment bytes and count; goroutines), loadtest.txt (progress lines
# with each interval's latency, then the report), report.json and the
# server's log. The server runs under `timeout`, so it stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-$(mktemp -d /tmp/strata-soak.XXXX)}
mkdir -p "$OUT"
DURATION=${DURATION:-15m}
RATE=${RATE:-20000}
HOSTS=${HOSTS:-1000}
QPS=${QPS:-10}
CACHE_BYTES=${CACHE_BYTES:-33554432}
BLOCK=${BLOCK:-2m}
SAMPLE_EVERY=${SAMPLE_EVERY:-20}
PORT=${PORT:-18777}
URL="http://127.0.0.1:$PORT"
WORK=$(mktemp -d /tmp/strata-soak-work.XXXX)
SERVER_PID=""
SAMPLER_PID=""

cleanup() {
	[ -z "$SAMPLER_PID" ] || kill "$SAMPLER_PID" 2>/dev/null || true
	[ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/strata" ./cmd/strata
go build -o "$WORK/loadtest" ./loadtest

timeout 3h "$WORK/strata" --data-dir "$WORK/data" --listen-addr "127.0.0.1:$PORT" \
	--enable-admin-api --log.level warn \
	--storage.block-duration "$BLOCK" --storage.compaction-ranges "$BLOCK,1h" \
	--cache.max-bytes "$CACHE_BYTES" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
	curl -sf "$URL/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
# timeout is the parent; the server is its child.
STRATA_PID=$(pgrep -P "$SERVER_PID" || echo "$SERVER_PID")

metric() { awk -v k="$1" '$1==k{print $2; exit}' "$WORK/metrics"; }
status() { awk -v k="$1:" '$1==k{print $2*1024; exit}' "/proc/$STRATA_PID/status"; }
(
	printf 't\trss\trss_anon\trss_file\tgo_heap_inuse\tgo_sys\tcache_bytes\thead_series\thead_samples\tsegment_bytes\tsegments\tgoroutines\n'
	start=$(date +%s)
	while kill -0 "$STRATA_PID" 2>/dev/null; do
		curl -sf "$URL/metrics" >"$WORK/metrics" || break
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(($(date +%s) - start))" \
			"$(status VmRSS)" "$(status RssAnon)" "$(status RssFile)" \
			"$(metric go_memstats_heap_inuse_bytes)" "$(metric go_memstats_sys_bytes)" \
			"$(metric strata_cache_bytes)" "$(metric strata_head_series)" "$(metric strata_head_samples)" \
			"$(metric strata_segment_bytes)" "$(metric strata_segments)" "$(metric go_goroutines)"
		sleep "$SAMPLE_EVERY"
	done
) >"$OUT/samples.tsv" &
SAMPLER_PID=$!

"$WORK/loadtest" mixed --url "$URL" --duration "$DURATION" --rate "$RATE" --qps "$QPS" \
	--hosts "$HOSTS" --progress lines --progress-interval 60s --json "$OUT/report.json" \
	>"$OUT/loadtest.txt" 2>&1
kill "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""

start=$(date +%s.%N)
kill -TERM "$STRATA_PID"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
echo "server: exit status $rc, $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s after SIGTERM" | tee -a "$OUT/loadtest.txt"
echo "soak: results in $OUT"
[ "$rc" -eq 0 ]
