package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// option is one setting: its config-file key (dots nest in YAML), its flag,
// its default and its help. The environment variable is STRATA_ and the key
// upper-cased with dots as underscores.
type option struct {
	key   string
	flag  string
	def   any
	usage string
}

var options = []option{
	{"listen_addr", "listen-addr", "127.0.0.1:8430", "address to serve HTTP on"},
	{"data_dir", "data-dir", "./strata-data", "directory holding the write-ahead log and segments"},
	{"log.level", "log.level", "info", "log level: debug, info, warn, error"},
	{"log.format", "log.format", "text", "log format: text or json"},

	{"limits.max_body_bytes", "limits.max-body-bytes", byteSize(32 << 20), "largest write request body, in bytes (413 beyond)"},
	{"limits.max_series_per_request", "limits.max-series-per-request", 100_000, "most series one write request may carry (0 = no limit)"},
	{"limits.max_samples_per_request", "limits.max-samples-per-request", 1_000_000, "most samples one write request may carry (0 = no limit); a native histogram counts by its size as in Prometheus' engine, (bytes + 8) / 16: 11 plus one per two buckets or spans"},
	{"limits.max_labels_per_series", "limits.max-labels-per-series", 64, "most labels one series may have (0 = no limit)"},
	{"limits.max_label_name_length", "limits.max-label-name-length", 256, "longest label name, in bytes (0 = no limit)"},
	{"limits.max_label_value_length", "limits.max-label-value-length", 4096, "longest label value, in bytes (0 = no limit)"},
	{"limits.max_series", "limits.max-series", 0, "most series in the head; new series beyond it are refused (0 = no limit)"},
	{"limits.max_future_skew", "limits.max-future-skew", 10 * time.Minute, "refuse (400) a write with a sample more than this ahead of the server's clock (0 = no limit)"},
	{"limits.max_sample_age", "limits.max-sample-age", time.Duration(0), "refuse (400) a write with a sample older than this (0 = no limit: backfill of any age)"},

	{"ingest.name_validation", "ingest.name-validation", "utf8", "which metric and label names writes may use: utf8 (Prometheus 3's default: any valid UTF-8, queried as {\"http.server.duration\", \"service.name\"=\"api\"}) or legacy ([a-zA-Z_:][a-zA-Z0-9_:]*, as Prometheus 2)"},
	{"otlp.translation_strategy", "otlp.translation-strategy", "UnderscoreEscapingWithSuffixes", "how OTLP metric and attribute names become Prometheus names, as Prometheus' otlp.translation_strategy: UnderscoreEscapingWithSuffixes, UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes or NoTranslation"},
	{"otlp.promote_resource_attributes", "otlp.promote-resource-attributes", "", "comma-separated OTLP resource attributes copied onto every series of the resource as labels (a list in the config file)"},
	{"otlp.promote_all_resource_attributes", "otlp.promote-all-resource-attributes", false, "promote every OTLP resource attribute but those in otlp.ignore_resource_attributes"},
	{"otlp.ignore_resource_attributes", "otlp.ignore-resource-attributes", "", "comma-separated resource attributes otlp.promote_all_resource_attributes leaves out"},
	{"otlp.keep_identifying_resource_attributes", "otlp.keep-identifying-resource-attributes", false, "keep service.name, service.namespace and service.instance.id on target_info as well as in job and instance"},
	{"otlp.convert_histograms_to_nhcb", "otlp.convert-histograms-to-nhcb", false, "store OTLP explicit-bucket histograms as native histograms with custom buckets instead of classic _bucket/_sum/_count series"},
	{"otlp.promote_scope_metadata", "otlp.promote-scope-metadata", false, "add the otel_scope_name, otel_scope_version, otel_scope_schema_url and otel_scope_* attribute labels of the instrumentation scope"},

	{"head.chunk_samples", "head.chunk-samples", 120, "samples per in-memory chunk before it is closed"},
	{"head.max_samples", "head.max-samples", 20_000_000, "flush the head into segments once it holds this many samples, or 32 a series in the head where that is more (a flush costs mostly by series: 32 a series from 625,000 series on); a native histogram counts by its size as in Prometheus' engine, (bytes + 8) / 16: 11 plus one per two buckets or spans (strata_head_sample_cost shows the weight, strata_head_samples the plain count)"},

	{"runtime.gogc", "runtime.gogc", 100, "garbage collector target: the heap may grow this many percent over the live heap before a collection (Go's GOGC; lower trades GC CPU for memory: at 50, 8-13 % less RSS for 28-46 % more CPU per ingested sample at a million series, see docs/benchmarks.md); the GOGC environment variable, when set, wins"},
	{"runtime.memory_limit", "runtime.memory-limit", byteSize(0), "soft limit of the process' Go memory (Go's GOMEMLIMIT): nearing it, the collector runs more often whatever runtime.gogc says (0 = 90 % of the container's cgroup memory limit, none without one); the GOMEMLIMIT environment variable, when set, wins"},

	{"wal.sync", "wal.sync", "always", "when a write is acknowledged: always (after fsync, shared by concurrent writes) or interval (after write(2); fsync every wal.sync-interval)"},
	{"wal.sync_interval", "wal.sync-interval", time.Second, "fsync period in wal.sync=interval mode (a failed background fsync makes the log refuse writes with 503 until it has written the acknowledged records it may have lost again and fsynced them: see wal-format.md)"},
	{"wal.segment_size", "wal.segment-size", byteSize(128 << 20), "largest write-ahead log segment file, in bytes"},
	{"storage.exemplars.max", "storage.exemplars.max", 100_000, "most exemplars kept (remote write's and OTLP's), the most recent of all series, for /api/v1/query_exemplars; logged in the write-ahead log (0 = keep none; Prometheus' storage.exemplars.max-exemplars)"},
	{"storage.metadata.max_families", "storage.metadata.max-families", 50_000, "most metric families whose metadata (type, unit, help, from remote write) is kept for /api/v1/metadata; further families' metadata is dropped (0 = keep none)"},
	{"storage.wal.strict", "storage.wal.strict", false, "refuse to start on write-ahead log damage that is not a torn tail, instead of removing the damaged records from the segment (a copy goes to wal/quarantine) and starting with every good record"},
	{"storage.scrub.bytes_per_second", "storage.scrub.bytes-per-second", byteSize(segments.DefaultScrubBytesPerSecond), "rate of the background scrub that checks published segments' files against their CRC32C and quarantines a damaged one (0 = off)"},
	{"storage.scrub.pause", "storage.scrub.pause", segments.DefaultScrubPause, "wait between two passes of the background scrub over every segment"},

	{"storage.block_duration", "storage.block-duration", 2 * time.Hour, "time span of one flushed segment; a multiple of 2h or a divisor of it no shorter than 1m"},
	{"storage.maintenance_interval", "storage.maintenance-interval", 10 * time.Second, "how often to check whether to flush the head and compact segments"},
	{"storage.compaction_ranges", "storage.compaction-ranges", "2h,24h", "comma-separated windows segments are merged into; the first must equal storage.block-duration"},
	{"role", "role", "writer", "writer: ingest, store and upload (the default); reader: serve queries from the storage.object.url bucket alone (several writer prefixes: their URLs separated by commas), refuse writes (405), discover new segments by listing the bucket every storage.object.upload-interval"},
	{"storage.object.url", "storage.object.url", "", "S3-compatible bucket that final segments are uploaded to and read back from: s3://BUCKET/PREFIX?endpoint=HOST:PORT&region=REGION (credentials as the AWS SDKs read them: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the shared credentials file, the instance role; empty = no object storage)"},
	{"storage.object.upload_after", "storage.object.upload-after", time.Duration(0), "also upload a segment whose newest sample is older than this, before its day is compacted (0 = only day-compacted segments are final)"},
	{"storage.object.upload_interval", "storage.object.upload-interval", time.Minute, "pause between two upload rounds (after a failure, a backoff from 1s up to this)"},
	{"storage.object.cache_max_bytes", "storage.object.cache-max-bytes", byteSize(1 << 30), "bound of the local disk cache of the ranges queries read from bucket segments (16 KiB blocks); the indexes of open bucket segments take up to a quarter of it in memory"},
	{"storage.local.max_bytes", "storage.local.max-bytes", byteSize(0), "delete local copies of segments verified in the bucket, oldest first, while local segments take more bytes than this (0 = no bound); needs storage.object.url"},
	{"storage.object.abandoned_after", "storage.object.abandoned-after", 24 * time.Hour, "a writer deletes from its prefix the objects of an upload that never finished (no meta.json, the newest object older than this, the segment no longer on disk); the bucket is swept once per this (0 = never)"},
	{"storage.object.merge_after", "storage.object.merge-after", 30 * time.Minute, "a writer merges the raw segments of a day that only the bucket holds (late samples uploaded after the day left its disk) once the newest of them has been in the bucket this long, so that late data arriving round after round is not merged every round (0 = in the first round they are all there)"},
	{"storage.object.merge_max_delay", "storage.object.merge-max-delay", 6 * time.Hour, "a day's bucket-only raw segments are merged, too, once it has had several for this long: late data that never settles is merged at most once per this per day (0 = 8 × storage.object.merge-after)"},
	{"storage.object.delete_delay", "storage.object.delete-delay", 10 * time.Minute, "a writer deletes from the bucket a segment that another replaces (a compaction, a delete's rewrite, a merge), or whose data a delete removed all of, this long after the replacement is uploaded, so that readers that listed it before can finish reading it; keep it above a reader's storage.object.upload-interval plus query.timeout (0 = at once)"},
	{"storage.object.external_labels", "storage.object.external-labels", "", "a writer's external labels, name=value pairs separated by commas, written to its bucket prefix (writer.json): readers merging several writers deduplicate those whose labels differ only in query.replica_label (an HA pair); they are not added to the series"},
	{"query.replica_label", "query.replica-label", "replica", "external label (storage.object.external_labels) that tells the writers of an HA pair apart: a reader merging their prefixes answers each series from the first replica (by this label's value) where it has samples, and from the next in its gaps over 5 min (empty = no deduplication)"},
	{"storage.local.keep", "storage.local.keep", time.Duration(0), "delete local copies of segments verified in the bucket whose newest sample is older than this (0 = keep them); needs storage.object.url"},

	{"query.timeout", "query.timeout", 2 * time.Minute, "longest a query may run"},
	{"query.max_samples", "query.max-samples", 50_000_000, "most samples a query may hold in memory, and most a remote read may return; a native histogram counts by its size, as in Prometheus"},
	{"query.lookback_delta", "query.lookback-delta", 5 * time.Minute, "how far back an instant selector looks for a sample"},
	{"query.max_points_per_series", "query.max-points-per-series", 11_000, "most steps in a range query"},
	{"query.shards", "query.shards", 0, "most goroutines evaluating one range function (avg_over_time, rate and their kind, under aggregations) over a query's series, each a share of them (0 = the number of CPUs)"},
	{"query.max_series", "query.max-series", 500_000, "most distinct series one evaluation of a query may select (checked while it selects) and most series a query may return (0 = no limit)"},
	{"query.max_parallel", "query.max-parallel", 0, "most engine evaluations one range query runs at once for the parts the cache misses (0 = the number of CPUs; 1 = one evaluation per run of contiguous missing extents)"},
	{"query.max_parallel_total", "query.max-parallel-total", 0, "most such evaluations running at once over all queries (0 = the number of CPUs)"},
	{"query.max_select_bytes", "query.max-select-bytes", byteSize(128 << 20), "most bytes of selected series (label sets, chunk references, about 220 bytes of overhead each) the selectors of one query may hold together, counted while they select; beyond it the query fails with 422 naming this limit (0 = no limit)"},

	{"retention.raw", "retention.raw", 15 * 24 * time.Hour, "delete raw data older than this (0 = keep forever)"},
	{"retention.5m", "retention.5m", 90 * 24 * time.Hour, "delete 5-minute rollups older than this (0 = keep forever)"},
	{"retention.1h", "retention.1h", 2 * 365 * 24 * time.Hour, "delete 1-hour rollups older than this (0 = keep forever)"},
	{"retention.max_bytes", "retention.max-bytes", byteSize(0), "delete the oldest segments while all segments take more bytes than this (0 = no limit)"},
	{"retention.interval", "retention.interval", 5 * time.Minute, "how often retention and downsampling run"},
	{"downsample.enabled", "downsample.enabled", true, "roll raw data up into 5m and 1h resolutions"},
	{"downsample.raw_to_5m_after", "downsample.raw-to-5m-after", 40 * time.Hour, "roll raw data up into 5m buckets once it is this old"},
	{"downsample.5m_to_1h_after", "downsample.5m-to-1h-after", 240 * time.Hour, "roll 5m rollups up into 1h buckets once they are this old"},

	{"cache.enabled", "cache.enabled", true, "answer range and past instant queries through the result cache"},
	{"cache.max_bytes", "cache.max-bytes", byteSize(0), "result cache size in bytes (0 = 1/8 of the machine's memory, at least 32 MiB)"},
	{"cache.ttl", "cache.ttl", time.Hour, "how long a cached extent is fresh"},
	{"cache.grace", "cache.grace", 5 * time.Minute, "how long past its TTL an extent is still served (marked stale) while it is recomputed"},
	{"cache.freshness", "cache.freshness", time.Minute, "results for times newer than now minus this are never cached"},
	{"cache.split_interval", "cache.split-interval", 24 * time.Hour, "range queries are cached in extents of this length"},
	{"cache.warm_queries", "cache.warm-queries", "", "dashboard queries kept warm after start and after invalidations: range:step:query entries separated by ';' (e.g. 24h:1m:sum(rate(x[5m])))"},
	{"cache.warm_pause", "cache.warm-pause", time.Second, "pause between two warm-up evaluations"},
	{"cache.l2.redis_url", "cache.l2.redis-url", "", "Redis shared by instances that hold the same data (redis://[user:password@]host:6379/0, rediss:// for TLS): a second result-cache tier, shared invalidations and cross-instance stampede protection (empty = off)"},
	{"cache.l2.prefix", "cache.l2.prefix", "strata:", "prefix of the Redis keys and pub/sub channel of the L2 cache tier; instances sharing it must hold the same data"},
	{"cache.l2.timeout", "cache.l2.timeout", 100 * time.Millisecond, "longest one Redis operation of the L2 cache tier may take on a request's path; past it the request goes on without L2"},
	{"cache.l2.partner_lag", "cache.l2.partner-lag", time.Minute, "longest an instance sharing the L2 tier may take to receive a write this one received (remote-write lag); for that long after acknowledging a late write, this instance takes no L2 entry it touches (0 = off: entries computed by a lagging partner may be served)"},

	{"enable_admin_api", "enable-admin-api", false, "enable the /api/v1/admin/ endpoints (delete, flush, cache invalidation, retention, downsampling and compaction runs) and Go's profiler at /debug/pprof/"},
	{"shutdown_timeout", "shutdown-timeout", 30 * time.Second, "how long in-flight requests may take to finish on shutdown"},

	{"limits.max_concurrent_queries", "limits.max-concurrent-queries", 20, "most query requests (query, query_range, series, labels, remote read) running at once (0 = no limit)"},
	{"limits.max_queued_queries", "limits.max-queued-queries", 100, "most query requests waiting for a slot; beyond it they get 503 at once"},
	{"limits.max_concurrent_writes", "limits.max-concurrent-writes", 32, "most write requests running at once (0 = no limit)"},
	{"limits.max_queued_writes", "limits.max-queued-writes", 256, "most write requests waiting for a slot; beyond it they get 503 at once"},
	{"limits.queue_timeout", "limits.queue-timeout", 10 * time.Second, "longest a request waits for a query or write slot before 503 (0 = as long as the client waits)"},
	{"http.read_header_timeout", "http.read-header-timeout", 10 * time.Second, "longest a client may take to send a request's headers (0 = no limit)"},
	{"http.read_timeout", "http.read-timeout", 5 * time.Minute, "longest a client may take to send a whole request, headers and body (0 = no limit)"},
	{"http.idle_timeout", "http.idle-timeout", 2 * time.Minute, "how long an idle keep-alive connection stays open (0 = http.read_timeout)"},
	{"tls.cert_file", "tls.cert-file", "", "PEM certificate (chain) to serve HTTPS with; needs tls.key_file (empty = plain HTTP)"},
	{"tls.key_file", "tls.key-file", "", "PEM private key of tls.cert_file"},
	{"auth.read_token", "auth.read-token", "", "bearer token required by queries, metadata, status and /metrics (empty = open)"},
	{"auth.read_token_file", "auth.read-token-file", "", "file holding auth.read_token (instead of the value itself)"},
	{"auth.write_token", "auth.write-token", "", "bearer token required by the write endpoints (empty = open)"},
	{"auth.write_token_file", "auth.write-token-file", "", "file holding auth.write_token"},
	{"auth.admin_token", "auth.admin-token", "", "bearer token required by /api/v1/admin/ (which also needs enable_admin_api); it is accepted on read and write routes too (empty = open)"},
	{"auth.admin_token_file", "auth.admin-token-file", "", "file holding auth.admin_token"},
}

