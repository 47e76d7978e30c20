// One query panel of the graph page: editor, chart or table of the range
// query's result, and a line saying where the answer came from and how long
// it took.

import {h, replace, errorBox} from './dom.js';
import * as api from './api.js';
import * as fmt from './format.js';
import {Chart, MODES, sample} from './chart.js';
import {Editor} from './editor.js';
import {Heatmap, isRate} from './heatmap.js';
import {formatDuration, parseDuration} from './timerange.js';

let nextID = 0;

// Panel needs from its page: bounds() → {start, end} in seconds, step(width)
// → seconds, height() → chart height in px, utc() → whether times are in
// UTC, expand(expr, step, bounds) → the query with the page's variables
// filled in (optional), editTitles (whether the title is an input),
// changed() after its state changed, remove(panel), and zoom(start, end)
// for a range dragged on the chart.
//
// Its state: expr, view (chart|table), unit (a key of fmt.UNITS), mode (a
// key of MODES) and title (optional).
export class Panel {
  constructor(state, page) {
    this.id = `p${nextID++}`;
    this.state = {
      expr: state.expr || '',
      view: state.view === 'table' ? 'table' : 'chart',
      unit: state.unit in fmt.UNITS ? state.unit : '',
      mode: MODES[state.mode] ? state.mode : 'lines',
      title: state.title || '',
      // A range of its own (from a Prometheus link): a duration ending at
      // end (Unix s), or now when end is null; '' follows the page's.
      range: parseDuration(state.range) > 0 ? state.range : '',
      end: state.end ?? null,
      // Its width on a saved dashboard, in 24ths of the row (Grafana's grid).
      width: Math.min(Math.max(Math.round(Number(state.width) || 24), 1), 24),
    };
    this.page = page;
    this.runs = 0;
    this.editor = new Editor({value: this.state.expr, onRun: () => this.submit()});
    this.tabs = ['chart', 'table'].map(view => h('button.tab', {
      type: 'button', dataset: {view}, 'aria-pressed': String(view === this.state.view),
      onclick: () => this.setView(view),
    }, view === 'chart' ? 'Chart' : 'Table'));
    this.meta = h('span.meta');
    this.body = h('div.panel-body');
    const select = (key, options, label) => h(`select.panel-${key}`, {'aria-label': label, title: label, onchange: e => {
      this.state[key] = e.target.value;
      this.page.changed();
      this.render({fresh: true});
    }}, Object.entries(options).map(([v, text]) => h('option', {value: v, selected: v === this.state[key]}, text)));
    // A saved dashboard's panels have a title to edit; the graph page's
    // show one only when the link gives it (g0.title).
    this.titleEl = page.editTitles
      ? h('input.panel-title.panel-title-input', {type: 'text', value: this.state.title, placeholder: 'Panel title', 'aria-label': 'Panel title',
        oninput: e => { this.state.title = e.target.value; this.page.changed(); }})
      : h('h3.panel-title', {hidden: !this.state.title}, this.state.title);
    const widths = {24: 'Full width', 16: '2/3 width', 12: '1/2 width', 8: '1/3 width', 6: '1/4 width'};
    if (!widths[this.state.width]) widths[this.state.width] = `${this.state.width}/24 width`;
    const widthSel = page.editTitles ? h('select.panel-width', {'aria-label': 'Width', title: 'Width on the dashboard', onchange: e => {
      this.state.width = Number(e.target.value);
      this.el.style.gridColumn = `span ${this.state.width}`;
      this.page.changed();
    }}, Object.entries(widths).sort((a, b) => b[0] - a[0]).map(([v, text]) => h('option', {value: v, selected: Number(v) === this.state.width}, text))) : null;
    this.el = h('section.panel', {dataset: {panel: this.id}},
      this.titleEl,
      h('div.panel-head',
        this.editor.el,
        h('button.primary.run', {type: 'button', onclick: () => this.submit()}, 'Run'),
        h('button.icon.remove', {type: 'button', title: 'Remove panel', 'aria-label': 'Remove panel', onclick: () => page.remove(this)}, '×')),
      h('div.panel-bar', h('div.tabs', this.tabs),
        select('mode', MODES, 'Draw as'), select('unit', fmt.UNITS, 'Unit'), widthSel, this.meta),
      this.body);
    if (page.editTitles) this.el.style.gridColumn = `span ${this.state.width}`;
  }

