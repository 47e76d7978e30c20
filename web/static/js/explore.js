// The explore page: every metric with its series count, a metric's label
// names and values, and the highest-cardinality metrics and labels.
//
// Cardinality comes from /api/v1/status/tsdb, Prometheus' statistics of
// the head (seriesCountByMetricName, labelValueCountByLabelName, …), and
// names and values from the label endpoints, which read indexes only: the
// page never lists series, so a store of millions costs it a few small
// answers.

import {h, replace, errorBox} from './dom.js';
import * as api from './api.js';
import * as fmt from './format.js';

// RANK_LIMIT is the longest ranking the page asks /api/v1/status/tsdb for
// (Prometheus' largest limit); VALUES_LIMIT bounds the values of one label
// the detail fetches.
const RANK_LIMIT = 10000;
const VALUES_LIMIT = 1000;
const TOP_N = 10;

// summarise joins the metric names with the status' rankings: each metric
// with its series count in the head (null when it has none there).
export function summarise(names, status) {
  const counts = new Map((status.seriesCountByMetricName || []).map(s => [s.name, s.value]));
  const metrics = new Map(names.map(name => [name, {name, series: counts.has(name) ? counts.get(name) : null}]));
  return {metrics, status};
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
    rows.sort(sort === 'name' ? (a, b) => a.name.localeCompare(b.name) : (a, b) => (b.series ?? -1) - (a.series ?? -1) || a.name.localeCompare(b.name));
    const head = (key, label, cls) => h('th', {class: cls},
      h('button.sort', {type: 'button', 'aria-pressed': String(sort === key), onclick: () => { sort = key; renderList(); }}, label));
    replace(list, h('table.metrics',
      h('thead', h('tr', head('name', 'Metric'), head('series', 'Series', 'num'))),
      h('tbody', rows.map(m => h('tr', {class: m.name === selected() && 'selected'},
        h('td', h('a', {href: `/explore?metric=${encodeURIComponent(m.name)}`, onclick: e => { e.preventDefault(); select(m.name); }}, m.name || '(no name)')),
        h('td.num', m.series == null ? h('span.muted', {title: 'no series in the head'}, '–') : fmt.num(m.series)))))),
    rows.length ? null : h('p.empty', 'No metric matches.'));
  }

  let shown = null; // the metric whose detail is drawn, or being fetched

  function renderDetail() {
    const m = data.metrics.get(selected());
    if (!m) {
      shown = null;
      return replace(detail, h('h2', 'Labels'), h('p.muted', 'Pick a metric to see its label names and values.'));
    }
    if (shown === m.name) return;
    shown = m.name;
    const graph = new URLSearchParams({range: '1h', 'g0.expr': fmt.selector(m.name)});
    const head = h('div.card-head', h('h2.metric-name', m.name), h('a.button', {href: `/?${graph}`}, 'Graph →'));
    replace(detail, head, h('p.muted', 'Loading…'));
    api.labelNames(m.name).then(names =>
      Promise.all(names.map(k => api.someLabelValues(k, m.name, VALUES_LIMIT).then(r => [k, r]))).then(labels => {
        if (shown !== m.name) return;
        labels.sort(([a], [b]) => a.localeCompare(b));
        const series = m.series == null ? 'no series in the head' : `${fmt.num(m.series)} series in the head`;
        replace(detail, head,
          h('p.muted', `${series} · ${labels.length} label names`),
          labels.length ? h('table.labels',
            h('thead', h('tr', h('th', 'Label'), h('th.num', 'Values'), h('th', ''))),
            h('tbody', labels.map(([k, r]) => h('tr',
              h('td.label-name', k),
              h('td.num', r.truncated ? `${fmt.num(r.values.length)}+` : fmt.num(r.values.length)),
              h('td', valueChips(m.name, k, r.values, r.truncated)))))) : h('p.muted', 'This metric has no labels besides its name.'));
      }), e => {
      if (shown === m.name) replace(detail, head, errorBox(e));
    });
  }

  function valueChips(metric, label, values, truncated) {
    const chips = values.slice(0, 30);
    const more = values.length - chips.length;
    return h('div.chips', chips.map(v => h('a.chip', {
      href: `/?${new URLSearchParams({range: '1h', 'g0.expr': fmt.selector(metric, {[label]: v})})}`,
      title: 'Graph this series',
    }, v)), more > 0 || truncated ? h('span.muted', `+${fmt.num(more)}${truncated ? '+' : ''} more`) : null);
  }

  function renderTops() {
    const st = data.status;
    const metrics = (st.seriesCountByMetricName || []).slice(0, TOP_N);
    const labels = (st.labelValueCountByLabelName || []).slice(0, TOP_N);
    const pairs = new Map((st.seriesCountByLabelValuePair || []).map(p => [p.name.slice(0, p.name.indexOf('=')), p]));
    replace(tops,
      topCard('Top metrics by series', 'top-metrics', metrics.map(m => [m.name, m.value, () => select(m.name)])),
      topCard('Top labels by distinct values', 'top-labels', labels.map(l => [l.name, l.value, null,
        pairs.has(l.name) ? `most series: ${pairs.get(l.name).name} (${fmt.num(pairs.get(l.name).value)})` : ''])),
      h('p.muted.tops-note', 'Series counts are of the head (the recent data not yet in segments), as Prometheus reports them.'));
  }

  Promise.all([api.get('/api/v1/label/__name__/values'), api.get('/api/v1/status/tsdb', {limit: String(RANK_LIMIT)})]).then(([names, status]) => {
    data = summarise(names.data || [], status.data || {});
    const hs = data.status.headStats || {};
    summary.textContent = `${fmt.num(data.metrics.size)} metrics · ${fmt.num(hs.numSeries || 0)} series in the head · ${fmt.num((data.status.labelValueCountByLabelName || []).length)} label names`;
    renderTops();
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
