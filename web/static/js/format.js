// Formatting of numbers, sizes, durations, times and label sets.

const nf = new Intl.NumberFormat(undefined, {maximumFractionDigits: 2});
const nfInt = new Intl.NumberFormat(undefined, {maximumFractionDigits: 0});

// num formats a count with digit grouping: 12,345.
export function num(v) {
  if (v == null || Number.isNaN(v)) return '—';
  return Number.isInteger(v) ? nfInt.format(v) : nf.format(v);
}

// value formats a sample value exactly enough to compare with the API.
export function value(v) {
  if (v == null) return '—';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (v !== 0 && (Math.abs(v) >= 1e15 || Math.abs(v) < 1e-4)) return v.toExponential(4);
  return String(Math.round(v * 1e6) / 1e6);
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

// time formats a Unix time in milliseconds in the browser's zone.
export function time(msec) {
  if (msec == null || Number.isNaN(msec)) return '—';
  return dtf.format(new Date(msec));
}

// series renders a label set the PromQL way: name{a="b", c="d"}.
export function series(metric) {
  const name = metric.__name__ || '';
  const pairs = Object.keys(metric).filter(k => k !== '__name__').sort()
    .map(k => `${k}=${JSON.stringify(metric[k])}`);
  if (!pairs.length) return name || '{}';
  return `${name}{${pairs.join(', ')}}`;
}
