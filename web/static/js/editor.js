// The PromQL editor: a textarea with autocomplete for metric names, label
// names and label values (from the label API), functions and keywords.
// Enter runs the query, Shift+Enter starts a new line.

import {h, replace} from './dom.js';
import * as api from './api.js';
import {legacyMetric, legacyLabel} from './format.js';

const FUNCTIONS = [
  'abs', 'absent', 'absent_over_time', 'avg_over_time', 'ceil', 'changes', 'clamp', 'clamp_max', 'clamp_min',
  'count_over_time', 'day_of_month', 'day_of_week', 'delta', 'deriv', 'exp', 'floor', 'histogram_quantile',
  'holt_winters', 'hour', 'idelta', 'increase', 'irate', 'label_join', 'label_replace', 'last_over_time', 'ln',
  'log10', 'log2', 'max_over_time', 'min_over_time', 'minute', 'month', 'predict_linear', 'present_over_time',
  'quantile_over_time', 'rate', 'resets', 'round', 'scalar', 'sgn', 'sort', 'sort_desc', 'sqrt',
  'stddev_over_time', 'stdvar_over_time', 'sum_over_time', 'time', 'timestamp', 'vector', 'year',
];
const AGGREGATIONS = ['avg', 'bottomk', 'count', 'count_values', 'group', 'max', 'min', 'quantile', 'stddev', 'stdvar', 'sum', 'topk'];
const KEYWORDS = ['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless'];
const MAX_ITEMS = 40;

// unquote reads the inside of a PromQL double-quoted string.
function unquote(s) {
  if (s == null) return undefined;
  try { return JSON.parse(`"${s}"`); } catch { return s; }
}

// context reads what is being typed at the caret: a metric-like word, a
// label name inside {} or by(), a quoted (UTF-8) name inside {}, or a label
// value inside quotes. quoted says the caret is inside an open quote.
export function context(before) {
  // Inside a label value: {name="abc or {"service.name"="abc
  const value = before.match(/(?:([a-zA-Z_]\w*)|"((?:[^"\\]|\\.)*)")\s*(?:=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)$/);
  const brace = openBrace(before);
  if (brace >= 0) {
    const inner = before.slice(brace);
    const metric = (before.slice(0, brace).match(/([a-zA-Z_:][\w:]*)\s*$/) || [])[1] ||
      unquote((inner.match(/^\{\s*"((?:[^"\\]|\\.)*)"\s*[,}]/) || [])[1]) ||
      (inner.match(/__name__\s*=\s*"([^"]+)"/) || [])[1] || '';
    if (value) return {kind: 'value', label: value[1] ?? unquote(value[2]), prefix: value[3], metric};
    // A quoted name: {"http.se is a metric or a label name, , "service.na
    // a label name.
    const quoted = inner.match(/([{,])\s*"((?:[^"\\]|\\.)*)$/);
    if (quoted) return {kind: quoted[1] === '{' ? 'name-or-label' : 'label', quoted: true, prefix: unquote(quoted[2]), metric};
    const name = inner.match(/[{,]\s*([a-zA-Z_]\w*)?$/);
    if (name) return {kind: 'label', prefix: name[1] || '', metric};
    return null;
  }
  if (/\b(by|without|on|ignoring|group_left|group_right)\s*\(([\w\s,]*,\s*)?\s*(\w*)$/.test(before)) {
    return {kind: 'label', prefix: before.match(/(\w*)$/)[1], metric: ''};
  }
  if (openCount(before, '[', ']') > 0 || (before.split('"').length - 1) % 2) return null;
  // Dots too: typing http.server finds http.server.duration, which
  // accept() writes as {"http.server.duration"}.
  const word = before.match(/(^|[^\w:.])([a-zA-Z_:][\w:.]*)$/);
  return word ? {kind: 'name', prefix: word[2]} : null;
}

// openBrace returns the index of the { left open at the end of s, or -1.
function openBrace(s) {
  const open = [];
  let inStr = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (c === '{') open.push(i);
    else if (c === '}') open.pop();
  }
  return open.length ? open[open.length - 1] : -1;
}

function openCount(s, open, close) {
  return s.split(open).length - s.split(close).length;
}

// rank keeps the words matching prefix: prefix matches first, then words
// containing it, each group sorted.
export function rank(words, prefix) {
  const p = prefix.toLowerCase();
  const starts = [], contains = [];
  for (const w of words) {
    const l = w.toLowerCase();
    if (l === p) continue;
    if (l.startsWith(p)) starts.push(w);
    else if (p && l.includes(p)) contains.push(w);
  }
  return [...starts.sort(), ...contains.sort()].slice(0, MAX_ITEMS);
}

// Editor wraps a textarea. onRun is called with the expression.
export class Editor {
  constructor({value = '', onRun, placeholder = 'Enter a PromQL expression'}) {
    this.onRun = onRun;
    this.items = [];
    this.active = 0;
    this.seq = 0;
    this.input = h('textarea.expr', {
      rows: 1, spellcheck: false, autocapitalize: 'off', autocomplete: 'off', placeholder,
      'aria-label': 'PromQL expression', 'aria-autocomplete': 'list',
      oninput: () => { this.grow(); this.suggest(); },
      onkeydown: e => this.key(e),
      onblur: () => setTimeout(() => this.close(), 150),
      onclick: () => this.suggest(),
    });
    this.input.value = value;
    this.list = h('ul.ac', {role: 'listbox', hidden: true});
    this.el = h('div.editor', this.input, this.list);
    queueMicrotask(() => this.grow());
  }

