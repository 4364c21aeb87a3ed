// Targets (`#/targets`): every target and the instances that back it up, labelled targets
// whose instance is unknown, objects with wrong labels, and volumes nothing protects.

import { api } from './api.js';
import { h, mount, instanceHref } from './dom.js';
import { conditionBadge } from './cards.js';

/** A panel with a count; `warn` colours a non-zero count as a problem. */
function section(title, count, id, body, emptyText, warn = true) {
  return h('section', { class: 'panel', id },
    h('h3', {}, title, h('span', { class: `count ${count && warn ? 'count-warn' : ''}` }, String(count))),
    count ? body() : h('p', { class: 'empty' }, emptyText));
}

export async function targets(root, _params, ctx) {
  let answer;
  try {
    answer = await api('/api/targets');
  } catch (e) {
    if (e.status === 401 || ctx.signal.aborted) return;
    mount(root, h('div', { class: 'banner banner-error', role: 'alert' }, `The targets could not be read: ${e.message}`));
    return;
  }
  if (ctx.signal.aborted) return;
  const cell = (label, ...content) => h('td', { 'data-label': label }, h('div', { class: 'cell' }, ...content));
  mount(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Targets')),
    answer.unassigned.length || answer.unprotectedVolumes.length || answer.invalidLabels.length
      ? h('div', { class: 'banner banner-warn' },
        `${answer.unassigned.length} unassigned, ${answer.invalidLabels.length} with invalid labels, ${answer.unprotectedVolumes.length} unprotected volumes.`)
      : h('div', { class: 'banner banner-ok' }, 'Every target has an instance and every volume a policy.'),
    section('All targets', answer.targets.length, 'targets-all', () => h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, ['Target', 'Kind', 'Declared by', 'Instances', 'State'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, answer.targets.map((t) => h('tr', { 'data-target': t.id },
        cell('Target', h('code', {}, t.id)),
        cell('Kind', t.kind),
        cell('Declared by', t.source === 'configAndLabel' ? 'config and label' : t.source || '—'),
        cell('Instances', t.instances.length
          ? t.instances.map((i, n) => [n ? ', ' : '', h('a', { href: instanceHref(i) }, i)])
          : h('span', { class: 'chip chip-warn' }, 'unassigned'),
        t.unknownInstances.length ? h('span', { class: 'muted small' }, ` names unknown ${t.unknownInstances.join(', ')}`) : null),
        cell('State', t.conditions.length ? t.conditions.map(conditionBadge) : h('span', { class: 'muted' }, '—'))))))),
    'No targets yet: label a volume or container, or list one in the config.', false),
    section('Unassigned targets', answer.unassigned.length, 'targets-unassigned', () => h('ul', { class: 'plain-list' },
      answer.unassigned.map((u) => h('li', {}, h('code', {}, u.target), h('span', { class: 'muted' }, ` names unknown instance${u.unknownInstances.length === 1 ? '' : 's'} `), u.unknownInstances.join(', ')))),
    'None: every labelled target names a configured instance.'),
    section('Invalid labels', answer.invalidLabels.length, 'targets-invalid', () => h('ul', { class: 'plain-list' },
      answer.invalidLabels.map((i) => h('li', {}, h('code', {}, i.object), h('ul', { class: 'sub-list' }, i.problems.map((p) => h('li', {}, p)))))),
    'None.'),
    section('Unprotected volumes', answer.unprotectedVolumes.length, 'targets-unprotected', () => h('ul', { class: 'plain-list volume-list' },
      answer.unprotectedVolumes.map((v) => h('li', { 'data-volume': v }, h('code', {}, v)))),
    'None: every volume is covered by a policy.'));
}
