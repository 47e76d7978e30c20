// Saved dashboards: named sets of panels kept by the server
// (/api/v1/dashboards), with variables filled from label values. /dashboards
// lists them and imports JSON (Strata's own, or Grafana's);
// /dashboards?id=<id> shows one, with the graph page's controls, and its URL
// (range, var-<name>=) is the link to share.

import {h, replace, errorBox} from './dom.js';
import * as api from './api.js';
import * as fmt from './format.js';
import {graphPage} from './graph.js';
import {fromGrafana, isGrafana} from './grafana.js';

const ALL = 'All';

// expand fills the variables into expr: $name, ${name}, ${name:format} and
// [[name]] become the chosen value ("All" becomes .*, for =~ matchers), and
// Grafana's $__interval, $__rate_interval and $__range become durations of
// the query's step and range.
export function expand(expr, values, step, bounds) {
  const builtin = {
    __interval: `${step}s`,
    __interval_ms: `${step * 1000}`,
    __rate_interval: `${Math.max(4 * step, 60)}s`,
    __range: `${Math.round(bounds.end - bounds.start)}s`,
    __range_s: `${Math.round(bounds.end - bounds.start)}`,
  };
  const value = name => {
    if (name in builtin) return builtin[name];
    if (!(name in values)) return null;
    return values[name] === ALL ? '.*' : values[name];
  };
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (m, a, b, c) => value(a || b || c) ?? m);
}

// slug makes an id from a title: "Node exporter (full)" → node-exporter-full.
export function slug(title) {
  return String(title).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64) || 'dashboard';
}

// normalise checks a Strata dashboard document and fills in defaults.
export function normalise(doc) {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('a dashboard is a JSON object');
  if (!Array.isArray(doc.panels)) throw new Error('a dashboard needs "panels": [{"expr": …}, …]');
  return {
    title: String(doc.title || 'Untitled'),
    range: doc.range || '',
    height: doc.height || undefined,
    variables: (doc.variables || []).filter(v => v && /^\w+$/.test(v.name || '')),
    panels: doc.panels.filter(p => p && typeof p.expr === 'string').map(p => ({
      title: p.title || '', expr: p.expr, view: p.view || 'chart', unit: p.unit || '', mode: p.mode || 'lines', width: p.width || 24,
    })),
  };
}

export function dashboardsPage(root) {
  const id = new URLSearchParams(location.search).get('id');
  if (id) return showDashboard(root, id);
  return listPage(root);
}

// importDoc turns pasted or uploaded JSON into a Strata dashboard:
// {doc, skipped}.
export function importDoc(text) {
  let raw;
  try { raw = JSON.parse(text); } catch (e) { throw new Error(`not JSON: ${e.message}`); }
  if (isGrafana(raw)) {
    const {doc, skipped} = fromGrafana(raw);
    return {doc: normalise(doc), skipped, grafana: true};
  }
  return {doc: normalise(raw), skipped: [], grafana: false};
}

