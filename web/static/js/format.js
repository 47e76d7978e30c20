// Formatting of numbers, sizes, durations, times and label sets.

const nf = new Intl.NumberFormat(undefined, {maximumFractionDigits: 2});
const nfInt = new Intl.NumberFormat(undefined, {maximumFractionDigits: 0});

// num formats a count with digit grouping: 12,345.
export function num(v) {
  if (v == null || Number.isNaN(v)) return '—';
  return Number.isInteger(v) ? nfInt.format(v) : nf.format(v);
}

// value formats a sample value rounded to five significant digits (whole
// numbers in full): 21.25, 0.33333, 1073745920, 1.2346e-7. The exact value
// is what exact() writes.
export function value(v) {
  if (v == null) return '—';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  const a = Math.abs(v);
  if (v !== 0 && (a >= 1e15 || a < 1e-4)) return Number(v.toExponential(4)).toExponential();
  if (Number.isInteger(v)) return String(v);
  const decimals = Math.min(Math.max(0, 5 - Math.ceil(Math.log10(a))), 8);
  return String(Number(v.toFixed(decimals)));
}

// exact writes a sample value as the API does.
export function exact(v) {
  if (v == null) return '—';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  return String(v);
}

const SI = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];

// short formats an axis value: 1.5k, 2M, 0.25.
export function short(v) {
  if (v == null || !Number.isFinite(v)) return value(v);
  const a = Math.abs(v);
  for (const [n, s] of SI) if (a >= n) return trim(v / n) + s;
  if (a !== 0 && a < 0.001) return v.toExponential(1);
  return trim(v);
}

function trim(v) {
  return String(Math.round(v * 1000) / 1000);
}

// UNITS are the units a panel's values may be shown in: the axis, the
// tooltip and the legend format values with formatter(unit).
export const UNITS = {
  '': 'Auto',
  short: 'Short (1.5k)',
  bytes: 'Bytes (IEC)',
  decbytes: 'Bytes (SI)',
  seconds: 'Seconds',
  ms: 'Milliseconds',
  percent: 'Percent (0-100)',
  percentunit: 'Percent (0.0-1.0)',
  none: 'None',
};

// formatter returns the function that writes a value in unit:
// f(v, incr, max). On an axis, incr is the step between ticks and max the
// largest tick: all ticks share one scale (MiB, k, ms …) and the decimals
// the step needs, so no two read the same.
export function formatter(unit, axis = false) {
  const f = {
    short: (v, incr, max) => scaled(v, incr, max, 1000, ['', 'k', 'M', 'G', 'T', 'P'], ''),
    bytes: (v, incr, max) => scaled(v, incr, max, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']),
    decbytes: (v, incr, max) => scaled(v, incr, max, 1000, ['B', 'kB', 'MB', 'GB', 'TB', 'PB']),
    seconds: secondsUnit,
    ms: (v, incr, max) => secondsUnit(v / 1000, incr && incr / 1000, max && max / 1000),
    percent: (v, incr) => `${fixed(v, incr)}%`,
    percentunit: (v, incr) => `${fixed(v * 100, incr && incr * 100)}%`,
    none: v => value(v),
  }[unit || (axis ? 'short' : 'none')];
  return (v, incr, max) => (v == null || !Number.isFinite(v) ? value(v) : f(v, incr, max));
}

const whole = x => Math.abs(x - Math.round(x)) < 1e-6 * Math.max(1, Math.abs(x));

// fixed writes v with the decimals a step of incr needs (or up to three
// without one).
function fixed(v, incr) {
  if (!(incr > 0)) return trim(v);
  let d = Math.max(0, Math.ceil(-Math.log10(incr) - 1e-9));
  if (!whole(incr * 10 ** d) && whole(incr * 10 ** (d + 1))) d++;
  return v.toFixed(Math.min(d, 12));
}

// exactIn reports whether a tick step reads exactly, with two decimals at
// most, in a unit of n: 256 MiB is 0.25 GiB, but 256 KiB is no round
// fraction of a GiB, so those ticks are written in MiB.
const exactIn = (incr, n) => !(incr > 0) || whole((incr / n) * 100);

function scaled(v, incr, max, base, units, sep = ' ') {
  let i = 0;
  const a = Math.abs(max ?? v);
  while (a >= base ** (i + 1) && i < units.length - 1) i++;
  while (i > 0 && !exactIn(incr, base ** i)) i--;
  const n = base ** i;
  return `${fixed(v / n, incr && incr / n)}${units[i] ? sep + units[i] : ''}`;
}

const TIME_UNITS = [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's'], [1e-3, 'ms'], [1e-6, 'µs']];

