// The dashboard's entry point: picks the page from the path and fills in
// the header. Every page is a full load of the same index.html.

import {graphPage} from './graph.js';
import {explorePage} from './explore.js';
import {statusPage} from './status.js';
import * as api from './api.js';

const pages = {'/': graphPage, '/graph': graphPage, '/explore': explorePage, '/status': statusPage};
const page = pages[location.pathname] || graphPage;
const name = page === graphPage ? 'graph' : page === explorePage ? 'explore' : 'status';

for (const a of document.querySelectorAll('nav a')) {
  if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
}
document.title = `${name[0].toUpperCase()}${name.slice(1)} · Strata`;

page(document.getElementById('app'));

api.get('/api/v1/status/buildinfo').then(r => {
  const v = r.data.version || '';
  document.getElementById('build').textContent = /^\d/.test(v) ? `v${v}` : v;
}, () => {});
