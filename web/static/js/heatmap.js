// A heatmap of native histograms over time: one row per bucket (every
// bucket any histogram of the answer has, in order of their bounds), one
// column per step, each cell's colour the bucket's rate (or value) summed
// over the answer's series. Drawn on a canvas, no dependency.

import {h} from './dom.js';
import * as fmt from './format.js';

// isRate tells whether expr already answers rates (rate, irate, increase,
// or a sum of them): its bucket values are drawn as they are. Otherwise
// the histograms are counters, and a cell is the bucket's increase over
// the step before, per second.
export function isRate(expr) {
  return /\b(rate|irate|increase|delta|idelta|deriv)\s*\(/.test(expr);
}

// grid sums the buckets of every series' histograms per time and bucket.
// It returns the times (s), the buckets ([lower, upper] numbers, sorted)
// and cells[time][bucket] (0 where there is none).
export function grid(series, counters) {
  const times = [...new Set(series.flatMap(s => (s.histograms || []).map(([t]) => t)))].sort((a, b) => a - b);
  const ti = new Map(times.map((t, i) => [t, i]));
  const keys = new Map(); // "lo hi" → [lo, hi]
  for (const s of series) {
    for (const [, hist] of s.histograms || []) {
      for (const [, lo, hi] of hist.buckets || []) keys.set(`${lo} ${hi}`, [Number(lo), Number(hi)]);
    }
  }
  const buckets = [...keys.entries()].sort((a, b) => a[1][0] - b[1][0] || a[1][1] - b[1][1]);
  const bi = new Map(buckets.map(([k], i) => [k, i]));
  const cells = times.map(() => new Float64Array(buckets.length));
  for (const s of series) {
    let prev = null; // the previous histogram's counts by bucket, and time
    for (const [t, hist] of s.histograms || []) {
      const counts = new Map((hist.buckets || []).map(([, lo, hi, c]) => [`${lo} ${hi}`, Number(c)]));
      const row = cells[ti.get(t)];
      if (!counters) {
        for (const [k, c] of counts) row[bi.get(k)] += c;
        continue;
      }
      if (prev) {
        const dt = t - prev.t;
        // A count that went down is a counter reset: the bucket counts
        // anew from zero.
        const reset = Number(hist.count) < prev.count;
        for (const [k, c] of counts) {
          const before = reset ? 0 : (prev.counts.get(k) || 0);
          row[bi.get(k)] += Math.max(0, c - before) / dt;
        }
      }
      prev = {t, counts, count: Number(hist.count)};
    }
  }
  return {times, buckets: buckets.map(([, b]) => b), cells};
}

// Heatmap draws grid(series) into box. range is [start, end] in seconds.
export class Heatmap {
  constructor(box, series, {expr, step, range, height = 280, utc = false}) {
    const counters = !isRate(expr);
    const g = grid(series, counters);
    let max = 0;
    let filled = 0;
    for (const row of g.cells) {
      for (const v of row) {
        if (v > 0) filled++;
        if (v > max) max = v;
      }
    }
    this.canvas = h('canvas.heatmap', {
      role: 'img',
      'aria-label': `Heatmap of ${g.buckets.length} buckets over ${g.times.length} steps`,
      dataset: {buckets: String(g.buckets.length), cells: String(filled), steps: String(g.times.length),
        kind: counters ? 'rate' : 'value', max: String(max)},
    });
    this.legend = h('p.heatmap-legend.muted',
      `${counters ? 'Bucket rates (increase per second, summed over the series)' : 'Bucket values (summed over the series)'}: `,
      `${g.buckets.length} buckets, darkest ${fmt.value(max)}${counters ? '/s' : ''}.`);
    box.append(this.canvas, this.legend);
    this.draw(g, max, step, range, height, utc);
  }

  draw(g, max, step, [start, end], height, utc) {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const width = c.parentElement.clientWidth || 600;
    c.width = width * dpr;
    c.height = height * dpr;
    c.style.width = `${width}px`; // a property, not an attribute: the CSP allows it
    c.style.height = `${height}px`;
    const ctx = c.getContext('2d');
    ctx.scale(dpr, dpr);
    const css = getComputedStyle(c);
    const fg = css.getPropertyValue('--fg-muted').trim() || '#5b6572';
    const left = 90;
    const bottom = 22;
    const plotW = width - left - 8;
    const plotH = height - bottom - 4;
    const n = g.buckets.length;
    if (!n || end <= start) return;
    const rowH = plotH / n;
    const x = t => left + (t - start) / (end - start) * plotW;
    const colW = Math.max(1, plotW * step / (end - start));
    for (const [i, t] of g.times.entries()) {
      const row = g.cells[i];
      for (let b = 0; b < n; b++) {
        if (!(row[b] > 0)) continue;
        // Square root: a few busy buckets should not wash out the rest.
        const f = Math.sqrt(row[b] / max);
        ctx.fillStyle = `hsl(${220 - 180 * f}, 80%, ${88 - 50 * f}%)`;
        // Whole pixels, a little wide: no hairline gaps between columns.
        const x0 = Math.floor(x(t) - colW / 2);
        ctx.fillRect(x0, 4 + (n - 1 - b) * rowH, Math.ceil(colW) + 1, Math.max(1, rowH));
      }
    }
    // Bucket bounds on the left, at most one label per 14 px.
    ctx.fillStyle = fg;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    const every = Math.max(1, Math.ceil(14 / rowH));
    for (let b = 0; b < n; b += every) {
      ctx.fillText(`≤ ${fmt.short(g.buckets[b][1])}`, left - 6, 4 + (n - 1 - b + 0.5) * rowH);
    }
    ctx.textBaseline = 'top';
    ctx.textAlign = 'left';
    ctx.fillText(fmt.time(start * 1000, utc), left, height - bottom + 6);
    ctx.textAlign = 'right';
    ctx.fillText(fmt.time(end * 1000, utc), width - 8, height - bottom + 6);
  }

  destroy() {
    this.canvas.remove();
    this.legend.remove();
  }
}
