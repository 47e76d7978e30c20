// Charts of range-query results, drawn on canvas by uPlot: lines, areas,
// stacked areas or bars, over the whole range asked for, with a legend of
// statistics (click to isolate, Ctrl/⌘-click to hide, hover to highlight)
// and a hover tooltip.

import uPlot from '../vendor/uplot/uPlot.esm.js';
import {h, replace} from './dom.js';
import * as fmt from './format.js';

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#59a14f', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#86bcb6'];

// color gives series i a stable colour: a hand-picked palette, then hues
// spread by the golden angle.
export function color(i) {
  return i < PALETTE.length ? PALETTE[i] : `hsl(${Math.round((i * 137.508) % 360)} 62% 55%)`;
}

// sample parses a sample value as the API writes it ("1.5", "NaN", "+Inf").
export function sample(s) {
  const v = Number(s);
  if (!Number.isNaN(v) || s === 'NaN') return v;
  return s === '+Inf' || s === 'Inf' ? Infinity : s === '-Inf' ? -Infinity : NaN;
}

// align turns a matrix into uPlot's columns: one shared time column and one
// column per series, null where a series has no sample. Range results sit on
// one step grid, so this is a single pass; off-grid data falls back to a
// sorted union of timestamps.
export function align(result, step) {
  let t0 = Infinity, t1 = -Infinity, onGrid = step > 0;
  for (const s of result) {
    if (!s.values.length) continue;
    t0 = Math.min(t0, s.values[0][0]);
    t1 = Math.max(t1, s.values[s.values.length - 1][0]);
  }
  if (t0 === Infinity) return [[]];
  let xs, index;
  if (onGrid) {
    for (const s of result) {
      for (const [t] of s.values) {
        const k = (t - t0) / step;
        if (Math.abs(k - Math.round(k)) > 1e-6) { onGrid = false; break; }
      }
      if (!onGrid) break;
    }
  }
  if (onGrid) {
    const n = Math.round((t1 - t0) / step) + 1;
    xs = Array.from({length: n}, (_, i) => t0 + i * step);
    index = t => Math.round((t - t0) / step);
  } else {
    const all = new Set();
    for (const s of result) for (const [t] of s.values) all.add(t);
    xs = [...all].sort((a, b) => a - b);
    const pos = new Map(xs.map((t, i) => [t, i]));
    index = t => pos.get(t);
  }
  const data = [xs];
  for (const s of result) {
    const col = new Array(xs.length).fill(null);
    for (const [t, v] of s.values) {
      const x = sample(v);
      col[index(t)] = Number.isFinite(x) ? x : null;
    }
    data.push(col);
  }
  return data;
}

// STAMPS_24H are uPlot's time-axis formats with a 24-hour clock and ISO
// dates, for locales that do not use a 12-hour clock (uPlot's default).
const NL = '\n';
const STAMPS_24H = [
  // tick step (s), tick format, then the format of a tick where the year, day or hour changes
  [31536000, '{YYYY}', null, null, null, null, null, null, 1],
  [86400 * 28, '{MMM}', NL + '{YYYY}', null, null, null, null, null, 1],
  [86400, '{MM}-{DD}', NL + '{YYYY}', null, null, null, null, null, 1],
  [3600, '{HH}:{mm}', NL + '{YYYY}-{MM}-{DD}', null, NL + '{MM}-{DD}', null, null, null, 1],
  [60, '{HH}:{mm}', NL + '{YYYY}-{MM}-{DD}', null, NL + '{MM}-{DD}', null, null, null, 1],
  [1, ':{ss}', NL + '{YYYY}-{MM}-{DD} {HH}:{mm}', null, NL + '{MM}-{DD} {HH}:{mm}', null, NL + '{HH}:{mm}', null, 1],
  [0.001, ':{ss}.{fff}', NL + '{YYYY}-{MM}-{DD} {HH}:{mm}', null, NL + '{MM}-{DD} {HH}:{mm}', null, NL + '{HH}:{mm}', null, 1],
];

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// axisSize fits the y axis to its widest tick label.
function axisSize(u, values, axisIdx, cycleNum) {
  const axis = u.axes[axisIdx];
  if (cycleNum > 1) return axis._size;
  let size = axis.ticks.size + axis.gap;
  const longest = (values || []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), '');
  if (longest) {
    u.ctx.font = axis.font[0];
    size += u.ctx.measureText(longest).width / devicePixelRatio;
  }
  return Math.ceil(size);
}

// MODES are the ways a chart draws its series.
export const MODES = {lines: 'Lines', area: 'Area', stacked: 'Stacked', bars: 'Bars'};

