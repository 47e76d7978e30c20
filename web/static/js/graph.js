// The graph page: a time-range picker, a step, auto-refresh and any number
// of query panels. The whole state lives in the URL (so a link reproduces
// the view) and is remembered in localStorage for the next visit.

import {h, replace} from './dom.js';
import {Panel} from './panel.js';
import * as tr from './timerange.js';

const STORE_KEY = 'strata.graph';

// HEIGHTS are the chart heights offered; the URL may ask for any height
// between MIN_HEIGHT and MAX_HEIGHT.
export const HEIGHTS = [160, 280, 400, 600];
const DEFAULT_HEIGHT = 280, MIN_HEIGHT = 100, MAX_HEIGHT = 2000;

// decode reads the page state from a query string:
// range=1h | from=<unix s>&to=<unix s>, step=15s, refresh=10s, height=400,
// tz=utc, g0.expr=…&g0.view=table&g0.unit=bytes&g0.mode=stacked&g1.expr=…
//
// It also reads Prometheus' links: g0.range_input, g0.end_input (or
// g0.end, g0.moment_input), g0.step_input, g0.tab (0|graph = chart,
// 1|table|console = table), g0.stacked=1 and g0.display_mode
// (lines|stacked). The first panel that sets a range or an end sets the
// page's (unless range, from or to are in the link too); a later panel whose
// range or end differ keeps its own (g1.range=30m&g1.end=<unix s>).
export function decode(qs) {
  const sp = new URLSearchParams(qs);
  const num = k => (sp.has(k) && sp.get(k) !== '' && Number.isFinite(Number(sp.get(k))) ? Number(sp.get(k)) : null);
  const validRange = r => tr.RANGES.includes(r) || tr.parseDuration(r) > 0;
  const height = num('height');
  const st = {
    range: validRange(sp.get('range')) ? sp.get('range') : '1h',
    from: num('from'),
    to: num('to'),
    step: sp.get('step') || '',
    refresh: tr.REFRESH.includes(sp.get('refresh')) ? sp.get('refresh') : 'off',
    height: height != null ? Math.min(Math.max(Math.round(height), MIN_HEIGHT), MAX_HEIGHT) : DEFAULT_HEIGHT,
    tz: sp.get('tz') === 'utc' ? 'utc' : 'local',
    panels: [],
  };
  if (st.from == null || st.to == null || st.to <= st.from) st.from = st.to = null;
  const own = sp.has('range') || st.from != null;
  let promStep = null;
  const prom = []; // each panel's Prometheus range and end, or null
  for (let i = 0; sp.has(`g${i}.expr`); i++) {
    const g = k => sp.get(`g${i}.${k}`);
    const tab = g('tab');
    const stacked = g('stacked') === '1' || g('display_mode') === 'stacked';
    st.panels.push({
      expr: g('expr'),
      view: g('view') === 'table' || ['1', 'table', 'console'].includes(tab) ? 'table' : 'chart',
      unit: g('unit') || '',
      mode: g('mode') || (stacked ? 'stacked' : 'lines'),
      title: g('title') || '',
      range: validRange(g('range')) ? g('range') : '',
      end: validRange(g('range')) ? tr.parseTime(g('end')) : null,
    });
    const range = validRange(g('range_input')) ? g('range_input') : null;
    const end = tr.parseTime(g('end_input') ?? g('moment_input') ?? (validRange(g('range')) ? null : g('end')));
    prom.push(range != null || end != null ? {range: range ?? '1h', end} : null);
    if (promStep == null && tr.parseDuration(g('step_input')) > 0) promStep = g('step_input');
  }
  const first = prom.find(Boolean);
  if (!own && first) {
    if (first.end != null) { st.from = first.end - tr.parseDuration(first.range); st.to = first.end; }
    else st.range = first.range;
    prom.forEach((p, i) => {
      if (p && (p.range !== first.range || p.end !== first.end)) Object.assign(st.panels[i], {range: p.range, end: p.end});
    });
  }
  if (!st.step && promStep != null) st.step = promStep;
  return st;
}