  get busy() { return this.el.classList.contains('busy'); }

  submit() {
    this.state.expr = this.editor.value.trim();
    this.page.changed();
    this.run();
  }

  setView(view) {
    this.state.view = view;
    this.tabs.forEach(t => t.setAttribute('aria-pressed', String(t.dataset.view === view)));
    this.page.changed();
    this.render();
  }

  destroy() {
    this.abort?.abort();
    this.chart?.destroy();
    this.el.remove();
  }

  // run queries the page's range and draws the answer.
  async run() {
    const expr = this.state.expr;
    this.abort?.abort();
    if (!expr) {
      this.result = this.error = null;
      replace(this.meta);
      return this.render();
    }
    const ac = this.abort = new AbortController();
    const own = parseDuration(this.state.range);
    const ownEnd = this.state.end ?? Date.now() / 1000;
    const bounds = own > 0 ? {start: ownEnd - own, end: ownEnd} : this.page.bounds();
    const step = this.page.step(this.body.clientWidth || this.el.clientWidth, own > 0 ? own : undefined);
    const query = this.page.expand ? this.page.expand(expr, step, bounds) : expr;
    // Align the range to the step, as Grafana does: the same panel asked
    // again lands on the same step grid, so the server's cache can answer
    // everything but the newest minute.
    const start = Math.floor(bounds.start / step) * step;
    const end = Math.floor(bounds.end / step) * step;
    const mark = `strata:${this.id}:${++this.runs}`;
    performance.mark(mark);
    this.el.classList.add('busy');
    try {
      // The exemplars of the same selection, marked on the chart; a
      // failed lookup only leaves them out.
      const [r, exemplars] = await Promise.all([
        api.get('/api/v1/query_range', {query, start: String(start), end: String(end), step: String(step)}, {signal: ac.signal}),
        api.exemplars(query, start, end, {signal: ac.signal}).catch(() => []),
      ]);
      // Let the page breathe between parsing a large answer and drawing it.
      await new Promise(resolve => setTimeout(resolve));
      if (this.abort !== ac) return performance.clearMarks(mark);
      performance.mark(`${mark}:data`);
      this.result = {...r, step, mark, expr, range: [bounds.start, bounds.end], start, end, exemplars};
      Object.assign(this.el.dataset, {start: String(start), end: String(end), step: String(step), query});
      this.error = null;
    } catch (e) {
      performance.clearMarks(mark);
      if (e.name === 'AbortError') return;
      this.result = null;
      this.error = e;
    } finally {
      if (this.abort === ac) this.el.classList.remove('busy');
    }
    this.render();
  }