// byteSize is the type of the options that hold a size in bytes; they
// accept a plain number or one with a base-2 unit ("32MiB", "1GB" = 1 GiB),
// as Prometheus' size flags do.
type byteSize int64

// positiveOptions are the options for which zero (or less) means nothing
// sensible: a value there is refused at start rather than misread.
var positiveOptions = map[string]bool{
	"limits.max_body_bytes": true, "head.chunk_samples": true, "runtime.gogc": true, "head.max_samples": true,
	"wal.sync_interval": true, "wal.segment_size": true,
	"storage.block_duration": true, "storage.maintenance_interval": true, "storage.scrub.pause": true, "storage.object.upload_interval": true,
	"query.timeout": true, "query.max_samples": true, "query.lookback_delta": true, "query.max_points_per_series": true,
	"retention.interval": true, "downsample.raw_to_5m_after": true, "downsample.5m_to_1h_after": true,
	"cache.ttl": true, "cache.split_interval": true, "cache.l2.timeout": true, "shutdown_timeout": true,
}

// optionChoices are the options that take one word of a fixed set.
var optionChoices = map[string][]string{
	"log.level":                 {"debug", "info", "warn", "error"},
	"log.format":                {"text", "json"},
	"wal.sync":                  {"always", "interval"},
	"otlp.translation_strategy": ingest.OTLPTranslationStrategies,
	"ingest.name_validation":    {"utf8", "legacy"},
	"role":                      {"writer", "reader"},
}

