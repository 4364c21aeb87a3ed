// Config status (`#/config`): the generation in force and the latest reload; a rejected
// reload, with every error located by file, line and column, is shown first and loudly.

import { api } from './api.js';
import { h, mount } from './dom.js';
import { absolute, relative } from './format.js';

function where(d) {
  if (!d.line) return d.file;
  return `${d.file}:${d.line}${d.column ? `:${d.column}` : ''}`;
}

function diagnostics(list) {
  return h('ul', { class: 'diagnostics', id: 'config-diagnostics' }, list.map((d) => h('li', { class: `diag diag-${d.severity}` },
    h('div', { class: 'diag-head' },
      h('span', { class: `chip chip-${d.severity === 'error' ? 'bad' : 'warn'}` }, d.severity),
      h('code', { class: 'diag-loc' }, where(d)),
      d.path ? h('code', { class: 'diag-path' }, d.path) : null),
    h('p', { class: 'diag-msg' }, d.message))));
}

export async function config(root, _params, ctx) {
  let answer;
  try {
    answer = await api('/api/config');
  } catch (e) {
    if (e.status === 401 || ctx.signal.aborted) return;
    mount(root, h('div', { class: 'banner banner-error', role: 'alert' }, `The config status could not be read: ${e.message}`));
    return;
  }
  if (ctx.signal.aborted) return;
  const reload = answer.lastReload;
  const errors = reload ? reload.diagnostics.filter((d) => d.severity === 'error') : [];
  const warnings = reload ? reload.diagnostics.filter((d) => d.severity !== 'error') : [];
  let banner;
  if (!reload) {
    banner = h('div', { class: 'banner banner-warn', id: 'config-state', 'data-state': 'none' }, 'No config has been loaded yet.');
  } else if (!reload.accepted) {
    banner = h('div', { class: 'banner banner-error', role: 'alert', id: 'config-state', 'data-state': 'rejected' },
      h('strong', {}, 'The last reload was rejected. '),
      answer.generation > 0
        ? `Generation ${answer.generation} stays in force until the file is fixed.`
        : 'No config is in force yet.',
      ` ${errors.length} error${errors.length === 1 ? '' : 's'} below.`);
  } else {
    banner = h('div', { class: 'banner banner-ok', id: 'config-state', 'data-state': 'accepted' },
      h('strong', {}, 'Config applied. '), `Generation ${answer.generation} is in force.`);
  }
  mount(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Config')),
    banner,
    h('section', { class: 'panel' },
      h('dl', { class: 'facts' },
        h('div', { class: 'fact' }, h('dt', {}, 'Generation'), h('dd', { id: 'config-generation' }, String(answer.generation))),
        h('div', { class: 'fact' }, h('dt', {}, 'Last reload'), h('dd', {}, reload ? [relative(reload.at), h('span', { class: 'when-abs' }, absolute(reload.at))] : '—')),
        h('div', { class: 'fact' }, h('dt', {}, 'Result'), h('dd', {}, reload ? (reload.accepted ? 'accepted' : 'rejected') : '—')),
        h('div', { class: 'fact' }, h('dt', {}, 'Problems'), h('dd', {}, reload ? `${errors.length} errors, ${warnings.length} warnings` : '—')))),
    reload && reload.diagnostics.length
      ? h('section', { class: 'panel' }, h('h3', {}, reload.accepted ? 'Warnings' : 'Errors'), diagnostics([...errors, ...warnings]))
      : h('section', { class: 'panel' }, h('p', { class: 'empty' }, 'No errors or warnings.')));
}