export function encode(st) {
  const sp = new URLSearchParams();
  if (st.from != null) { sp.set('from', String(st.from)); sp.set('to', String(st.to)); }
  else sp.set('range', st.range);
  if (st.step) sp.set('step', st.step);
  if (st.refresh !== 'off') sp.set('refresh', st.refresh);
  if (st.height && st.height !== DEFAULT_HEIGHT) sp.set('height', String(st.height));
  if (st.tz === 'utc') sp.set('tz', 'utc');
  st.panels.forEach((p, i) => {
    sp.set(`g${i}.expr`, p.expr);
    if (p.view !== 'chart') sp.set(`g${i}.view`, p.view);
    if (p.unit) sp.set(`g${i}.unit`, p.unit);
    if (p.mode && p.mode !== 'lines') sp.set(`g${i}.mode`, p.mode);
    if (p.title) sp.set(`g${i}.title`, p.title);
    if (p.range) sp.set(`g${i}.range`, p.range);
    if (p.range && p.end != null) sp.set(`g${i}.end`, String(p.end));
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
    const {range, from, to, step, refresh, height, tz} = fromURL;
    Object.assign(st, {range, from, to, step, refresh, height, tz});
  }
  if (!st.panels.length) st.panels.push({expr: '', view: 'chart'});
  return st;
}

// graphPage draws the graph page in root. A saved dashboard (dashboards.js)
// uses it too, through dash: initial(fromURL) → the state to start from,
// header → an element shown above the controls, search() → its own URL
// parameters (id=, var-…=), expand(expr, step, bounds) → the query to run,
// and changed() after a panel changed. It returns what the dashboard needs
// to save: state() → the page's state with every panel's, runAll(), and
// addPanel(state).
export function graphPage(root, dash = null) {
  const st = dash ? dash.initial(decode(location.search)) : initialState();
  const panelsEl = h('div.panels', {class: dash && 'grid'});
  let zooms = 0; // history entries this page pushed for zooms, for Back
  const page = {
    bounds: () => tr.resolve(st),
    step: (width, span) => stepFor(width, span),
    height: () => st.height,
    utc: () => st.tz === 'utc',
    expand: dash ? (expr, step, bounds) => dash.expand(expr, step, bounds) : null,
    editTitles: Boolean(dash),
    changed: () => { save(); dash?.changed(); },
    remove: p => { panels.splice(panels.indexOf(p), 1); p.destroy(); save(); dash?.changed(); },
    zoom: (from, to) => setRange(Math.floor(from), Math.ceil(to)),
  };

  // setRange shows [from, to] and remembers the range it leaves in the
  // browser's history, so Back (the page's or the browser's) returns to it.
  function setRange(from, to) {
    st.from = from; st.to = to;
    zooms++;
    save({push: true});
    syncControls(); runAll();
  }

  function zoomOut() {
    const {start, end} = tr.resolve(st);
    const half = end - start, now = Date.now() / 1000;
    let to = Math.ceil(end + half / 2), from = Math.floor(start - half / 2);
    if (to > now) { from -= to - Math.ceil(now); to = Math.ceil(now); }
    setRange(from, to);
  }

  addEventListener('popstate', () => {
    const back = decode(location.search);
    zooms = Math.max(0, zooms - 1);
    Object.assign(st, {range: back.range, from: back.from, to: back.to});
    syncControls(); save(); runAll();
  });
  let panels = st.panels.map(s => new Panel(s, page));

  // stepFor is the step in seconds: the one set, or one fitting the width.
  // span is the panel's own range, when it has one.
  function stepFor(width, span) {
    const set = tr.parseDuration(st.step);
    if (set > 0) return set;
    const {start, end} = tr.resolve(st);
    return tr.autoStep(span || end - start, width || panelsEl.clientWidth || 1000);
  }

  function save({push = false} = {}) {
    st.panels = panels.map(p => p.state);
    const qs = dash ? [dash.search(), encode({...st, panels: []})].filter(Boolean).join('&') : encode(st);
    if (push) history.pushState(null, '', `${location.pathname}?${qs}`);
    else history.replaceState(null, '', `${location.pathname}?${qs}`);
    if (dash) return;
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
      fromInput.value = tr.toLocalInput(start, st.tz === 'utc');
      toInput.value = tr.toLocalInput(end, st.tz === 'utc');
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
    const from = tr.fromLocalInput(fromInput.value, st.tz === 'utc'), to = tr.fromLocalInput(toInput.value, st.tz === 'utc');
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
  const heightSel = h('select#height', {'aria-label': 'Chart height', title: 'Chart height', onchange: () => {
    st.height = Number(heightSel.value); save(); panels.forEach(p => p.render({fresh: true}));
  }}, HEIGHTS.map(n => h('option', {value: String(n)}, `${n} px`)));
  const tzSel = h('select#tz', {'aria-label': 'Time zone', title: 'Time zone of the axes, tooltips and tables', onchange: () => {
    st.tz = tzSel.value; syncControls(); save(); panels.forEach(p => p.render({fresh: true}));
  }}, h('option', {value: 'local'}, 'Local time'), h('option', {value: 'utc'}, 'UTC'));
  const backButton = h('button#back', {type: 'button', title: 'Back to the range before the last zoom', onclick: () => history.back()}, '← Back');
  const zoomOutButton = h('button#zoom-out', {type: 'button', title: 'Show twice the time range', onclick: () => zoomOut()}, 'Zoom out');
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
    if (abs) { fromInput.value = tr.toLocalInput(st.from, st.tz === 'utc'); toInput.value = tr.toLocalInput(st.to, st.tz === 'utc'); }
    stepInput.value = st.step;
    refreshSel.value = st.refresh;
    if (!HEIGHTS.includes(st.height) && !heightSel.querySelector(`option[value="${st.height}"]`)) {
      heightSel.append(h('option', {value: String(st.height)}, `${st.height} px`));
    }
    heightSel.value = String(st.height);
    tzSel.value = st.tz;
    backButton.disabled = zooms === 0;
  }

  let timer = null;
  function schedule() {
    clearInterval(timer);
    const every = tr.parseDuration(st.refresh);
    if (every > 0) timer = setInterval(() => { if (!document.hidden) runAll({refresh: true}); }, every * 1000);
  }

  function addPanel(state) {
    const p = new Panel(state, page);
    panels.push(p);
    panelsEl.append(p.el);
    save();
    p.run();
    return p;
  }
  const addButton = h('button.add', {type: 'button', onclick: () => {
    addPanel({expr: '', view: 'chart'}).editor.input.focus();
    dash?.changed();
  }}, '+ Add panel');

  replace(root,
    dash?.header,
    h('div.toolbar',
      h('label.field', h('span', 'Range'), rangeSel), absBox,
      zoomOutButton, backButton,
      h('label.field', h('span', 'Step'), stepInput),
      h('label.field', h('span', 'Height'), heightSel),
      tzSel,
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
  return {
    state: () => { save(); return st; },
    runAll: () => runAll(),
    addPanel,
  };
}
