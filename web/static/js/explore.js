// The explore page: every metric with its series count, a metric's label
// names and values, and the highest-cardinality metrics and labels.

import {h, replace, errorBox} from './dom.js';
import * as api from './api.js';
import * as fmt from './format.js';

// SERIES_LIMIT bounds what the page asks for; a store with more series is
// summarised from the first ones and says so.
const SERIES_LIMIT = 200_000;
const TOP_N = 10;

// summarise counts series per metric and distinct values per label.
export function summarise(sets) {
  const metrics = new Map(); // name → {series, labels: Map(label → Set(values))}
  const labels = new Map(); // label → {values: Set, series}
  for (const ls of sets) {
    const name = ls.__name__ || '';
    let m = metrics.get(name);
    if (!m) metrics.set(name, m = {name, series: 0, labels: new Map()});
    m.series++;
    for (const [k, v] of Object.entries(ls)) {
      if (k === '__name__') continue;
      let vs = m.labels.get(k);
      if (!vs) m.labels.set(k, vs = new Set());
      vs.add(v);
      let l = labels.get(k);
      if (!l) labels.set(k, l = {name: k, values: new Set(), series: 0});
      l.values.add(v);
      l.series++;
    }
  }
  return {metrics, labels};
}

export function explorePage(root) {
  const params = new URLSearchParams(location.search);
  const filter = h('input.filter', {type: 'search', placeholder: 'Filter metrics', 'aria-label': 'Filter metrics', value: params.get('q') || ''});
  const summary = h('p.summary.muted', 'Loading…');
  const list = h('div.metric-list');
  const detail = h('div.metric-detail');
  const tops = h('div.tops');
  replace(root,
    h('div.page-head', h('h1', 'Explore'), summary),
    tops,
    h('div.explore',
      h('section.card', h('div.card-head', h('h2', 'Metrics'), filter), list),
      h('section.card.detail-card', detail)));

  let data;
  let sort = 'name';
  const selected = () => new URLSearchParams(location.search).get('metric');

  function select(name) {
    const sp = new URLSearchParams(location.search);
    if (name == null) sp.delete('metric'); else sp.set('metric', name);
    history.pushState(null, '', `/explore${sp.size ? `?${sp}` : ''}`);
    renderList();
    renderDetail();
  }
  addEventListener('popstate', () => { renderList(); renderDetail(); });
  filter.addEventListener('input', () => {
    const sp = new URLSearchParams(location.search);
    if (filter.value) sp.set('q', filter.value); else sp.delete('q');
    history.replaceState(null, '', `/explore${sp.size ? `?${sp}` : ''}`);
    renderList();
  });

  function renderList() {
    const q = filter.value.trim().toLowerCase();
    const rows = [...data.metrics.values()].filter(m => m.name.toLowerCase().includes(q));
    rows.sort(sort === 'name' ? (a, b) => a.name.localeCompare(b.name) : (a, b) => b.series - a.series || a.name.localeCompare(b.name));
    const head = (key, label, cls) => h('th', {class: cls},
      h('button.sort', {type: 'button', 'aria-pressed': String(sort === key), onclick: () => { sort = key; renderList(); }}, label));
    replace(list, h('table.metrics',
      h('thead', h('tr', head('name', 'Metric'), head('series', 'Series', 'num'))),
      h('tbody', rows.map(m => h('tr', {class: m.name === selected() && 'selected'},
        h('td', h('a', {href: `/explore?metric=${encodeURIComponent(m.name)}`, onclick: e => { e.preventDefault(); select(m.name); }}, m.name || '(no name)')),
        h('td.num', fmt.num(m.series)))))),
    rows.length ? null : h('p.empty', 'No metric matches.'));
  }

  function renderDetail() {
    const m = data.metrics.get(selected());
    if (!m) {
      return replace(detail, h('h2', 'Labels'), h('p.muted', 'Pick a metric to see its label names and values.'));
    }
    const graph = new URLSearchParams({range: '1h', 'g0.expr': fmt.selector(m.name)});
    const labels = [...m.labels.entries()].sort(([a], [b]) => a.localeCompare(b));
    replace(detail,
      h('div.card-head', h('h2.metric-name', m.name), h('a.button', {href: `/?${graph}`}, 'Graph →')),
      h('p.muted', `${fmt.num(m.series)} series · ${labels.length} label names`),
      labels.length ? h('table.labels',
        h('thead', h('tr', h('th', 'Label'), h('th.num', 'Values'), h('th', ''))),
        h('tbody', labels.map(([k, vs]) => h('tr',
          h('td.label-name', k),
          h('td.num', fmt.num(vs.size)),
          h('td', valueChips(m.name, k, [...vs].sort())))))) : h('p.muted', 'This metric has no labels besides its name.'));
  }

  function valueChips(metric, label, values) {
    const shown = values.slice(0, 30);
    return h('div.chips', shown.map(v => h('a.chip', {
      href: `/?${new URLSearchParams({range: '1h', 'g0.expr': fmt.selector(metric, {[label]: v})})}`,
      title: 'Graph this series',
    }, v)), values.length > shown.length ? h('span.muted', `+${fmt.num(values.length - shown.length)} more`) : null);
  }

  function renderTops(truncated) {
    const metrics = [...data.metrics.values()].sort((a, b) => b.series - a.series).slice(0, TOP_N);
    const labels = [...data.labels.values()].sort((a, b) => b.values.size - a.values.size).slice(0, TOP_N);
    replace(tops,
      topCard('Top metrics by series', 'top-metrics', metrics.map(m => [m.name, m.series, () => select(m.name)])),
      topCard('Top labels by distinct values', 'top-labels', labels.map(l => [l.name, l.values.size, null, `${fmt.num(l.series)} series`])),
      truncated ? h('p.warning', `Only the first ${fmt.num(SERIES_LIMIT)} series are counted.`) : null);
  }

  api.get('/api/v1/series', {'match[]': '{__name__=~".+"}', limit: SERIES_LIMIT}).then(r => {
    data = summarise(r.data);
    summary.textContent = `${fmt.num(data.metrics.size)} metrics · ${fmt.num(r.data.length)} series · ${fmt.num(data.labels.size)} label names`;
    renderTops(r.data.length >= SERIES_LIMIT);
    renderList();
    renderDetail();
  }, e => {
    summary.textContent = '';
    replace(list, errorBox(e));
  });
}

// topCard draws a ranked list with bars scaled to the first entry.
function topCard(title, cls, rows) {
  const max = rows.length ? rows[0][1] : 1;
  return h('section.card.top', {class: cls}, h('h2', title), rows.length ? h('ol.bars', rows.map(([name, n, onclick, note]) => {
    const bar = h('span.bar');
    bar.style.width = `${Math.max(2, (100 * n) / max)}%`;
    return h('li', {title: note || ''},
      onclick ? h('a.bar-name', {href: `/explore?metric=${encodeURIComponent(name)}`, onclick: e => { e.preventDefault(); onclick(); }}, name) : h('span.bar-name', name),
      h('span.bar-track', bar),
      h('span.bar-value', fmt.num(n)));
  })) : h('p.muted', 'Nothing yet.'));
}