// isolated lists, for one column, the indexes of samples with no sample on
// either side: a line cannot show them, so they are drawn as points.
export function isolated(col) {
  const out = [];
  for (let i = 0; i < col.length; i++) {
    if (col[i] != null && (i === 0 || col[i - 1] == null) && (i === col.length - 1 || col[i + 1] == null)) out.push(i);
  }
  return out;
}

// stats summarises one column: min, max, mean and last non-null value.
export function stats(col) {
  let min = Infinity, max = -Infinity, sum = 0, n = 0, last = null;
  for (const v of col) {
    if (v == null) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v; n++; last = v;
  }
  return n ? {min, max, avg: sum / n, last} : {min: null, max: null, avg: null, last: null};
}

// stack adds up the shown columns from the first: column i holds the sum of
// the shown columns up to i, and null where column i has no sample.
export function stack(data, shown) {
  const out = [data[0]];
  const acc = new Array(data[0].length).fill(0);
  for (let i = 1; i < data.length; i++) {
    if (!shown[i]) { out.push(data[i]); continue; }
    out.push(data[i].map((v, k) => (v == null ? null : (acc[k] += v))));
  }
  return out;
}

const STATS = ['min', 'max', 'avg', 'last'];

// INCRS are the tick steps of units whose round numbers are not decimal:
// binary sizes tick at 256 MiB, not at 200,000,000 bytes.
const binary = [];
for (let k = 0; k <= 5; k++) for (const m of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]) binary.push(m * 1024 ** k);
const INCRS = {bytes: binary, seconds: fmt.TIME_INCRS, ms: fmt.TIME_INCRS.map(v => v * 1000)};

// Chart draws one result. opts: step (seconds), range ([start, end] in
// seconds: the x axis spans it whatever the data covers), height (px), unit
// (a key of fmt.UNITS), mode (a key of MODES), utc (times in UTC),
// onZoom(start, end) for a dragged selection, onFirstDraw() after the first
// paint.
export class Chart {
  constructor(el, result, {step, range, height = 280, unit = '', mode = 'lines', utc = false, exemplars = [], onZoom, onFirstDraw} = {}) {
    this.el = el;
    this.exemplars = exemplars;
    this.exLayer = h('div.exemplars');
    this.result = result;
    this.range = range;
    this.mode = MODES[mode] ? mode : 'lines';
    this.utc = utc;
    this.fmtValue = fmt.formatter(unit);
    this.plotEl = h('div.plot');
    this.tooltip = h('div.tooltip', {hidden: true});
    this.legend = h('ul.legend', {'aria-label': 'Series'});
    this.legendHead = h('div.legend-head', h('span'), h('span', 'Series'), STATS.map(k => h('span.num', k)));
    replace(el, this.plotEl, h('div.legend-box', this.legendHead, this.legend));
    el.dataset.mode = this.mode;

    this.raw = align(result, step);
    const many = result.length > 30;
    const axis = {
      stroke: css('--fg-muted'),
      grid: {stroke: css('--grid'), width: 1},
      ticks: {stroke: css('--grid'), width: 1},
      font: '11px system-ui, sans-serif',
    };
    const yFmt = fmt.formatter(unit, true);
    const filled = this.mode !== 'lines';
    const bars = this.mode === 'bars' ? uPlot.paths.bars({size: [0.8, 64], align: 0}) : null;
    let drawn = false;
    const opts = {
      width: Math.max(el.clientWidth, 300),
      height,
      legend: {show: false},
      tzDate: utc ? ts => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC') : ts => new Date(ts * 1e3),
      cursor: {
        sync: {key: 'strata'},
        focus: {prox: 24},
        drag: {x: true, y: false, setScale: false},
        points: {show: !many, size: 7},
      },
      focus: {alpha: 0.35},
      scales: {
        x: {time: true, range: (u, min, max) => (this.range ? [this.range[0], this.range[1]] : [min, max])},
        y: filled ? {range: (u, min, max) => uPlot.rangeNum(Math.min(0, min), Math.max(0, max), 0.1, true)} : {},
      },
      axes: [
        fmt.hour12 ? axis : {...axis, values: STAMPS_24H},
        {...axis, size: axisSize, incrs: INCRS[unit], values: (u, vals, ai, space, incr) => {
          const max = Math.max(...vals.map(v => Math.abs(v ?? 0)));
          return vals.map(v => yFmt(v, incr, max));
        }},
      ],
      series: [
        {},
        ...result.map((s, i) => ({
          label: fmt.series(s.metric),
          stroke: color(i),
          fill: filled ? fade(color(i), this.mode === 'bars' ? 0.55 : 0.22) : undefined,
          width: this.mode === 'bars' ? 0 : many ? 1 : 1.5,
          paths: bars || undefined,
          // A sample with no neighbour draws no line: show it as a point.
          points: {show: false, size: 5, fill: color(i), filter: (u, si) => this.alone[si]},
          spanGaps: false,
        })),
      ],
      bands: this.mode === 'stacked' ? result.slice(1).map((_, i) => ({series: [i + 2, i + 1]})) : [],
      hooks: {
        draw: [u => {
          this.plotEl.dataset.yticks = (u.axes[1]._values || []).join('|');
          this.plotEl.dataset.xmin = String(u.scales.x.min);
          this.plotEl.dataset.xmax = String(u.scales.x.max);
          this.plotEl.dataset.ymax = String(u.scales.y.max);
          this.plotEl.dataset.ymin = String(u.scales.y.min);
          this.placeExemplars(u);
          if (!drawn) { drawn = true; onFirstDraw?.(); }
        }],
        setCursor: [u => this.showTooltip(u)],
        setSeries: [(u, i, o) => {
          if (o.focus == null) return;
          // The chart lets go of its focus (the mouse left it) after the
          // mouse entered a legend row: the row keeps it.
          if (i == null && this.legendHover != null) u.setSeries(this.legendHover, {focus: true});
          else this.highlight(i);
        }],
        setSelect: [u => {
          if (u.select.width > 4 && onZoom) {
            onZoom(u.posToVal(u.select.left, 'x'), u.posToVal(u.select.left + u.select.width, 'x'));
          }
          u.setSelect({left: 0, width: 0, top: 0, height: 0}, false);
        }],
      },
    };
    this.alone = [null, ...this.raw.slice(1).map(c => { const a = isolated(c); return a.length ? a : null; })];
    this.u = new uPlot(opts, this.plotted(), this.plotEl);
    this.plotEl.uplot = this.u; // for tests and devtools: the chart behind the canvas
    this.u.over.append(this.exLayer, this.tooltip);
    this.placeExemplars(this.u);
    this.u.over.addEventListener('mouseleave', () => this.highlight(null));
    this.buildLegend();
    this.resizer = new ResizeObserver(() => {
      const w = Math.max(this.el.clientWidth, 300);
      if (w !== this.u.width) this.u.setSize({width: w, height});
    });
    this.resizer.observe(el);
  }