function listPage(root) {
  const list = h('div.dash-list', h('p.muted', 'Loading…'));
  const text = h('textarea#import-text.import-text', {rows: 8, placeholder: 'Paste a dashboard as JSON: Strata\'s own export, or a Grafana dashboard', 'aria-label': 'Dashboard JSON'});
  const file = h('input#import-file', {type: 'file', accept: '.json,application/json', 'aria-label': 'Dashboard file', onchange: async () => {
    if (file.files[0]) text.value = await file.files[0].text();
  }});
  const idInput = h('input#import-id', {type: 'text', placeholder: 'id (from the title)', size: 24, 'aria-label': 'Dashboard id'});
  const report = h('div.import-report');
  const newTitle = h('input#new-title', {type: 'text', placeholder: 'Name of the new dashboard', size: 32, 'aria-label': 'New dashboard name'});

  async function create(doc, idHint) {
    const newID = slug(idHint || doc.title);
    await api.call('PUT', `/api/v1/dashboards/${encodeURIComponent(newID)}`, doc);
    return newID;
  }

  replace(root,
    h('div.page-head', h('h1', 'Dashboards')),
    h('div.dash-grid',
      h('section.card', h('h2', 'Saved on this server'), list),
      h('section.card',
        h('h2', 'New dashboard'),
        h('form.dash-new', {onsubmit: async e => {
          e.preventDefault();
          const title = newTitle.value.trim() || 'Untitled';
          try {
            const newID = await create({title, panels: [{expr: '', title: ''}], variables: []});
            location.href = `/dashboards?id=${encodeURIComponent(newID)}`;
          } catch (err) { replace(report, errorBox(err)); }
        }}, newTitle, h('button.primary', {type: 'submit'}, 'Create')),
        h('h2.import-head', 'Import JSON'),
        h('form.dash-import', {onsubmit: async e => {
          e.preventDefault();
          let got;
          try { got = importDoc(text.value); } catch (err) { return replace(report, errorBox({type: 'import', message: err.message})); }
          try {
            const newID = await create(got.doc, idInput.value.trim());
            replace(report,
              h('p.import-ok', `Imported "${got.doc.title}" as `, h('a', {href: `/dashboards?id=${encodeURIComponent(newID)}`}, newID),
                `: ${got.doc.panels.length} panels${got.grafana ? ' from a Grafana dashboard' : ''}.`),
              got.skipped.length ? h('div.import-skipped',
                h('p', 'Not imported (unsupported):'),
                h('ul', got.skipped.map(s => h('li', h('strong', s.title || '(untitled)'), ` — ${s.type}: ${s.why}`)))) : null);
            load();
          } catch (err) { replace(report, errorBox(err)); }
        }}, text, h('div.dash-import-row', file, idInput, h('button.primary', {type: 'submit'}, 'Import'))),
        report)));

  async function load() {
    try {
      const r = await api.get('/api/v1/dashboards');
      if (!r.data.length) return replace(list, h('p.muted', 'None yet: create one, or import one on the right.'));
      replace(list, h('table.dashboards', h('thead', h('tr', h('th', 'Name'), h('th', 'Id'), h('th', 'Saved'))),
        h('tbody', r.data.map(d => h('tr',
          h('td', h('a', {href: `/dashboards?id=${encodeURIComponent(d.id)}`}, d.title || d.id)),
          h('td.key', d.id),
          h('td.time', fmt.time(Date.parse(d.updated))))))));
    } catch (err) { replace(list, errorBox(err)); }
  }
  load();
}

