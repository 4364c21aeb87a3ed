// One instance (`#/instances/{id}`): its facts, "Back up now" and each target's "Restore…"
// when it lives on this node, a chart of its jobs, and its job history (merged across nodes),
// backups and restores alike. Refreshes every 5 s.

import { api } from './api.js';
import { h, mount, jobHref, restoreHref } from './dom.js';
import { duration, jobDuration, jobKind, short, absolute } from './format.js';
import { describe, instanceFacts, jobKindCell, problems, statusBadge, targetList } from './cards.js';
import { jobChart } from './chart.js';

const REFRESH_MS = 5000;

function historyTable(jobs, now) {
  if (!jobs.length) return h('p', { class: 'empty' }, 'No jobs yet.');
  const cell = (label, ...content) => h('td', { 'data-label': label }, h('div', { class: 'cell' }, ...content));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table jobs-table', id: 'job-history' },
    h('thead', {}, h('tr', {}, ['Job', 'Kind', 'Status', 'Trigger', 'Started', 'Duration', 'Targets', 'Node', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, jobs.map((job) => h('tr', { 'data-job': job.id, 'data-kind': jobKind(job) },
      cell('Job', h('a', { href: jobHref(job.nodeName, job.id, job.instanceId) }, `#${job.iid ?? job.id}`)),
      cell('Kind', jobKindCell(job)),
      cell('Status', statusBadge(job.status)),
      cell('Trigger', job.trigger || '—'),
      cell('Started', h('time', { datetime: job.lastStartedAt || '', title: absolute(job.lastStartedAt) }, short(job.lastStartedAt))),
      cell('Duration', duration(jobDuration(job, now))),
      cell('Targets', `${job.lastTargetsSuccessful} / ${job.lastTargetsTotal}`),
      cell('Node', job.nodeName),
      cell('Message', h('span', { class: 'job-message' }, job.message || '')))))));
}

export async function instance(root, params, ctx) {
  const id = params.id;
  let flash = null;
  let loaded = false;

  async function backup(button) {
    button.disabled = true;
    button.textContent = 'Starting…';
    try {
      const answer = await api(`/api/instances/${encodeURIComponent(id)}/backup`, { method: 'POST' });
      window.location.hash = jobHref(ctx.node, answer.jobId, id);
    } catch (e) {
      if (e.status === 401) return;
      flash = e.message;
      tick();
    }
  }

  async function refresh() {
    const enc = encodeURIComponent(id);
    const [local, jobs, schedules] = await Promise.all([
      api(`/api/instances/${enc}`).catch((e) => { if (e.status === 404) return null; throw e; }),
      api(`/api/status/${enc}?limit=200`),
      api('/api/schedules'),
    ]);
    if (ctx.signal.aborted) return;
    const now = Date.now();
    const schedule = schedules.find((e) => e.instanceId === id && (local ? e.nodeName === ctx.node : true));
    if (!local && !schedule && !jobs.length) {
      mount(root, h('div', { class: 'page-head' }, h('h1', {}, id)),
        h('div', { class: 'banner banner-error', role: 'alert' }, `No instance "${id}" is known on this node or its peers.`));
      return;
    }
    const node = local ? ctx.node : schedule?.nodeName || jobs[0]?.nodeName;
    // The instance's state is its backups'; restores show in the history.
    const latestJob = jobs.find((j) => j.nodeName === node && jobKind(j) === 'backup');
    const view = describe({ instance: local, schedule, latestJob, node });
    // Restores run on the node that has the instance, from its restic repository; a custom
    // image keeps its own backups.
    const restorable = local && local.backend !== 'customImage';
    const restoreAction = (target) => h('a', {
      class: 'button button-quiet button-small', href: restoreHref(id, target.id),
      'data-action': 'restore', 'data-target': target.id, 'aria-label': `Restore ${target.id}`,
    }, 'Restore…');
    mount(root,
      h('nav', { class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' / ', h('span', {}, id)),
      h('div', { class: 'page-head' },
        h('h1', {}, id),
        statusBadge(view.status, { id: 'instance-status' }),
        h('span', { class: 'chip' }, node || 'unknown node'),
        local ? h('button', {
          type: 'button', class: 'button button-primary push-end', 'data-action': 'backup', 'data-instance': id,
          disabled: view.running || view.queued, onclick: (event) => backup(event.currentTarget),
        }, view.running ? 'Running…' : view.queued ? 'Queued…' : 'Back up now') : h('span', { class: 'chip push-end' }, 'read-only: on a peer')),
      flash ? h('p', { class: 'banner banner-error', role: 'alert', 'data-role': 'backup-error' }, flash) : null,
      h('section', { class: 'panel instance-detail', 'data-instance': id },
        instanceFacts(view, now),
        h('div', { class: 'card-section' }, h('h4', {}, 'Targets'), targetList(view, { action: restorable ? restoreAction : null })),
        problems(view)),
      h('section', { class: 'panel' }, jobChart(jobs, { title: 'Job durations and outcomes', id: 'instance-chart' })),
      h('section', { class: 'panel' }, h('h3', {}, 'History'), historyTable(jobs, now)));
    loaded = true;
  }

  async function tick() {
    if (ctx.signal.aborted || document.hidden) return;
    try {
      await refresh();
    } catch (e) {
      if (e.status === 401 || ctx.signal.aborted) return;
      if (!loaded) mount(root, h('div', { class: 'banner banner-error', role: 'alert' }, `This instance could not be loaded: ${e.message}`));
    }
  }

  await tick();
  const timer = setInterval(tick, REFRESH_MS);
  ctx.signal.addEventListener('abort', () => clearInterval(timer));
}