  get value() { return this.input.value; }

  set value(v) { this.input.value = v; this.grow(); }

  grow() {
    this.input.style.height = 'auto';
    this.input.style.height = `${this.input.scrollHeight + 2}px`;
  }

  key(e) {
    const open = !this.list.hidden && this.items.length;
    if (open && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
      e.preventDefault();
      this.highlight(this.active + (e.key === 'ArrowDown' ? 1 : -1));
    } else if (open && (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey))) {
      e.preventDefault();
      this.accept(this.items[this.active]);
    } else if (e.key === 'Escape') {
      this.close();
    } else if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      this.close();
      this.onRun?.(this.value);
    }
  }

  async suggest() {
    const seq = ++this.seq;
    const caret = this.input.selectionStart;
    const ctx = context(this.value.slice(0, caret));
    if (!ctx) return this.close();
    let words = [], kinds;
    try {
      if (ctx.kind === 'value') {
        words = await api.labelValues(ctx.label, ctx.metric);
        kinds = () => 'value';
      } else if (ctx.kind === 'label') {
        words = await api.labelNames(ctx.metric);
        kinds = () => 'label';
      } else if (ctx.kind === 'name-or-label') {
        const [metrics, names] = await Promise.all([api.metricNames(), api.labelNames('')]);
        words = [...new Set([...metrics, ...names])];
        const ms = new Set(metrics);
        kinds = w => (ms.has(w) ? 'metric' : 'label');
      } else {
        const [metrics, md] = await Promise.all([api.metricNames(), api.metadata().catch(() => ({}))]);
        this.md = md;
        const fns = new Set([...FUNCTIONS, ...AGGREGATIONS]);
        words = [...metrics, ...fns, ...KEYWORDS];
        const ms = new Set(metrics);
        kinds = w => (ms.has(w) ? 'metric' : fns.has(w) ? 'function' : 'keyword');
      }
    } catch {
      return this.close(); // autocomplete is a help: a failed lookup shows nothing
    }
    if (seq !== this.seq) return; // a newer keystroke has asked again
    const matches = rank(words, ctx.prefix);
    if (!matches.length || (ctx.kind === 'name' && !ctx.prefix)) return this.close();
    this.ctx = ctx;
    this.items = matches.map(text => ({text, kind: kinds(text)}));
    const md = this.md || {};
    replace(this.list, this.items.map((it, i) => {
      // A metric's type, unit and help from /api/v1/metadata, when a
      // sender gave them.
      const m = it.kind === 'metric' ? familyMetadata(md, it.text) : null;
      return h('li', {
        role: 'option',
        title: m?.help || undefined,
        onmousedown: e => { e.preventDefault(); this.accept(this.items[i]); },
      }, h('span.ac-main', h('span.ac-text', it.text), m?.help ? h('span.ac-help', m.help) : null),
      h('span.ac-kind', m ? [m.type || 'metric', m.unit ? ` · ${m.unit}` : ''].join('') : it.kind));
    }));
    this.list.hidden = false;
    this.highlight(0);
  }

  highlight(i) {
    const n = this.items.length;
    this.active = (i + n) % n;
    [...this.list.children].forEach((li, j) => li.setAttribute('aria-selected', j === this.active));
    this.list.children[this.active]?.scrollIntoView({block: 'nearest'});
  }

  // accept replaces the word being typed with item. A metric or label
  // name that PromQL does not take bare is written quoted: a metric name
  // as {"http.server.duration"} (inside braces already, "…"), a label
  // name as "service.name".
  accept(item) {
    const caret = this.input.selectionStart;
    const v = this.value;
    const quote = s => JSON.stringify(s);
    let start = caret - this.ctx.prefix.length;
    let insert = item.text;
    if (this.ctx.quoted) {
      // Replace the whole open quote, which may hold escapes.
      start = v.slice(0, caret).lastIndexOf('"');
      insert = quote(item.text);
    }
    const inBraces = openBrace(v.slice(0, start)) >= 0;
    if (item.kind === 'value') {
      insert = item.text.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
      if (v[caret] !== '"') insert += '"';
    } else if (item.kind === 'metric' && !legacyMetric(item.text) && !this.ctx.quoted) {
      insert = inBraces ? quote(item.text) : `{${quote(item.text)}}`;
    } else if (item.kind === 'label') {
      if (!legacyLabel(item.text)) insert = quote(item.text);
      if (inBraces && !/^\s*(=|!=|=~|!~)/.test(v.slice(caret))) insert += '="';
    } else if (item.kind === 'function' && v[caret] !== '(') {
      insert += '(';
    }
    this.input.setRangeText(insert, start, caret, 'end');
    this.input.focus();
    this.grow();
    this.close();
    if (insert.endsWith('="')) this.suggest(); // go straight on to the values
  }

  close() {
    this.seq++;
    this.list.hidden = true;
    this.items = [];
  }
}

// familyMetadata finds the metadata of metric name: its own family's, or
// that of the family it is a _bucket, _sum, _count, _total or _created
// series of.
export function familyMetadata(md, name) {
  const own = md[name]?.[0];
  if (own) return own;
  const m = name.match(/^(.*)_(bucket|sum|count|total|created)$/);
  return m ? md[m[1]]?.[0] || null : null;
}