async function showDashboard(root, id) {
  let doc;
  try {
    doc = normalise((await api.get(`/api/v1/dashboards/${encodeURIComponent(id)}`)).data);
  } catch (err) {
    return replace(root, h('div.page-head', h('h1', 'Dashboard'), h('a', {href: '/dashboards'}, 'All dashboards')), errorBox(err));
  }
  const sp = new URLSearchParams(location.search);
  const values = {}; // variable name → chosen value
  for (const v of doc.variables) values[v.name] = sp.get(`var-${v.name}`) ?? v.value ?? '';

  const titleInput = h('input#dash-title.dash-title', {type: 'text', value: doc.title, 'aria-label': 'Dashboard name', oninput: () => changed()});
  const status = h('span.dash-status.muted');
  const exportBox = h('textarea#export-text.import-text', {rows: 10, readOnly: true, hidden: true, 'aria-label': 'Dashboard JSON'});
  const varsEl = h('div.variables');
  let graph;
  let dirty = false;
  function changed() { dirty = true; status.textContent = 'Unsaved changes'; }

  function current() {
    const st = graph.state();
    return {
      title: titleInput.value.trim() || 'Untitled',
      range: st.from == null ? st.range : doc.range,
      height: st.height,
      variables: doc.variables.map(v => ({...v, value: values[v.name]})),
      panels: st.panels.map(p => ({title: p.title, expr: p.expr, view: p.view, unit: p.unit, mode: p.mode, width: p.width})),
    };
  }

  const header = h('div.dash-head',
    h('div.page-head',
      h('a.muted', {href: '/dashboards'}, 'Dashboards /'), titleInput,
      h('button.primary#dash-save', {type: 'button', onclick: async () => {
        try {
          doc = current();
          await api.call('PUT', `/api/v1/dashboards/${encodeURIComponent(id)}`, doc);
          dirty = false;
          status.textContent = `Saved ${fmt.time(Date.now())}`;
        } catch (err) { status.replaceChildren(errorBox(err)); }
      }}, 'Save'),
      h('button#dash-export', {type: 'button', onclick: () => {
        const json = JSON.stringify(current(), null, 2);
        exportBox.value = json;
        exportBox.hidden = false;
        const a = h('a', {href: URL.createObjectURL(new Blob([json], {type: 'application/json'})), download: `${id}.json`});
        a.click();
        setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
      }}, 'Export JSON'),
      h('button#dash-delete', {type: 'button', onclick: async () => {
        if (!confirm(`Delete the dashboard "${doc.title}"?`)) return;
        try {
          await api.call('DELETE', `/api/v1/dashboards/${encodeURIComponent(id)}`);
          location.href = '/dashboards';
        } catch (err) { status.replaceChildren(errorBox(err)); }
      }}, 'Delete'),
      status),
    varsEl, exportBox);

  graph = graphPage(root, {
    header,
    initial: fromURL => {
      const own = sp.has('range') || fromURL.from != null;
      return {
        ...fromURL,
        range: own || !doc.range ? fromURL.range : doc.range,
        height: sp.has('height') || !doc.height ? fromURL.height : doc.height,
        panels: doc.panels.length ? doc.panels.map(p => ({...p})) : [{expr: '', view: 'chart'}],
      };
    },
    search: () => {
      const q = new URLSearchParams({id});
      for (const v of doc.variables) q.set(`var-${v.name}`, values[v.name] ?? '');
      return q.toString();
    },
    expand: (expr, step, bounds) => expand(expr, values, step, bounds),
    changed,
  });
  addEventListener('beforeunload', e => { if (dirty) e.preventDefault(); });

  // Variables: a select each, with the label's values (of the matching
  // series), or the fixed options, as choices.
  function addVariable(v) {
    const sel = h('select', {dataset: {var: v.name}, 'aria-label': `$${v.name}`, onchange: () => {
      values[v.name] = sel.value;
      graph.state(); // the URL carries the choice
      graph.runAll();
    }});
    varsEl.insertBefore(h('label.field.variable', h('span', `$${v.name}`), sel), newVarButton);
    const options = v.options ? Promise.resolve(v.options)
      : api.get(`/api/v1/label/${encodeURIComponent(v.label)}/values`, v.match ? {'match[]': v.match} : {}).then(r => r.data || []);
    options.then(opts => {
      const all = v.includeAll ? [ALL, ...opts] : opts;
      replace(sel, all.map(o => h('option', {value: o}, o)));
      if (!all.includes(values[v.name])) values[v.name] = all[0] ?? '';
      sel.value = values[v.name];
      graph.state();
      graph.runAll();
    }, err => varsEl.append(errorBox(err)));
  }

  // A new variable: its name, the label whose values it offers, and
  // optionally the series to take them from.
  const varName = h('input#var-name', {type: 'text', placeholder: 'name', size: 10, 'aria-label': 'Variable name', pattern: '\\w+', required: true});
  const varLabel = h('input#var-label', {type: 'text', placeholder: 'label', size: 10, 'aria-label': 'Label', pattern: '[A-Za-z_][A-Za-z0-9_]*', required: true});
  const varMatch = h('input#var-match', {type: 'text', placeholder: 'of series (optional), e.g. up', size: 24, 'aria-label': 'Series selector'});
  const varAll = h('input#var-all', {type: 'checkbox'});
  const varForm = h('form.var-form', {hidden: true, onsubmit: e => {
    e.preventDefault();
    const v = {name: varName.value.trim(), label: varLabel.value.trim(), match: varMatch.value.trim(), includeAll: varAll.checked};
    if (doc.variables.some(x => x.name === v.name)) { varName.setCustomValidity('a variable of that name exists'); varName.reportValidity(); return; }
    doc.variables.push(v);
    values[v.name] = '';
    addVariable(v);
    changed();
    varForm.hidden = true;
    varForm.reset();
  }}, h('span.muted', '$'), varName, h('span.muted', '= values of'), varLabel, varMatch,
  h('label.field', varAll, h('span', 'All')), h('button.primary', {type: 'submit'}, 'Add'));
  varName.addEventListener('input', () => varName.setCustomValidity(''));
  const newVarButton = h('button#var-new', {type: 'button', title: 'A variable: $name in queries becomes the value chosen',
    onclick: () => { varForm.hidden = !varForm.hidden; if (!varForm.hidden) varName.focus(); }}, '+ Variable');
  varsEl.append(newVarButton, varForm);
  for (const v of doc.variables) addVariable(v);
}
