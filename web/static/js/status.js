// The status page: how the server and the store are doing, from the
// server's own status endpoints and /metrics, refreshed every few seconds.

import {h, replace, errorBox} from './dom.js';
import * as api from './api.js';
import * as fmt from './format.js';
import {parseDuration} from './timerange.js';

// The page reads everything every 5 s, or as often as ?refresh= says.
const REFRESH_MS = 5000;

// RATE_WINDOW_MS is how far back the ingest rate looks: writers that push
// in batches every few seconds would otherwise show 0 between batches and
// twice the true rate at the next one.
const RATE_WINDOW_MS = 60_000;

// RATE_MIN_SPAN_MS is the shortest span a rate is shown over: over one
// second between two reads, a writer that pushes every few seconds reads 0.
const RATE_MIN_SPAN_MS = 5_000;

// Rate turns reads of a counter into a rate over the reads of the last
// RATE_WINDOW_MS; a counter that goes down (a restart) starts it afresh.
export class Rate {
  constructor(windowMs = RATE_WINDOW_MS, minSpanMs = RATE_MIN_SPAN_MS) {
    this.windowMs = windowMs;
    this.minSpanMs = minSpanMs;
    this.reads = [];
  }

  // add records a read of total at time at (ms) and returns the rate per
  // second, or null until the reads span minSpanMs.
  add(total, at) {
    const last = this.reads[this.reads.length - 1];
    if (last && total < last.total) this.reads = [];
    this.reads.push({total, at});
    while (this.reads.length > 2 && at - this.reads[1].at >= this.windowMs) this.reads.shift();
    const first = this.reads[0];
    if (at - first.at < this.minSpanMs) return null;
    return (total - first.total) / ((at - first.at) / 1000);
  }
}

// metricSum adds up every sample of one metric in Prometheus text format,
// and returns them by the value of label (when given) too.
export function metricSum(text, name, label) {
  let total = 0, found = false;
  const by = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (!Number.isFinite(v)) continue;
    total += v;
    found = true;
    const m = label && line.match(new RegExp(`[{,]${label}="([^"]*)"`));
    if (m) by[m[1]] = (by[m[1]] || 0) + v;
  }
  return found ? {total, by} : null;
}

// byResolution groups segments by their resolution in ms (0 = raw).
export function byResolution(segments) {
  const groups = new Map();
  for (const s of segments || []) {
    let g = groups.get(s.resolution);
    if (!g) groups.set(s.resolution, g = {resolution: s.resolution, count: 0, series: 0, samples: 0, bytes: 0, minTime: Infinity, maxTime: -Infinity});
    g.count++;
    g.series = Math.max(g.series, s.series);
    g.samples += s.samples;
    g.bytes += s.bytes;
    g.minTime = Math.min(g.minTime, s.minTime);
    g.maxTime = Math.max(g.maxTime, s.maxTime);
  }
  return [...groups.values()].sort((a, b) => a.resolution - b.resolution);
}

const resolutionName = ms => (ms ? `${fmt.duration(ms / 1000).replace(' ', '')} rollup` : 'raw');

// stats renders a definition list; each value carries data-stat=key so a
// test (or a person with devtools) finds it.
function stats(rows) {
  return h('dl.stats', rows.filter(Boolean).map(([key, label, value, note]) => [
    h('dt', label),
    h('dd', {dataset: {stat: key}, title: note || ''}, value ?? '—'),
  ]));
}

function card(title, id, ...body) {
  return h('section.card', {id}, h('h2', title), ...body);
}

