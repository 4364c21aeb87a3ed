// System logs (`#/logs`): Marina's own lines that belong to no job, newest first, with a
// minimum level and a refresh button.

import { api } from './api.js';
import { h, mount } from './dom.js';
import { LEVELS, logLine } from './job.js';

const LIMIT = 500;

export async function systemLogs(root, _params, ctx) {
  const levelSelect = h('select', { id: 'system-level', onchange: () => load() },
    h('option', { value: '' }, 'All levels'), LEVELS.map((l) => h('option', { value: l }, `${l}+`)));
  const refresh = h('button', { type: 'button', class: 'button button-quiet', id: 'system-refresh', onclick: () => load() }, 'Refresh');
  const count = h('span', { class: 'muted small', id: 'system-count' });
  const box = h('div', { class: 'log log-tall', id: 'system-log', role: 'log' });
  const problem = h('div', { class: 'banner banner-error', role: 'alert', hidden: true });

  mount(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'System logs'), h('span', { class: 'muted small' }, `Marina's own messages outside any job; newest first, at most ${LIMIT}.`)),
    problem,
    h('section', { class: 'panel' },
      h('div', { class: 'toolbar' },
        h('label', { class: 'control', for: 'system-level' }, h('span', {}, 'Level'), levelSelect),
        refresh, h('span', { class: 'push-end' }), count),
      box));

  async function load() {
    refresh.disabled = true;
    try {
      const query = new URLSearchParams({ limit: String(LIMIT) });
      // The API refuses an empty `level`: leave it out for "all levels".
      if (levelSelect.value) query.set('level', levelSelect.value);
      const lines = await api(`/api/logs/system?${query}`);
      if (ctx.signal.aborted) return;
      lines.sort((a, b) => b.id - a.id);
      mount(box, lines.length ? lines.map(logLine) : h('p', { class: 'empty' }, 'No lines at this level.'));
      count.textContent = `${lines.length} lines · ${new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' }).format(new Date())}`;
      problem.hidden = true;
    } catch (e) {
      if (e.status === 401 || ctx.signal.aborted) return;
      problem.hidden = false;
      problem.textContent = `The system log could not be read: ${e.message}`;
    } finally {
      refresh.disabled = false;
    }
  }

  await load();
}
