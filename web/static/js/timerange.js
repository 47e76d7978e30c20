// Time ranges and steps for range queries. Times are Unix seconds.

export const RANGES = ['5m', '15m', '30m', '1h', '3h', '6h', '12h', '1d', '2d', '7d', '30d'];
export const REFRESH = ['off', '5s', '10s', '30s', '1m'];

const UNITS = {ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000};

// parseDuration reads a Prometheus duration ("1h30m", "15s") or plain
// seconds ("90"). It returns NaN for anything else.
export function parseDuration(s) {
  s = String(s || '').trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+)(ms|[smhdwy])/gy;
  let total = 0, m, end = 0;
  while ((m = re.exec(s))) { total += Number(m[1]) * UNITS[m[2]]; end = re.lastIndex; }
  return end === s.length && end > 0 ? total : NaN;
}

// formatDuration writes seconds as a Prometheus duration: 90 → "1m30s".
export function formatDuration(sec) {
  if (!(sec > 0)) return '0s';
  let out = '';
  for (const [u, n] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]) {
    if (sec >= n) { out += Math.floor(sec / n) + u; sec %= n; }
  }
  if (sec > 0.0005) out += Math.round(sec * 1000) + 'ms';
  return out;
}

// resolve turns the page's range state into absolute bounds. A relative
// range ends now; an absolute one has from and to in seconds.
export function resolve({range, from, to}, now = Date.now() / 1000) {
  if (from != null && to != null && to > from) return {start: from, end: to};
  const len = parseDuration(range) || 3600;
  return {start: now - len, end: now};
}

const NICE = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

// MAX_POINTS stays under the server's default query.max-points-per-series.
const MAX_POINTS = 11000;

// autoStep picks a round step giving about one point per two pixels of a
// chart widthPx wide.
export function autoStep(rangeSec, widthPx) {
  const raw = Math.max(rangeSec / Math.max(widthPx / 2, 50), rangeSec / MAX_POINTS);
  return NICE.find(n => n >= raw) ?? Math.ceil(raw / 86400) * 86400;
}

// toLocalInput formats seconds for an <input type="datetime-local"> in the
// browser's zone; fromLocalInput reads it back.
// With utc set both use UTC instead.
export function toLocalInput(sec, utc = false) {
  const d = new Date(sec * 1000);
  const p = n => String(n).padStart(2, '0');
  if (utc) return d.toISOString().slice(0, 19);
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fromLocalInput(s, utc = false) {
  const t = new Date(utc && s ? `${s}Z` : s).getTime();
  return Number.isNaN(t) ? null : t / 1000;
}

// parseTime reads a time as Prometheus' links write it: Unix seconds (or
// milliseconds), "2024-05-01 10:00:00" (UTC, as Prometheus' UI means it),
// or an RFC 3339 time. It returns Unix seconds, or null.
export function parseTime(s) {
  s = String(s || '').trim();
  if (!s) return null;
  if (/^\d+(\.\d+)?$/.test(s)) {
    const n = Number(s);
    return n > 1e11 ? n / 1000 : n;
  }
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$/.exec(s);
  const t = Date.parse(m ? `${m[1]}T${m[2]}Z` : s);
  return Number.isNaN(t) ? null : t / 1000;
}