  // render shows the answer. A chart of the same series as before (an
  // auto-refresh) only takes the new data, so the legend's choices and the
  // hover survive; fresh draws it anew (after a theme change).
  render({fresh = false} = {}) {
    const r = this.result;
    const all = r?.data.resultType === 'matrix' ? r.data.result : [];
    // Native histogram samples come in "histograms", not "values": the
    // chart draws the floats, a heatmap the histograms' buckets.
    const series = all.filter(s => s.values?.length);
    const hseries = all.filter(s => s.histograms?.length);
    const histograms = hseries.length;
    const keep = !fresh && !this.error && this.state.view === 'chart' && series.length && !histograms && this.chart?.sameSeries(series);
    if (!keep) {
      this.chart?.destroy();
      this.chart = null;
    }
    if (this.error) {
      replace(this.meta);
      return replace(this.body, errorBox(this.error));
    }
    if (!r) return replace(this.body, this.hint());
    if (keep || this.state.view !== 'chart' || !series.length || histograms) forget(r); // no first draw to measure
    const points = series.reduce((n, s) => n + s.values.length, 0) + hseries.reduce((n, s) => n + s.histograms.length, 0);
    this.renderMeta(r, series.length + histograms, points);
    if (r.data.resultType !== 'matrix') {
      return replace(this.body, h('pre.scalar', JSON.stringify(r.data.result)));
    }
    const warnings = r.warnings.map(w => h('div.warning', w));
    if (!series.length && !histograms) {
      return replace(this.body, warnings, h('p.empty', 'No data for this query in the selected time range.'));
    }
    if (this.state.view === 'table') return replace(this.body, warnings, table(series.concat(hseries), this.page.utc?.()));
    if (histograms) {
      // The floats (if any) as a chart, then the buckets as a heatmap,
      // with a line on how to chart quantiles instead.
      const hbox = h('div.chart.heatmap-box', h('p.muted.heatmap-hint', `${fmt.num(histograms)} native histogram series: `,
        'for quantiles chart ', h('code', `histogram_quantile(0.9, ${isRate(r.expr) ? r.expr : `rate(${r.expr}[5m])`})`), '.'));
      this.warnings = h('div.warnings', warnings);
      const box = series.length ? h('div.chart') : null;
      replace(this.body, this.warnings, box, hbox);
      if (box) {
        this.chart = new Chart(box, series, {step: r.step, range: r.range, height: this.page.height?.() || 280,
          unit: this.state.unit, mode: this.state.mode, utc: Boolean(this.page.utc?.())});
      }
      new Heatmap(hbox, hseries, {expr: r.expr, step: r.step, range: r.range, height: this.page.height?.() || 280, utc: Boolean(this.page.utc?.())});
      this.el.dataset.drawn = String(series.length + histograms);
      return;
    }
    if (keep) {
      replace(this.warnings, warnings);
      this.chart.update(series, r.step, r.range);
      return this.chart.setExemplars(r.exemplars);
    }
    this.warnings = h('div.warnings', warnings);
    const box = h('div.chart');
    replace(this.body, this.warnings, box);
    this.chart = new Chart(box, series, {
      step: r.step,
      range: r.range,
      height: this.page.height?.() || 280,
      unit: this.state.unit,
      mode: this.state.mode,
      utc: Boolean(this.page.utc?.()),
      exemplars: r.exemplars,
      onZoom: (s, e) => { this.state.range = ''; this.state.end = null; this.page.zoom(s, e); },
      onFirstDraw: () => this.measure(r, series.length, points),
    });
  }

  renderMeta(r, nseries, points) {
    const cache = r.cache || '—';
    replace(this.meta,
      h('span.badge', {class: `cache-${r.cache || 'none'}`, title: 'X-Strata-Cache: where the answer came from'}, `cache: ${cache}`),
      h('span.took', {title: 'Time to the parsed answer'}, fmt.ms(r.ms)),
      h('span', `${fmt.num(nseries)} series`),
      h('span', `${fmt.num(points)} points`),
      h('span', `step ${formatDuration(r.step)}`),
      this.state.range ? h('span.badge.own-range', {title: 'This panel has its own time range (from a Prometheus link)'},
        `own range: ${this.state.range}${this.state.end != null ? ` to ${fmt.time(this.state.end * 1000, this.page.utc?.())}` : ''} `,
        h('button.icon.own-range-clear', {type: 'button', title: 'Follow the page\'s range', 'aria-label': 'Follow the page\'s range',
          onclick: () => { this.state.range = ''; this.state.end = null; this.page.changed(); this.run(); }}, '×')) : null);
  }

  // measure records, once per answer, the time from the query's start to
  // the chart's first paint ("strata:first-draw:<panel>") and from the data's
  // arrival to that paint ("strata:render:<panel>").
  measure(r, nseries, points) {
    if (r.measured) return;
    r.measured = true;
    const drawn = `${r.mark}:drawn`;
    performance.mark(drawn);
    const detail = {panel: this.id, series: nseries, points};
    for (const [name, from] of [['first-draw', r.mark], ['render', `${r.mark}:data`]]) {
      performance.clearMeasures(`strata:${name}:${this.id}`);
      performance.measure(`strata:${name}:${this.id}`, {start: from, end: drawn, detail});
    }
    for (const m of [r.mark, `${r.mark}:data`, drawn]) performance.clearMarks(m);
    this.el.dataset.drawn = String(nseries);
  }