export function statusPage(root) {
  const updated = h('span.muted');
  const grid = h('div.status-grid');
  const configFilter = h('input.filter', {type: 'search', placeholder: 'Filter', 'aria-label': 'Filter configuration'});
  const configBody = h('div');
  replace(root,
    h('div.page-head', h('h1', 'Status'), updated),
    grid,
    h('section.card#config', h('div.card-head', h('h2', 'Configuration in effect'), configFilter), configBody));

  const ingestRate = new Rate();
  const every = parseDuration(new URLSearchParams(location.search).get('refresh')) * 1000 || REFRESH_MS;
  let flags = {};
  configFilter.addEventListener('input', () => renderConfig());

  function renderConfig() {
    const q = configFilter.value.trim().toLowerCase();
    const keys = Object.keys(flags).sort().filter(k => k.includes(q) || String(flags[k]).toLowerCase().includes(q));
    replace(configBody, h('table.config', h('tbody', keys.map(k => h('tr', h('td.key', k), h('td.value', flags[k]))))));
  }

  async function refresh() {
    const [build, runtime, tsdb, flagsR, cache, metrics] = await Promise.allSettled([
      api.get('/api/v1/status/buildinfo'),
      api.get('/api/v1/status/runtimeinfo'),
      api.get('/api/v1/status/tsdb'),
      api.get('/api/v1/status/flags'),
      api.get('/api/v1/status/cache'),
      api.text('/metrics'),
    ]);
    const ok = r => (r.status === 'fulfilled' ? r.value.data ?? r.value : null);
    const b = ok(build), rt = ok(runtime), t = ok(tsdb), c = ok(cache), m = ok(metrics);
    flags = ok(flagsR) || flags;

    const ingest = m ? metricSum(m, 'strata_ingest_samples_total', 'format') : null;
    const rate = ingest ? ingestRate.add(ingest.total, performance.now()) : null;
    const counter = name => (m ? metricSum(m, name)?.total ?? 0 : null);
    const lastRetention = m ? metricSum(m, 'strata_retention_last_run_timestamp_seconds')?.total : null;

    const failed = [build, runtime, tsdb, flagsR].find(r => r.status === 'rejected');
    const head = t?.headStats || {};
    replace(grid,
      failed ? errorBox(failed.reason) : null,
      card('Server', 'server', stats([
        ['version', 'Version', b?.version || '—'],
        ['revision', 'Revision', b?.revision ? b.revision.slice(0, 12) : '—'],
        ['go-version', 'Go', b?.goVersion],
        ['started', 'Started', rt ? fmt.time(Date.parse(rt.startTime)) : null],
        ['uptime', 'Uptime', rt ? fmt.duration(rt.uptimeSeconds) : null],
        ['goroutines', 'Goroutines', rt ? fmt.num(rt.goroutineCount) : null],
      ])),
      card('Ingest', 'ingest', stats([
        ['ingest-rate', 'Rate', rate == null ? (ingest ? 'measuring…' : null) : `${fmt.num(Math.round(rate * 10) / 10)} samples/s`,
          'Samples accepted per second over the last minute'],
        ['ingest-total', 'Samples accepted', ingest ? fmt.num(ingest.total) : null],
        ...Object.entries(ingest?.by || {}).sort().map(([f, v]) => [`ingest-${f}`, `  via ${f}`, fmt.num(v)]),
        ['ingest-rejected', 'Write requests refused', fmt.num(counter('strata_ingest_rejected_requests_total'))],
      ])),
      card('Storage', 'storage', t ? stats([
        ['head-series', 'Head series', fmt.num(head.numSeries)],
        ['head-samples', 'Head samples', fmt.num(head.numSamples)],
        ['head-from', 'Head from', head.maxTime ? fmt.time(head.minTime) : 'empty'],
        ['head-to', 'Head to', head.maxTime ? fmt.time(head.maxTime) : 'empty'],
        ['wal-bytes', 'WAL size', fmt.bytes(t.walBytes)],
        ['segment-count', 'Segments', fmt.num((t.segments || []).length)],
        ['segment-bytes', 'Segment size', fmt.bytes(t.segmentBytes)],
        ['segment-samples', 'Segment samples', fmt.num(t.segmentSamples)],
        ['bytes-per-sample', 'Bytes per sample', t.segmentSamples ? fmt.num(Math.round(t.bytesPerSample * 100) / 100) : '—'],
      ]) : h('p.muted', '—')),
      card('Queries', 'queries', m ? queryStats(m) : h('p.muted', '—')),
      card('Result cache', 'cache', cacheStats(c, cache)),
      card('Retention', 'retention', retention(flags, lastRetention)),
      card('Segments by resolution', 'segments', segmentTable(t)),
    );
    renderConfig();
    updated.textContent = `Updated ${fmt.time(Date.now())} · every ${every / 1000} s`;
    updated.dataset.reads = String(Number(updated.dataset.reads || 0) + 1);
  }

  let timer = null;
  const loop = async () => {
    try {
      await refresh();
    } finally {
      timer = setTimeout(loop, document.hidden ? every * 3 : every);
    }
  };
  loop();
  addEventListener('pagehide', () => clearTimeout(timer));
}

// queryStats reads the query and HTTP figures from /metrics.
function queryStats(m) {
  const queries = metricSum(m, 'strata_queries_total', 'outcome');
  const sum = metricSum(m, 'strata_query_duration_seconds_sum')?.total;
  const count = metricSum(m, 'strata_query_duration_seconds_count')?.total;
  const requests = metricSum(m, 'strata_http_requests_total', 'code');
  const serverErrors = Object.entries(requests?.by || {}).filter(([code]) => code.startsWith('5')).reduce((n, [, v]) => n + v, 0);
  return stats([
    ['queries', 'Queries run', fmt.num(queries?.total ?? 0)],
    ['queries-failed', 'Queries failed', fmt.num((queries?.total ?? 0) - (queries?.by.success ?? 0))],
    ['query-avg', 'Mean query time', count ? fmt.ms((1000 * sum) / count) : '—'],
    ['http-requests', 'HTTP requests', fmt.num(requests?.total ?? 0)],
    ['http-5xx', 'Server errors (5xx)', fmt.num(serverErrors)],
  ]);
}

