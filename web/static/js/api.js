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

// The bearer tokens sent when the server's auth is on: the read token with
// every request, and the write token, when one is given, instead of it for
// the requests that change something (saving a dashboard). They live in
// sessionStorage (this tab, until it closes) or, when the user asks to be
// remembered, in localStorage.
const TOKEN_KEYS = {read: 'strata.token', write: 'strata.write-token'};

export function token(kind = 'read') {
  const key = TOKEN_KEYS[kind];
  try { return sessionStorage.getItem(key) || localStorage.getItem(key) || ''; } catch { return ''; }
}

// setToken keeps t for this tab, or for good with remember; '' forgets it.
export function setToken(t, remember = false, kind = 'read') {
  const key = TOKEN_KEYS[kind];
  try {
    sessionStorage.removeItem(key);
    localStorage.removeItem(key);
    if (t) (remember ? localStorage : sessionStorage).setItem(key, t);
  } catch { /* storage may be off */ }
}

function headers(extra = {}, method = 'GET') {
  const t = (method !== 'GET' && method !== 'HEAD' && token('write')) || token('read');
  return t ? {...extra, Authorization: `Bearer ${t}`} : extra;
}

// authFailed tells the page (an "strata:auth" event on window) that the
// server refused the credentials: 401 (none) or 403 (a wrong token); write
// says the refused request was one that changes something.
function authFailed(status, message, method = 'GET') {
  if (status === 401 || status === 403) {
    dispatchEvent(new CustomEvent('strata:auth', {detail: {status, message, write: method !== 'GET' && method !== 'HEAD'}}));
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
  return call('GET', path + search(params), undefined, {signal});
}

// call sends a request with an optional JSON body to a Prometheus-style
// JSON endpoint; see get.
export async function call(method, path, body, {signal} = {}) {
  const t0 = performance.now();
  let res;
  try {
    const hd = headers({Accept: 'application/json', ...(body === undefined ? {} : {'Content-Type': 'application/json'})}, method);
    res = await fetch(path, {method, signal, headers: hd, body: body === undefined ? undefined : JSON.stringify(body)});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(`cannot reach the server: ${e.message}`, {type: 'network'});
  }
  const text = await res.text();
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    authFailed(res.status, text, method);
    throw new ApiError(text.trim().slice(0, 300) || res.statusText, {status: res.status, type: 'http'});
  }
  if (!res.ok || answer.status !== 'success') {
    authFailed(res.status, answer.error, method);
    throw new ApiError(answer.error || answer.message || res.statusText, {status: res.status, type: answer.errorType || 'http'});
  }
  return {
    data: answer.data,
    warnings: answer.warnings || [],
    ms: performance.now() - t0,
    cache: res.headers.get('X-Strata-Cache'),
    status: res.status,
  };
}

// text fetches a plain-text endpoint such as /metrics.
export async function text(path, {signal} = {}) {
  const res = await fetch(path, {signal, headers: headers()});
  if (!res.ok) {
    authFailed(res.status, res.statusText);
    throw new ApiError(res.statusText, {status: res.status, type: 'http'});
  }
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

// someLabelValues resolves to at most limit values of label name among
// metric's series, and whether there are more (the API's truncation
// warning): it never asks for every value of a label.
export const someLabelValues = (name, metric, limit) =>
  cached(`values:${name}:${metric || ''}:${limit}`, () =>
    get(`/api/v1/label/${encodeURIComponent(name)}/values`, {...match(metric), limit: String(limit)})
      .then(r => ({values: r.data || [], truncated: (r.warnings || []).length > 0})));

// metadata resolves to /api/v1/metadata's map: metric family → [{type,
// unit, help}], cached like the label API.
export const metadata = () =>
  cached('metadata', () => get('/api/v1/metadata').then(r => r.data || {}));

// exemplars resolves to /api/v1/query_exemplars' answer for expr over
// [start, end] (seconds): [{seriesLabels, exemplars: [{labels, value,
// timestamp}]}].
export const exemplars = (expr, start, end, {signal} = {}) =>
  get('/api/v1/query_exemplars', {query: expr, start: String(start), end: String(end)}, {signal}).then(r => r.data || []);
