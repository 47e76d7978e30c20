// Import of Grafana dashboard JSON: time series panels with Prometheus
// queries become Strata panels, as closely as they allow; every other kind
// of panel is listed as not imported.

// UNIT_MAP maps Grafana's units to Strata's (fmt.UNITS); others show as auto.
const UNIT_MAP = {
  short: 'short', none: 'none', bytes: 'bytes', decbytes: 'decbytes', s: 'seconds', ms: 'ms',
  percent: 'percent', percentunit: 'percentunit', dtdurations: 'seconds', dtdurationms: 'ms',
};

// isGrafana reports whether doc looks like a Grafana dashboard.
export function isGrafana(doc) {
  if (!doc || typeof doc !== 'object') return false;
  if (doc.dashboard && typeof doc.dashboard === 'object') return isGrafana(doc.dashboard);
  return 'schemaVersion' in doc || (Array.isArray(doc.panels) && doc.panels.some(p => p && ('targets' in p || 'gridPos' in p))) || Array.isArray(doc.rows);
}

// fromGrafana converts a Grafana dashboard into a Strata one and returns
// {doc, skipped}: skipped lists the panels not imported, as
// {title, type, why}.
export function fromGrafana(g) {
  if (g.dashboard && typeof g.dashboard === 'object') g = g.dashboard;
  const panels = [], skipped = [];
  const all = [];
  const walk = list => {
    for (const p of list || []) {
      if (!p) continue;
      if (p.type === 'row') { walk(p.panels); continue; }
      all.push(p);
    }
  };
  walk(g.panels);
  for (const row of g.rows || []) walk(row.panels); // before schema 16
  // Grafana lays panels out on a grid: keep its reading order.
  all.sort((a, b) => ((a.gridPos?.y ?? 0) - (b.gridPos?.y ?? 0)) || ((a.gridPos?.x ?? 0) - (b.gridPos?.x ?? 0)));
  for (const p of all) {
    const title = p.title || '';
    if (p.type !== 'timeseries' && p.type !== 'graph') {
      skipped.push({title, type: p.type || 'unknown', why: 'only time series panels are imported'});
      continue;
    }
    const targets = (p.targets || []).filter(t => t && !t.hide && typeof t.expr === 'string' && t.expr.trim());
    if (!targets.length) {
      skipped.push({title, type: p.type, why: 'no Prometheus query'});
      continue;
    }
    const d = p.fieldConfig?.defaults || {};
    const c = d.custom || {};
    let mode = 'lines';
    if (p.type === 'graph') {
      if (p.stack) mode = 'stacked';
      else if (p.bars) mode = 'bars';
      else if (p.fill > 0) mode = 'area';
    } else if (c.stacking?.mode && c.stacking.mode !== 'none') mode = 'stacked';
    else if (c.drawStyle === 'bars') mode = 'bars';
    else if (c.fillOpacity > 0) mode = 'area';
    const unit = UNIT_MAP[p.type === 'graph' ? p.yaxes?.[0]?.format : d.unit] || '';
    targets.forEach((t, i) => panels.push({
      title: targets.length > 1 ? `${title} (${t.refId || i + 1})` : title,
      expr: t.expr.trim(),
      unit,
      mode,
      view: 'chart',
      width: p.gridPos?.w || 24,
    }));
  }
  const variables = [];
  for (const v of g.templating?.list || []) {
    const current = [v.current?.value].flat()[0];
    const value = current === '$__all' ? 'All' : current;
    if (v.type === 'query') {
      const q = typeof v.query === 'string' ? v.query : v.query?.query || '';
      const m = /^\s*label_values\(\s*(?:(.+?)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/.exec(q);
      if (!m) { skipped.push({title: `$${v.name}`, type: 'variable', why: `query ${JSON.stringify(q)} is not label_values(…)`}); continue; }
      variables.push({name: v.name, label: m[2], match: m[1] || '', includeAll: Boolean(v.includeAll), value});
    } else if (v.type === 'custom' || v.type === 'constant' || v.type === 'textbox') {
      const options = String(v.query || '').split(',').map(s => s.trim()).filter(Boolean);
      variables.push({name: v.name, options, includeAll: Boolean(v.includeAll), value: value ?? options[0]});
    } else if (v.type !== 'datasource') {
      skipped.push({title: `$${v.name}`, type: 'variable', why: `${v.type} variables are not supported`});
    }
  }
  const doc = {title: g.title || 'Imported dashboard', panels, variables};
  const from = /^now-(\w+)$/.exec(g.time?.from || '');
  if (from && (g.time?.to || 'now') === 'now') doc.range = from[1];
  return {doc, skipped};
}