function cacheStats(c, res) {
  const missing = res.status === 'rejected';
  const n = k => (c && typeof c[k] === 'number' ? c[k] : null);
  const ratio = n('hitRatio') ?? (n('hits') != null && n('hits') + n('misses') > 0 ? n('hits') / (n('hits') + n('misses')) : null);
  return [
    stats([
      ['cache-entries', 'Entries', n('entries') == null ? '—' : fmt.num(n('entries'))],
      ['cache-bytes', 'Size', n('bytes') == null ? '—' : fmt.bytes(n('bytes')) + (n('maxBytes') ? ` of ${fmt.bytes(n('maxBytes'))}` : '')],
      ['cache-hit-ratio', 'Hit ratio', ratio == null ? '—' : `${fmt.num(Math.round(ratio * 1000) / 10)} %`],
      ['cache-hits', 'Hits / misses', n('hits') == null ? '—' : `${fmt.num(n('hits'))} / ${fmt.num(n('misses') ?? 0)}`],
      n('partialHits') != null && ['cache-partial', 'Partial hits', fmt.num(n('partialHits'))],
      ['cache-stale', 'Stale answers served', (n('staleServed') ?? n('stale')) == null ? '—' : fmt.num(n('staleServed') ?? n('stale'))],
      ['cache-invalidations', 'Invalidations', n('invalidations') == null ? '—' : fmt.num(n('invalidations'))],
    ]),
    missing ? h('p.muted.note', res.reason?.status === 404 ? 'This server reports no result cache.' : `Cache status unavailable: ${res.reason?.message}`) : null,
  ];
}

function segmentTable(t) {
  if (!t) return h('p.muted', '—');
  const groups = byResolution(t.segments);
  if (!groups.length) return h('p.muted', 'No segments yet: everything is still in the head.');
  return h('table.segments',
    h('thead', h('tr', ['Resolution', 'Segments', 'Series', 'Samples', 'Size', 'Bytes/sample', 'From', 'To'].map(c => h('th', c)))),
    h('tbody', groups.map(g => h('tr', {dataset: {resolution: String(g.resolution)}},
      h('td', resolutionName(g.resolution)),
      h('td.num', fmt.num(g.count)),
      h('td.num', {title: 'most series in one segment'}, fmt.num(g.series)),
      h('td.num', fmt.num(g.samples)),
      h('td.num', fmt.bytes(g.bytes)),
      h('td.num', g.samples ? fmt.num(Math.round((g.bytes / g.samples) * 100) / 100) : '—'),
      h('td.time', fmt.time(g.minTime)),
      h('td.time', fmt.time(g.maxTime))))));
}

// goDuration reads a Go duration as the flags endpoint writes it
// ("360h0m0s") into seconds, or null.
export function goDuration(s) {
  const m = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:([\d.]+)s)?$/.exec(s || '');
  if (!m || s === '') return null;
  return (Number(m[1] || 0) * 3600) + (Number(m[2] || 0) * 60) + Number(m[3] || 0);
}

const RETENTION_NAMES = {raw: 'Raw data', '5m': '5-minute rollups', '1h': '1-hour rollups', max_bytes: 'Disk limit', interval: 'Runs every'};

// retention shows the retention.* settings the flags endpoint reports, and
// when the policy last ran and runs next (from /metrics).
function retention(flags, lastRun) {
  const order = Object.keys(RETENTION_NAMES);
  const rank = k => (order.includes(k.slice(10)) ? order.indexOf(k.slice(10)) : order.length);
  const keys = Object.keys(flags).filter(k => k.startsWith('retention.')).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  if (!keys.length) return h('p.muted', {dataset: {stat: 'retention'}}, 'No retention policy is reported: data is kept until deleted.');
  const rows = keys.map(k => {
    const name = k.slice('retention.'.length);
    const raw = flags[k];
    const sec = goDuration(raw);
    let shown = raw;
    if (name === 'max_bytes') shown = Number(raw) > 0 ? fmt.bytes(Number(raw)) : 'no limit';
    else if (sec === 0) shown = 'kept forever';
    else if (sec != null) shown = name === 'interval' ? fmt.duration(sec) : `kept ${fmt.duration(sec)}`;
    return [k, RETENTION_NAMES[name] || name, shown, `${k} = ${raw}`];
  });
  const every = goDuration(flags['retention.interval']);
  if (lastRun > 0) {
    rows.push(['retention-last-run', 'Last run', fmt.time(lastRun * 1000)]);
    if (every > 0) rows.push(['retention-next-run', 'Next run', fmt.time((lastRun + every) * 1000)]);
  } else if (lastRun === 0 || lastRun == null) {
    rows.push(['retention-last-run', 'Last run', every > 0 ? `not yet (first within ${fmt.duration(every)})` : 'not yet']);
  }
  return stats(rows);
}
