// The client of Strata's HTTP API. Every request goes to the page's own
// origin.

// ApiError is a failed request: what the API said (type is its errorType,
// e.g. bad_data) or why the server could not be reached (type "network").
export class ApiError extends Error {
  constructor(message, {status = 0, type = ''} = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
  }
}

// search builds a query string; array values repeat their key (match[]).
export function search(params = {}) {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v == null || v === '') continue;
    for (const x of [v].flat()) sp.append(k, x);
  }
  const s = sp.toString();
  return s ? `?${s}` : '';
}

// get fetches a Prometheus-style JSON endpoint and resolves to
// {data, warnings, ms, cache, status}: ms is the time to the parsed answer,
// cache the X-Strata-Cache header (null when absent). It rejects with an
// ApiError, or with the AbortError of signal.
export async function get(path, params, {signal} = {}) {
  const t0 = performance.now();
  let res;
  try {
    res = await fetch(path + search(params), {signal, headers: {Accept: 'application/json'}});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(`cannot reach the server: ${e.message}`, {type: 'network'});
  }
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(text.trim().slice(0, 300) || res.statusText, {status: res.status, type: 'http'});
  }
  if (!res.ok || body.status !== 'success') {
    throw new ApiError(body.error || body.message || res.statusText, {status: res.status, type: body.errorType || 'http'});
  }
  return {
    data: body.data,
    warnings: body.warnings || [],
    ms: performance.now() - t0,
    cache: res.headers.get('X-Strata-Cache'),
    status: res.status,
  };
}

// text fetches a plain-text endpoint such as /metrics.
export async function text(path, {signal} = {}) {
  const res = await fetch(path, {signal});
  if (!res.ok) throw new ApiError(res.statusText, {status: res.status, type: 'http'});
  return res.text();
}

// The label API, cached for a minute: autocomplete asks often.
const memo = new Map();

function cached(key, load) {
  const hit = memo.get(key);
  if (hit && performance.now() - hit.at < 60_000) return hit.value;
  const value = load().catch(e => { memo.delete(key); throw e; });
  memo.set(key, {at: performance.now(), value});
  return value;
}

const match = metric => (metric ? {'match[]': `{__name__=${JSON.stringify(metric)}}`} : {});

export const metricNames = () =>
  cached('names', () => get('/api/v1/label/__name__/values').then(r => r.data || []));

export const labelNames = metric =>
  cached(`labels:${metric || ''}`, () => get('/api/v1/labels', match(metric)).then(r => (r.data || []).filter(n => n !== '__name__')));

export const labelValues = (name, metric) =>
  cached(`values:${name}:${metric || ''}`, () => get(`/api/v1/label/${encodeURIComponent(name)}/values`, match(metric)).then(r => r.data || []));