// listOption splits a comma-separated list option ("a, b") into its
// trimmed, non-empty items.
func listOption(v *viper.Viper, key string) []string {
	var out []string
	for _, s := range strings.Split(v.GetString(key), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// optionValue is every option's flag: it keeps the text given on the
// command line, which is parsed by parseOption like a value from the
// environment or the config file, so the three sources accept exactly the
// same forms.
type optionValue struct {
	text string
	typ  string
}

func (v *optionValue) String() string     { return v.text }
func (v *optionValue) Set(s string) error { v.text = s; return nil }
func (v *optionValue) Type() string       { return v.typ }

// newFlagSet declares every option as a flag, plus --config, --version and
// --help.
func newFlagSet(stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("strata", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.String("config", "", "YAML config file (keys as in docs/operations.md; flags and STRATA_* environment variables override it)")
	fs.Bool("version", false, "print the version and exit")
	for _, o := range options {
		def := formatOption(o.def)
		f := fs.VarPF(&optionValue{text: def, typ: optionType(o.def)}, o.flag, "", o.usage)
		f.DefValue = def
		if _, ok := o.def.(bool); ok {
			f.NoOptDefVal = "true" // --enable-admin-api alone means true
		}
	}
	fs.Usage = func() { printUsage(stderr, fs) }
	return fs
}

// printUsage lists the flags grouped by the section of their key (the part
// before the first dot), defaults in the units a user would type.
func printUsage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: strata [flags]\n       strata healthcheck   (exits 0 when the configured server answers /readyz)\n\nStrata is a time-series metrics store. Every flag can also be set by the\nenvironment variable STRATA_<KEY> (e.g. STRATA_LISTEN_ADDR, STRATA_DATA_DIR)\nor in the --config file under its key (e.g. listen_addr, query.timeout).\nDurations take Prometheus' units (ms s m h d w y: 90s, 15d, 1w);\nsizes a plain number of bytes or a unit (KiB MiB GiB, or KB MB GB meaning the same).\n")
	var sections []string
	groups := map[string]*pflag.FlagSet{}
	add := func(section string, f *pflag.Flag) {
		g, ok := groups[section]
		if !ok {
			g = pflag.NewFlagSet(section, pflag.ContinueOnError)
			g.SortFlags = false
			groups[section] = g
			sections = append(sections, section)
		}
		g.AddFlag(f)
	}
	add("general", fs.Lookup("config"))
	add("general", fs.Lookup("version"))
	for _, o := range options {
		section := "general"
		if i := strings.IndexByte(o.key, '.'); i > 0 {
			section = o.key[:i]
		}
		add(section, fs.Lookup(o.flag))
	}
	for _, s := range sections {
		fmt.Fprintf(w, "\n%s:\n%s", strings.ToUpper(s[:1])+s[1:], groups[s].FlagUsagesWrapped(100))
	}
}

// optionText renders an option's value in effect as formatOption does.
func optionText(v *viper.Viper, o option) string {
	if _, ok := o.def.(byteSize); ok {
		return formatOption(byteSize(v.GetInt64(o.key)))
	}
	return formatOption(v.Get(o.key))
}

func optionType(def any) string {
	switch def.(type) {
	case time.Duration:
		return "duration"
	case byteSize:
		return "size"
	case int:
		return "int"
	case bool:
		return "bool"
	}
	return "string"
}

// formatOption renders a value in the form a user would type it: "15d",
// "32MiB".
func formatOption(val any) string {
	switch d := val.(type) {
	case time.Duration:
		if d%time.Millisecond == 0 {
			return model.Duration(d).String()
		}
		return d.String()
	case byteSize:
		return units.Base2Bytes(d).String()
	}
	return fmt.Sprint(val)
}

// parseOption reads one option's text in the form its default's type
// takes. The error says what form was expected.
func parseOption(o option, text string) (any, error) {
	text = strings.TrimSpace(text)
	var val any
	switch o.def.(type) {
	case string:
		if choices := optionChoices[o.key]; len(choices) > 0 && !slices.Contains(choices, text) {
			return nil, fmt.Errorf("must be one of %s", strings.Join(choices, ", "))
		}
		return text, nil
	case bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return nil, errors.New("must be true or false")
		}
		return b, nil
	case int:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || n < 0 {
			return nil, errors.New("must be a whole number, 0 or more")
		}
		val = int(n)
	case byteSize:
		n, err := parseBytes(text)
		if err != nil {
			return nil, errors.New("must be a size in bytes, 0 or more (e.g. 1048576, 512MiB, 2GiB)")
		}
		val = n
	case time.Duration:
		d, err := parseDuration(text)
		if err != nil {
			return nil, errors.New("must be a duration with a unit, 0 or more (e.g. 500ms, 30s, 5m, 2h, 15d, 1w, 1y)")
		}
		val = d
	default:
		return nil, fmt.Errorf("unsupported option type %T", o.def)
	}
	if positiveOptions[o.key] && reflect.ValueOf(val).Int() == 0 {
		return nil, errors.New("must be more than 0")
	}
	return val, nil
}

// parseDuration takes Prometheus' durations ("15d", "1w", "1h30m") and Go's
// ("1.5h", "250us"); negative ones are refused.
func parseDuration(s string) (time.Duration, error) {
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}

func parseBytes(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("negative size %q", s)
		}
		return n, nil
	}
	n, err := units.ParseBase2Bytes(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return int64(n), nil
}

