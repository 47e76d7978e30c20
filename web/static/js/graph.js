// The graph page: a time-range picker, a step, auto-refresh and any number
// of query panels. The whole state lives in the URL (so a link reproduces
// the view) and is remembered in localStorage for the next visit.

import {h, replace} from './dom.js';
import {Panel} from './panel.js';
import * as tr from './timerange.js';

const STORE_KEY = 'strata.graph';

// decode reads the page state from a query string:
// range=1h | from=<unix s>&to=<unix s>, step=15s, refresh=10s,
// g0.expr=…&g0.view=table&g1.expr=…
export function decode(qs) {
  const sp = new URLSearchParams(qs);
  const num = k => (sp.has(k) && sp.get(k) !== '' && Number.isFinite(Number(sp.get(k))) ? Number(sp.get(k)) : null);
  const st = {
    range: tr.RANGES.includes(sp.get('range')) || tr.parseDuration(sp.get('range')) > 0 ? sp.get('range') : '1h',
    from: num('from'),
    to: num('to'),
    step: sp.get('step') || '',
    refresh: tr.REFRESH.includes(sp.get('refresh')) ? sp.get('refresh') : 'off',
    panels: [],
  };
  if (st.from == null || st.to == null || st.to <= st.from) st.from = st.to = null;
  for (let i = 0; sp.has(`g${i}.expr`); i++) {
    st.panels.push({expr: sp.get(`g${i}.expr`), view: sp.get(`g${i}.view`) || 'chart'});
  }
  return st;
}

export function encode(st) {
  const sp = new URLSearchParams();
  if (st.from != null) { sp.set('from', String(st.from)); sp.set('to', String(st.to)); }
  else sp.set('range', st.range);
  if (st.step) sp.set('step', st.step);
  if (st.refresh !== 'off') sp.set('refresh', st.refresh);
  st.panels.forEach((p, i) => {
    sp.set(`g${i}.expr`, p.expr);
    if (p.view !== 'chart') sp.set(`g${i}.view`, p.view);
  });
  return sp.toString();
}

function initialState() {
  const fromURL = decode(location.search);
  if (fromURL.panels.length) return fromURL;
  let saved = null;
  try { saved = localStorage.getItem(STORE_KEY); } catch { /* storage may be off */ }
  const st = saved ? decode(saved) : fromURL;
  if (location.search.length > 1) { // the URL's range and refresh win over the saved ones
    Object.assign(st, {range: fromURL.range, from: fromURL.from, to: fromURL.to, step: fromURL.step, refresh: fromURL.refresh});
  }
  if (!st.panels.length) st.panels.push({expr: '', view: 'chart'});
  return st;
}