function secondsUnit(v, incr, max) {
  const a = Math.abs(max ?? v);
  if (a === 0 && !incr) return '0 s';
  let i = TIME_UNITS.findIndex(([n]) => a >= n);
  if (i < 0) i = TIME_UNITS.length - 1;
  while (i < TIME_UNITS.length - 1 && !exactIn(incr, TIME_UNITS[i][0])) i++;
  const [n, u] = TIME_UNITS[i];
  return `${fixed(v / n, incr && incr / n)} ${u}`;
}

// TIME_INCRS are tick steps in seconds that read well in s, min, h and d.
export const TIME_INCRS = [1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000, 31536000];

// bytes formats a size in binary units: 1.5 MiB.
export function bytes(v) {
  if (v == null || Number.isNaN(v)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i ? nf.format(v) : v} ${units[i]}`;
}

// duration formats seconds compactly: 3d 4h, 12m 5s, 850 ms.
export function duration(sec) {
  if (sec == null || Number.isNaN(sec)) return '—';
  if (sec < 1) return `${Math.round(sec * 1000)} ms`;
  const parts = [];
  for (const [n, s] of [[86400, 'd'], [3600, 'h'], [60, 'm'], [1, 's']]) {
    if (sec >= n) { parts.push(`${Math.floor(sec / n)}${s}`); sec %= n; }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

// ms formats an elapsed time in milliseconds: 12 ms, 1.4 s.
export function ms(v) {
  return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`;
}

// hour12 says whether the browser's locale uses a 12-hour clock; the chart
// axes follow it too.
export const hour12 = Boolean(new Intl.DateTimeFormat(undefined, {hour: 'numeric'}).resolvedOptions().hour12);

const dtf = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});

const dtfUTC = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', timeZone: 'UTC',
});

// time formats a Unix time in milliseconds in the browser's zone, or in
// UTC (with a "UTC" suffix) when utc is set.
export function time(msec, utc = false) {
  if (msec == null || Number.isNaN(msec)) return '—';
  return utc ? `${dtfUTC.format(new Date(msec))} UTC` : dtf.format(new Date(msec));
}

// legacyMetric and legacyLabel tell the names PromQL takes unquoted;
// any other UTF-8 name is written in quotes, inside the braces for a
// metric name: {"http.server.duration", "service.name"="api"}.
export const legacyMetric = s => /^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(s);
export const legacyLabel = s => /^[a-zA-Z_][a-zA-Z0-9_]*$/.test(s);

// labelName renders a label name as PromQL takes it.
export const labelName = s => (legacyLabel(s) ? s : JSON.stringify(s));

// selector renders a metric name and label matchers ({name: value}, for
// equality) as a PromQL selector, quoting names that need it.
export function selector(name, matchers = {}) {
  const pairs = Object.keys(matchers).sort().map(k => `${labelName(k)}=${JSON.stringify(matchers[k])}`);
  if (name && !legacyMetric(name)) return `{${[JSON.stringify(name), ...pairs].join(', ')}}`;
  if (!pairs.length) return name || '{}';
  return `${name}{${pairs.join(', ')}}`;
}

// series renders a label set the PromQL way, as Prometheus 3 prints it:
// name{a="b", c="d"}, or {"http.server.duration", "service.name"="api"}.
export function series(metric) {
  const rest = {...metric};
  delete rest.__name__;
  return selector(metric.__name__ || '', rest);
}