func envName(key string) string {
	return "STRATA_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// loadConfig resolves every option from, in order of precedence, flags set
// on the command line, the environment, the config file and the defaults.
// Every value, whatever its source, is parsed and checked here, at start;
// the errors name the key, where the value came from and the form
// expected. The returned viper holds typed values (durations as
// time.Duration, sizes as int64).
func loadConfig(fs *pflag.FlagSet, environ func(string) (string, bool)) (*viper.Viper, error) {
	v := viper.New()
	path, _ := fs.GetString("config")
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config %s: %w", path, err)
		}
		known := map[string]bool{}
		for _, o := range options {
			known[o.key] = true
		}
		for _, k := range v.AllKeys() {
			if !known[k] {
				return nil, fmt.Errorf("config %s: unknown key %q", path, k)
			}
		}
	}
	var errs []error
	for _, o := range options {
		text, source := formatOption(o.def), "default"
		if f := fs.Lookup(o.flag); f.Changed {
			text, source = f.Value.String(), "flag --"+o.flag
		} else if val, ok := environ(envName(o.key)); ok {
			text, source = val, "environment "+envName(o.key)
		} else if path != "" && v.InConfig(o.key) {
			text, source = fileText(v.Get(o.key)), "config file "+path
		}
		val, err := parseOption(o, text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s = %q (from %s): %w", o.key, text, source, err))
			continue
		}
		v.Set(o.key, val)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration:\n  %w", joinLines(errs))
	}
	return v, nil
}

// fileText renders a value YAML decoded back into the text it was written
// as, so that a file value is parsed like the same text in a flag.
func fileText(val any) string {
	switch x := val.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		// A YAML list, for the list options: the same text as the flag's.
		items := make([]string, len(x))
		for i, it := range x {
			items[i] = fileText(it)
		}
		return strings.Join(items, ",")
	}
	return fmt.Sprint(val)
}

// joinLines joins errors one per line, indented under a heading.
func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

func newLogger(v *viper.Viper, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(v.GetString("log.level"))); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f := v.GetString("log.format"); f {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log.format %q: must be text or json", f)
	}
}

var errHelp = errors.New("help requested")

func osEnviron(k string) (string, bool) { return os.LookupEnv(k) }