export function graphPage(root) {
  const st = initialState();
  const panelsEl = h('div.panels');
  const page = {
    bounds: () => tr.resolve(st),
    step: width => stepFor(width),
    changed: () => save(),
    remove: p => { panels.splice(panels.indexOf(p), 1); p.destroy(); save(); },
    zoom: (from, to) => { st.from = Math.floor(from); st.to = Math.ceil(to); syncControls(); save(); runAll(); },
  };
  let panels = st.panels.map(s => new Panel(s, page));

  // stepFor is the step in seconds: the one set, or one fitting the width.
  function stepFor(width) {
    const set = tr.parseDuration(st.step);
    if (set > 0) return set;
    const {start, end} = tr.resolve(st);
    return tr.autoStep(end - start, width || panelsEl.clientWidth || 1000);
  }

  function save() {
    st.panels = panels.map(p => p.state);
    const qs = encode(st);
    history.replaceState(null, '', `${location.pathname}?${qs}`);
    try { localStorage.setItem(STORE_KEY, qs); } catch { /* storage may be off */ }
  }

  // runAll queries every panel again; an auto-refresh leaves alone the
  // panels whose last query is still running.
  function runAll({refresh = false} = {}) {
    stepInput.placeholder = `auto (${tr.formatDuration(stepFor())})`;
    for (const p of panels) if (!(refresh && p.busy)) p.run();
  }

  // Controls.
  const rangeSel = h('select#range', {'aria-label': 'Time range', onchange: () => {
    if (rangeSel.value === 'custom') {
      const {start, end} = tr.resolve(st);
      fromInput.value = tr.toLocalInput(start);
      toInput.value = tr.toLocalInput(end);
      absBox.hidden = false;
      fromInput.focus();
      return;
    }
    st.range = rangeSel.value;
    st.from = st.to = null;
    syncControls(); save(); runAll();
  }}, tr.RANGES.map(r => h('option', {value: r}, `Last ${r}`)), h('option', {value: 'custom'}, 'Absolute…'));
  const fromInput = h('input#from', {type: 'datetime-local', step: 1, 'aria-label': 'From'});
  const toInput = h('input#to', {type: 'datetime-local', step: 1, 'aria-label': 'To'});
  const absBox = h('form.abs', {hidden: true, onsubmit: e => {
    e.preventDefault();
    const from = tr.fromLocalInput(fromInput.value), to = tr.fromLocalInput(toInput.value);
    if (from == null || to == null || to <= from) { absBox.classList.add('invalid'); return; }
    absBox.classList.remove('invalid');
    Object.assign(st, {from, to});
    syncControls(); save(); runAll();
  }}, fromInput, h('span.muted', '→'), toInput, h('button', {type: 'submit'}, 'Apply'));
  const stepInput = h('input#step', {type: 'text', size: 9, 'aria-label': 'Step', title: 'Query resolution, e.g. 15s or 1m; empty for one that fits the chart',
    onchange: () => {
      const v = stepInput.value.trim();
      const ok = !v || tr.parseDuration(v) > 0;
      stepInput.classList.toggle('invalid', !ok);
      if (!ok) return;
      st.step = v; save(); runAll();
    }});
  const refreshSel = h('select#refresh', {'aria-label': 'Auto-refresh', onchange: () => {
    st.refresh = refreshSel.value; save(); schedule();
  }}, tr.REFRESH.map(r => h('option', {value: r}, r === 'off' ? 'Refresh: off' : `Every ${r}`)));

  function syncControls() {
    const abs = st.from != null;
    rangeSel.value = abs ? 'custom' : st.range;
    if (!tr.RANGES.includes(st.range) && !abs) {
      rangeSel.append(h('option', {value: st.range}, `Last ${st.range}`));
      rangeSel.value = st.range;
    }
    absBox.hidden = !abs;
    if (abs) { fromInput.value = tr.toLocalInput(st.from); toInput.value = tr.toLocalInput(st.to); }
    stepInput.value = st.step;
    refreshSel.value = st.refresh;
  }

  let timer = null;
  function schedule() {
    clearInterval(timer);
    const every = tr.parseDuration(st.refresh);
    if (every > 0) timer = setInterval(() => { if (!document.hidden) runAll({refresh: true}); }, every * 1000);
  }

  const addButton = h('button.add', {type: 'button', onclick: () => {
    const p = new Panel({expr: '', view: 'chart'}, page);
    panels.push(p);
    panelsEl.append(p.el);
    save();
    p.run();
    p.editor.input.focus();
  }}, '+ Add panel');

  replace(root,
    h('div.toolbar',
      h('label.field', h('span', 'Range'), rangeSel), absBox,
      h('label.field', h('span', 'Step'), stepInput),
      refreshSel,
      h('button.primary', {type: 'button', onclick: () => runAll()}, 'Run all')),
    panelsEl,
    addButton);
  panelsEl.append(...panels.map(p => p.el));
  syncControls();
  save();
  runAll();
  schedule();
  // Charts read their colours from CSS: draw them again when the theme flips.
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => panels.forEach(p => p.render({fresh: true})));
}
