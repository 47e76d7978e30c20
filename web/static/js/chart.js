// Line charts of range-query results, drawn on canvas by uPlot, with a
// legend (click to isolate, Ctrl/⌘-click to hide) and a hover tooltip.

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

// Chart draws one result. opts: step (seconds), height (px), onZoom(start,
// end) for a dragged selection, onFirstDraw() after the first paint.
export class Chart {
  constructor(el, result, {step, height = 280, onZoom, onFirstDraw} = {}) {
    this.el = el;
    this.result = result;
    this.plotEl = h('div.plot');
    this.tooltip = h('div.tooltip', {hidden: true});
    this.legend = h('ul.legend', {'aria-label': 'Series'});
    replace(el, this.plotEl, this.legend);

    const many = result.length > 30;
    const axis = {
      stroke: css('--fg-muted'),
      grid: {stroke: css('--grid'), width: 1},
      ticks: {stroke: css('--grid'), width: 1},
      font: '11px system-ui, sans-serif',
    };
    let drawn = false;
    const opts = {
      width: Math.max(el.clientWidth, 300),
      height,
      legend: {show: false},
      cursor: {
        sync: {key: 'strata'},
        focus: {prox: 24},
        drag: {x: true, y: false, setScale: false},
        points: {show: !many, size: 7},
      },
      focus: {alpha: 0.35},
      scales: {x: {time: true}},
      axes: [
        fmt.hour12 ? axis : {...axis, values: STAMPS_24H},
        {...axis, size: axisSize, values: (u, vals) => vals.map(fmt.short)},
      ],
      series: [
        {},
        ...result.map((s, i) => ({
          label: fmt.series(s.metric),
          stroke: color(i),
          width: many ? 1 : 1.5,
          points: {show: false},
          spanGaps: false,
        })),
      ],
      hooks: {
        draw: [() => {
          if (!drawn) { drawn = true; onFirstDraw?.(); }
        }],
        setCursor: [u => this.showTooltip(u)],
        setSelect: [u => {
          if (u.select.width > 4 && onZoom) {
            onZoom(u.posToVal(u.select.left, 'x'), u.posToVal(u.select.left + u.select.width, 'x'));
          }
          u.setSelect({left: 0, width: 0, top: 0, height: 0}, false);
        }],
      },
    };
    this.u = new uPlot(opts, align(result, step), this.plotEl);
    this.u.over.append(this.tooltip);
    this.buildLegend();
    this.resizer = new ResizeObserver(() => {
      const w = Math.max(this.el.clientWidth, 300);
      if (w !== this.u.width) this.u.setSize({width: w, height});
    });
    this.resizer.observe(el);
  }

  // sameSeries reports whether result has the series this chart draws, in
  // the same order.
  sameSeries(result) {
    return result.length === this.result.length &&
      result.every((s, i) => fmt.series(s.metric) === this.u.series[i + 1].label);
  }

  // update draws new data for the same series, keeping the legend's choices.
  update(result, step) {
    this.result = result;
    this.u.setData(align(result, step));
  }

  destroy() {
    this.resizer.disconnect();
    this.u.destroy();
  }

  buildLegend() {
    const items = this.result.map((s, i) => h('li', {
      tabindex: 0,
      title: 'Click to show only this series, Ctrl/⌘-click to hide it',
      onclick: e => this.toggle(i + 1, e.ctrlKey || e.metaKey),
      onkeydown: e => {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); this.toggle(i + 1, e.ctrlKey || e.metaKey); }
      },
    }, swatch(i), h('span.legend-label', fmt.series(s.metric))));
    replace(this.legend, items);
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
    });
    [...this.legend.children].forEach((li, j) => li.classList.toggle('off', !u.series[j + 1].show));
  }

  showTooltip(u) {
    const {idx, left, top} = u.cursor;
    if (idx == null || left < 0) { this.tooltip.hidden = true; return; }
    const y = u.posToVal(top, 'y');
    let rows = [];
    for (let i = 1; i < u.series.length; i++) {
      const v = u.data[i][idx];
      if (u.series[i].show && v != null) rows.push({i, v, d: Math.abs(v - y)});
    }
    if (!rows.length) { this.tooltip.hidden = true; return; }
    const nearest = rows.reduce((a, b) => (b.d < a.d ? b : a));
    if (rows.length > 10) rows = rows.sort((a, b) => a.d - b.d).slice(0, 10);
    rows.sort((a, b) => b.v - a.v);
    replace(this.tooltip,
      h('div.tooltip-time', fmt.time(u.data[0][idx] * 1000)),
      rows.map(r => h('div.tooltip-row', {class: r === nearest && 'nearest'},
        swatch(r.i - 1),
        h('span.tooltip-label', u.series[r.i].label),
        h('span.tooltip-value', fmt.value(r.v)))));
    this.tooltip.dataset.t = String(u.data[0][idx]); // the sample time, in Unix seconds
    this.tooltip.hidden = false;
    // Keep the box inside the plot: flip it left of the cursor near the edge.
    const box = this.tooltip.getBoundingClientRect();
    const x = left + 14 + box.width > u.over.clientWidth ? left - 14 - box.width : left + 14;
    const yy = Math.min(Math.max(top - box.height / 2, 0), Math.max(u.over.clientHeight - box.height, 0));
    this.tooltip.style.transform = `translate(${Math.max(x, 0)}px, ${yy}px)`;
  }
}

function swatch(i) {
  const s = h('span.swatch');
  s.style.background = color(i);
  return s;
}
