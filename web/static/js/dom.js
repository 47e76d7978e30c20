// Small DOM helpers. Pages build their markup with h() rather than
// innerHTML, so no text from the server is ever parsed as HTML and no inline
// style attribute trips the Content-Security-Policy.

// h creates an element: h('a.link#top', {href: '/'}, 'text', child, [more]).
// Attributes starting with "on" are event listeners; "class" may be an array;
// null, undefined and false children are skipped.
export function h(tag, attrs, ...children) {
  const [name, ...rest] = tag.split(/(?=[.#])/);
  const el = document.createElement(name || 'div');
  for (const part of rest) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.classList.add(...[v].flat().filter(Boolean));
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// replace swaps the children of el for the given ones.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// errorBox renders an API or network error the way every page shows it.
export function errorBox(err) {
  const kind = err.type ? `${err.type}` : 'error';
  const status = err.status ? ` (HTTP ${err.status})` : '';
  return h('div.error', {role: 'alert'},
    h('strong', `${kind}${status}`), ' ', h('span.error-msg', err.message));
}

// debounce delays fn until ms have passed without a call.
export function debounce(fn, ms) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}
