// DOM building that never parses markup: every piece of data becomes a text node or an
// attribute value, so nothing an API answer contains can turn into elements or scripts.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
  } else if (child instanceof Node) {
    parent.appendChild(child);
  } else {
    parent.appendChild(document.createTextNode(String(child)));
  }
}

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'style') {
      // The Content-Security-Policy forbids inline styles: use a class instead.
      throw new Error('inline styles are not allowed');
    }
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/** An HTML element: `h('a', {href: '#/'}, 'text', child, ...)`. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, same calling convention as `h`. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces everything inside `el` with `children`. */
export function mount(el, ...children) {
  const fragment = document.createDocumentFragment();
  append(fragment, children);
  el.replaceChildren(fragment);
}

/** `#/instances/ID`, with the id encoded so any character survives the round trip. */
export function instanceHref(id) {
  return `#/instances/${encodeURIComponent(id)}`;
}

/** `#/jobs/NODE/ID`, with the instance as a hint so the job's status is found quickly. */
export function jobHref(node, id, instance) {
  const base = `#/jobs/${encodeURIComponent(node || '-')}/${encodeURIComponent(id)}`;
  return instance ? `${base}?instance=${encodeURIComponent(instance)}` : base;
}

/** `#/instances/ID/restore/TARGET`: the restore screen of one target of an instance. */
export function restoreHref(id, target) {
  return `#/instances/${encodeURIComponent(id)}/restore/${encodeURIComponent(target)}`;
}