  // plotted is the data uPlot draws: the samples, or their running sums
  // when stacked.
  plotted() {
    if (this.mode !== 'stacked') return this.raw;
    const shown = this.u ? this.u.series.map(s => s.show) : this.raw.map(() => true);
    return stack(this.raw, shown);
  }

  // sameSeries reports whether result has the series this chart draws, in
  // the same order.
  sameSeries(result) {
    return result.length === this.result.length &&
      result.every((s, i) => fmt.series(s.metric) === this.u.series[i + 1].label);
  }

  // update draws new data for the same series over range, keeping the
  // legend's choices.
  update(result, step, range) {
    this.result = result;
    this.range = range;
    this.raw = align(result, step);
    this.alone = [null, ...this.raw.slice(1).map(c => { const a = isolated(c); return a.length ? a : null; })];
    this.u.setData(this.plotted());
    this.fillStats();
  }

  // setExemplars marks exemplars (from /api/v1/query_exemplars) on the
  // chart.
  setExemplars(exemplars) {
    this.exemplars = exemplars || [];
    this.placeExemplars(this.u);
  }

  // placeExemplars draws each exemplar inside the plotted range as a
  // diamond at its time and value; its title gives its labels, value and
  // time and the series it belongs to.
  placeExemplars(u) {
    if (!u || !this.exLayer) return;
    const marks = [];
    const [x0, x1] = [u.scales.x.min, u.scales.x.max];
    for (const s of this.exemplars) {
      for (const e of s.exemplars) {
        const t = Number(e.timestamp), v = Number(e.value);
        if (!(t >= x0 && t <= x1) || !Number.isFinite(v)) continue;
        const left = u.valToPos(t, 'x'), top = u.valToPos(v, 'y');
        if (!(top >= 0 && top <= u.over.clientHeight)) continue;
        const lbls = Object.entries(e.labels || {}).map(([k, x]) => `${k}="${x}"`).join(', ');
        const mark = h('div.exemplar', {
          dataset: {time: String(t), value: String(v)},
          title: `exemplar {${lbls}}\nvalue ${this.fmtValue(v)} at ${fmt.time(t * 1000, this.utc)}\n${fmt.series(s.seriesLabels)}`,
        });
        // Through the CSSOM: the Content-Security-Policy refuses style attributes.
        mark.style.left = `${left}px`;
        mark.style.top = `${top}px`;
        marks.push(mark);
      }
    }
    replace(this.exLayer, marks);
    this.plotEl.dataset.exemplars = String(marks.length);
  }

  destroy() {
    this.resizer.disconnect();
    this.u.destroy();
  }