  // hint helps with an empty panel: a few metrics in the store to start from.
  hint() {
    const box = h('div.hint', h('p.muted', 'Enter a PromQL expression above and press Enter.'));
    api.metricNames().then(names => {
      if (!names.length) {
        box.append(h('p.muted', 'The store has no metrics yet: push some with POST /write (Influx line protocol) or /api/v1/write (Prometheus remote write).'));
        return;
      }
      box.append(h('div.chips', h('span.muted', 'Metrics: '), names.slice(0, 12).map(n =>
        h('button.chip', {type: 'button', onclick: () => { this.editor.value = n; this.submit(); }}, n)),
      names.length > 12 ? h('a', {href: '/explore'}, `all ${fmt.num(names.length)} →`) : null));
    }, () => {});
    return box;
  }
}

// forget drops the marks of an answer that no chart will measure.
function forget(r) {
  if (r.measured) return;
  r.measured = true;
  performance.clearMarks(r.mark);
  performance.clearMarks(`${r.mark}:data`);
}

// table lists each series with its last, min and max values; a row opens
// to show every sample. A histogram series shows its last count and sum.
function table(series, utc) {
  const rows = series.map(s => {
    if (s.histograms) return histogramRow(s, utc);
    const vals = s.values.map(([, v]) => sample(v)).filter(Number.isFinite);
    const last = s.values[s.values.length - 1];
    const tr = h('tr.row', {dataset: {t: last ? String(last[0]) : ''}, onclick: () => toggleRaw(tr, s, utc)},
      h('td.series', fmt.series(s.metric)),
      h('td.num', {title: last ? last[1] : ''}, last ? fmt.value(sample(last[1])) : '—'),
      h('td.time', last ? fmt.time(last[0] * 1000, utc) : '—'),
      h('td.num', vals.length ? fmt.value(vals.reduce((a, b) => Math.min(a, b))) : '—'),
      h('td.num', vals.length ? fmt.value(vals.reduce((a, b) => Math.max(a, b))) : '—'),
      h('td.num', fmt.num(s.values.length)));
    return tr;
  });
  return h('div.table-wrap', h('table.result',
    h('thead', h('tr', ['Series', 'Last', 'At', 'Min', 'Max', 'Points'].map(c => h('th', c)))),
    h('tbody', rows)));
}

// histogramRow is a table row of a native histogram series: the last
// histogram's count (and sum, after it), the least and greatest count.
function histogramRow(s, utc) {
  const counts = s.histograms.map(([, x]) => sample(x.count)).filter(Number.isFinite);
  const [t, last] = s.histograms[s.histograms.length - 1];
  return h('tr.row.histogram', {dataset: {t: String(t)}},
    h('td.series', fmt.series(s.metric)),
    h('td.num', {title: `count ${last.count}, sum ${last.sum}`}, `count ${fmt.value(sample(last.count))}, sum ${fmt.value(sample(last.sum))}`),
    h('td.time', fmt.time(t * 1000, utc)),
    h('td.num', counts.length ? fmt.value(counts.reduce((a, b) => Math.min(a, b))) : '—'),
    h('td.num', counts.length ? fmt.value(counts.reduce((a, b) => Math.max(a, b))) : '—'),
    h('td.num', fmt.num(s.histograms.length)));
}

const RAW_LIMIT = 2000;

function toggleRaw(tr, s, utc) {
  const next = tr.nextElementSibling;
  if (next?.classList.contains('raw')) return next.remove();
  const vals = s.values.slice(-RAW_LIMIT).reverse();
  tr.after(h('tr.raw', h('td', {colSpan: 6},
    h('table.samples', h('tbody', vals.map(([t, v]) => h('tr', h('td.time', fmt.time(t * 1000, utc)), h('td.num', {title: v}, fmt.value(sample(v))))))),
    s.values.length > RAW_LIMIT ? h('p.muted', `Latest ${RAW_LIMIT} of ${fmt.num(s.values.length)} samples.`) : null)));
}
