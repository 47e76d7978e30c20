// The dashboard's entry point: picks the page from the path, fills in the
// header, and asks for a token when the server's auth refuses a request.

import {graphPage} from './graph.js';
import {explorePage} from './explore.js';
import {statusPage} from './status.js';
import {dashboardsPage} from './dashboards.js';
import * as api from './api.js';
import {h} from './dom.js';

const pages = {'/': graphPage, '/graph': graphPage, '/explore': explorePage, '/status': statusPage, '/dashboards': dashboardsPage};
const page = pages[location.pathname] || graphPage;
const name = {graphPage: 'graph', explorePage: 'explore', statusPage: 'status', dashboardsPage: 'dashboards'}[page.name] || 'graph';

for (const a of document.querySelectorAll('nav a')) {
  if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
}
document.title = `${name[0].toUpperCase()}${name.slice(1)} · Strata`;

tokenForm();
page(document.getElementById('app'));

api.get('/api/v1/status/buildinfo').then(r => {
  const v = r.data.version || '';
  document.getElementById('build').textContent = /^\d/.test(v) ? `v${v}` : v;
}, () => {});

// tokenForm adds the header's token button and the form it opens, which
// also opens by itself when the server answers 401 or 403.
function tokenForm() {
  const input = h('input#token-input', {type: 'password', autocomplete: 'off', placeholder: 'Read token', 'aria-label': 'Read token', size: 28, value: api.token()});
  const writeInput = h('input#write-token-input', {type: 'password', autocomplete: 'off', placeholder: 'Write token (to save dashboards)', 'aria-label': 'Write token', size: 28, value: api.token('write')});
  const remember = h('input#token-remember', {type: 'checkbox'});
  const why = h('p.token-why.muted');
  const form = h('form.token-form', {hidden: true, onsubmit: e => {
    e.preventDefault();
    api.setToken(input.value.trim(), remember.checked);
    api.setToken(writeInput.value.trim(), remember.checked, 'write');
    if (forWrite) {
      // Asked for by a refused save: keep the page and its unsaved changes.
      form.hidden = true;
      forWrite = false;
      why.textContent = '';
      button.textContent = 'Token ✓';
      return;
    }
    location.reload();
  }},
  why,
  h('div.token-row', input, h('button.primary', {type: 'submit'}, 'Use token')),
  h('div.token-row', writeInput),
  h('label.token-row', remember, ' Remember on this device (otherwise for this tab only)'),
  h('div.token-row',
    h('button#token-forget', {type: 'button', onclick: () => { api.setToken(''); api.setToken('', false, 'write'); location.reload(); }}, 'Forget tokens'),
    h('button', {type: 'button', onclick: () => { form.hidden = true; }}, 'Close')));
  const button = h('button#token-button.icon', {type: 'button', title: 'Access token', 'aria-label': 'Access token',
    onclick: () => { form.hidden = !form.hidden; if (!form.hidden) input.focus(); }}, api.token() ? 'Token ✓' : 'Token');
  document.querySelector('.topbar').append(button, form);
  let shown = false, forWrite = false;
  addEventListener('strata:auth', e => {
    if (shown && !e.detail.write) return;
    shown = true;
    forWrite = e.detail.write;
    if (e.detail.write) {
      why.textContent = e.detail.status === 401 || !api.token('write')
        ? 'Saving needs the write token: enter it below.'
        : 'The server refused the write token: enter another one.';
    } else {
      why.textContent = e.detail.status === 401
        ? 'This server needs a read token: enter it to load data.'
        : 'The server refused the token: enter another one.';
    }
    form.hidden = false;
    input.focus();
  });
}