  buildLegend() {
    const items = this.result.map((s, i) => h('li', {
      tabindex: 0,
      dataset: {series: String(i + 1)},
      title: 'Click to show only this series, Ctrl/⌘-click to hide it',
      onclick: e => this.toggle(i + 1, e.ctrlKey || e.metaKey),
      onmouseenter: () => {
        if (!this.u.series[i + 1].show) return;
        this.legendHover = i + 1;
        this.u.setSeries(i + 1, {focus: true});
      },
      onmouseleave: () => { this.legendHover = null; this.u.setSeries(null, {focus: true}); },
      onkeydown: e => {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); this.toggle(i + 1, e.ctrlKey || e.metaKey); }
      },
    }, swatch(i), h('span.legend-label', fmt.series(s.metric)), STATS.map(k => h('span.num', {dataset: {stat: k}}))));
    replace(this.legend, items);
    this.fillStats();
  }

  // fillStats writes each series' min, max, mean and last value of the
  // samples in the range into the legend.
  fillStats() {
    [...this.legend.children].forEach((li, j) => {
      const st = stats(this.raw[j + 1] || []);
      for (const span of li.querySelectorAll('[data-stat]')) {
        const v = st[span.dataset.stat];
        span.textContent = v == null ? '—' : this.fmtValue(v);
        span.title = v == null ? '' : fmt.exact(v);
      }
    });
  }

  // highlight marks series i's legend row (null: none) and scrolls it into
  // the legend's view.
  highlight(i) {
    const rows = this.legend.children;
    for (const li of this.legend.querySelectorAll('li.focus')) li.classList.remove('focus');
    const li = i == null ? null : rows[i - 1];
    this.el.dataset.focus = li ? li.querySelector('.legend-label').textContent : '';
    if (!li) return;
    li.classList.add('focus');
    const box = this.legend.getBoundingClientRect(), row = li.getBoundingClientRect();
    if (row.top < box.top || row.bottom > box.bottom) {
      this.legend.scrollTop += row.top - box.top - (box.height - row.height) / 2;
    }
  }

  // toggle isolates series i, or with only set, hides or shows just it.
  // Isolating the only visible series shows them all again.
  toggle(i, only) {
    const u = this.u;
    const shown = u.series.map(s => s.show);
    const alone = shown.every((v, j) => j === 0 || (v === (j === i)));
    u.batch(() => {
      for (let j = 1; j < u.series.length; j++) {
        const show = only ? (j === i ? !shown[j] : shown[j]) : alone || j === i;
        if (show !== shown[j]) u.setSeries(j, {show});
      }
      if (this.mode === 'stacked') u.setData(this.plotted());
    });
    [...this.legend.children].forEach((li, j) => li.classList.toggle('off', !u.series[j + 1].show));
  }

  showTooltip(u) {
    const {idx, left, top} = u.cursor;
    if (idx == null || left < 0) { this.tooltip.hidden = true; return; }
    const y = u.posToVal(top, 'y');
    let rows = [];
    for (let i = 1; i < u.series.length; i++) {
      const v = this.raw[i][idx];
      const plotted = u.data[i][idx];
      if (u.series[i].show && v != null) rows.push({i, v, d: Math.abs(plotted - y)});
    }
    if (!rows.length) { this.tooltip.hidden = true; return; }
    const nearest = rows.reduce((a, b) => (b.d < a.d ? b : a));
    if (rows.length > 10) rows = rows.sort((a, b) => a.d - b.d).slice(0, 10);
    rows.sort((a, b) => b.v - a.v);
    replace(this.tooltip,
      h('div.tooltip-time', fmt.time(u.data[0][idx] * 1000, this.utc)),
      rows.map(r => h('div.tooltip-row', {class: r === nearest && 'nearest'},
        swatch(r.i - 1),
        h('span.tooltip-label', u.series[r.i].label),
        h('span.tooltip-value', {title: fmt.exact(r.v)}, this.fmtValue(r.v)))));
    this.tooltip.dataset.t = String(u.data[0][idx]); // the sample time, in Unix seconds
    this.tooltip.hidden = false;
    // Keep the box inside the plot: flip it left of the cursor near the edge.
    const box = this.tooltip.getBoundingClientRect();
    const x = left + 14 + box.width > u.over.clientWidth ? left - 14 - box.width : left + 14;
    const yy = Math.min(Math.max(top - box.height / 2, 0), Math.max(u.over.clientHeight - box.height, 0));
    this.tooltip.style.transform = `translate(${Math.max(x, 0)}px, ${yy}px)`;
  }
}

// fade gives a colour (hex or hsl) with alpha a.
function fade(c, a) {
  if (c.startsWith('#')) return c + Math.round(a * 255).toString(16).padStart(2, '0');
  return c.replace(')', ` / ${a})`);
}

function swatch(i) {
  const s = h('span.swatch');
  s.style.background = color(i);
  return s;
}
