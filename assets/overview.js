// The overview (`#/`): every instance grouped by node, peers' instances read-only, peer
// problems as banners, "Back up now", and a chart of recent jobs. Refreshes every 5 s.

import { api, peers as loadPeers } from './api.js';
import { h, mount, jobHref } from './dom.js';
import { relative, jobKind, jobTime, FINAL } from './format.js';
import { describe, instanceFacts, instanceLink, problems, statusBadge, targetList } from './cards.js';
import { jobChart } from './chart.js';

const REFRESH_MS = 5000;
/** How long an error from "Back up now" stays on its card. */
const FLASH_MS = 20000;

function peerBanner(peer) {
  if (!peer || peer.state === 'ok') return null;
  return h('div', { class: 'banner banner-warn', role: 'status', 'data-peer-state': peer.state },
    h('strong', {}, peer.state === 'circuit-open' ? 'Peer paused. ' : 'Peer unreachable. '),
    `${peer.url}${peer.error ? ` — ${peer.error}` : ''}. Its instances may be missing or out of date`,
    peer.lastContactAt ? ` (last contact ${relative(peer.lastContactAt)}).` : '.');
}

function stat(label, value, kind = '') {
  return h('div', { class: `stat ${kind}` }, h('span', { class: 'stat-value' }, String(value)), h('span', { class: 'stat-label' }, label));
}

export async function overview(root, _params, ctx) {
  const flashes = new Map();
  let loaded = false;

  async function backup(view, button) {
    button.disabled = true;
    button.textContent = 'Starting…';
    flashes.delete(view.id);
    try {
      const answer = await api(`/api/instances/${encodeURIComponent(view.id)}/backup`, { method: 'POST' });
      window.location.hash = jobHref(ctx.node, answer.jobId, view.id);
    } catch (e) {
      if (e.status === 401) return;
      flashes.set(view.id, { text: e.message, until: Date.now() + FLASH_MS });
      tick();
    }
  }

  function card(view, now, runningJob) {
    const flash = flashes.get(view.id);
    const actions = [];
    if (view.local) {
      actions.push(h('button', {
        type: 'button',
        class: 'button button-primary',
        'data-action': 'backup',
        'data-instance': view.id,
        disabled: view.running || view.queued,
        onclick: (event) => backup(view, event.currentTarget),
      }, view.running ? 'Running…' : view.queued ? 'Queued…' : 'Back up now'));
    }
    if (runningJob) {
      actions.push(h('a', { class: 'button button-quiet', href: jobHref(runningJob.nodeName, runningJob.id, view.id), 'data-kind': jobKind(runningJob) },
        jobKind(runningJob) === 'restore' ? 'Follow restore' : 'Follow job'));
    }
    actions.push(h('a', { class: 'button button-quiet', href: `#/instances/${encodeURIComponent(view.id)}` }, 'History'));
    return h('article', { class: `card instance-card status-${view.status}`, 'data-instance': view.id, 'data-node': view.node },
      h('header', { class: 'card-head' },
        h('div', { class: 'card-title' },
          instanceLink(view.id),
          view.backend === 'customImage' ? h('span', { class: 'chip' }, 'custom image') : null,
          view.local ? null : h('span', { class: 'chip' }, 'read-only')),
        statusBadge(view.status)),
      instanceFacts(view, now),
      h('div', { class: 'card-section' }, h('h4', {}, 'Targets'), targetList(view)),
      problems(view),
      flash && flash.until > Date.now() ? h('p', { class: 'card-error', role: 'alert', 'data-role': 'backup-error' }, flash.text) : null,
      h('footer', { class: 'card-actions' }, actions));
  }

  async function refresh() {
    const [instances, schedules, peerList, jobs, config] = await Promise.all([
      api('/api/instances'),
      api('/api/schedules'),
      loadPeers(),
      api('/api/jobs?limit=200'),
      api('/api/config'),
    ]);
    if (ctx.signal.aborted) return;
    const now = Date.now();
    const latest = new Map();
    const running = new Map();
    for (const job of jobs) {
      const known = latest.get(job.instanceId);
      // An instance's state is its backups'; a restore shows as running while it runs.
      const newer = !known || jobTime(job) > jobTime(known) || (jobTime(job) === jobTime(known) && job.id > known.id);
      if (jobKind(job) === 'backup' && newer) latest.set(job.instanceId, job);
      if (!FINAL.has(job.status) && job.isActive && !running.has(job.instanceId)) running.set(job.instanceId, job);
    }

    const groups = new Map();
    const group = (name) => {
      if (!groups.has(name)) groups.set(name, { name, local: name === ctx.node, views: [], peers: [] });
      return groups.get(name);
    };
    const local = group(ctx.node);
    const localSchedules = new Map(schedules.filter((e) => e.nodeName === ctx.node).map((e) => [e.instanceId, e]));
    for (const instance of instances) {
      local.views.push(describe({ instance, schedule: localSchedules.get(instance.id), latestJob: latest.get(instance.id), node: ctx.node }));
    }
    for (const entry of schedules) {
      if (entry.nodeName === ctx.node) continue;
      group(entry.nodeName).views.push(describe({ schedule: entry, node: entry.nodeName }));
    }
    for (const peer of peerList || []) {
      group(peer.nodeName || peer.url).peers.push(peer);
    }

    const all = [...groups.values()].flatMap((g) => g.views);
    const failing = all.filter((v) => ['failed', 'timed_out', 'aborted', 'partial_success'].includes(v.status)).length;
    const next = all.map((v) => v.nextRunAt).filter(Boolean).sort()[0];
    const summary = h('section', { class: 'stats', 'aria-label': 'Summary' },
      stat('instances', all.length),
      stat('running', all.filter((v) => v.status === 'running').length, all.some((v) => v.status === 'running') ? 'stat-running' : ''),
      stat('need attention', failing, failing ? 'stat-bad' : 'stat-ok'),
      h('div', { class: 'stat' }, h('span', { class: 'stat-value' }, next ? relative(next, now) : '—'), h('span', { class: 'stat-label' }, 'next run')));

    const sections = [...groups.values()].map((g) => h('section', { class: 'node-group', 'data-node-group': g.name },
      h('div', { class: 'node-head' },
        h('h2', {}, g.name || 'this node'),
        g.local ? h('span', { class: 'chip chip-accent' }, 'this node') : null,
        g.peers.map((p) => h('span', { class: `chip chip-peer-${p.state}`, title: p.url }, p.state === 'ok' ? 'peer · reachable' : `peer · ${p.state}`))),
      g.peers.map(peerBanner),
      g.views.length
        ? h('div', { class: 'cards' }, g.views.map((v) => card(v, now, v.local ? running.get(v.id) : null)))
        : h('p', { class: 'empty' }, g.local ? 'No instances are configured on this node.'
          : g.peers.some((p) => p.state !== 'ok') ? 'Its instances are shown once it answers.' : 'No instances reported by this node.')));

    const rejected = config.lastReload && !config.lastReload.accepted;
    const configBanner = rejected
      ? h('div', { class: 'banner banner-error', role: 'alert', id: 'overview-config-rejected' },
        h('strong', {}, 'The last config reload was rejected. '),
        config.generation > 0 ? `Generation ${config.generation} stays in force. ` : 'No config is in force. ',
        h('a', { href: '#/config' }, 'See the errors.'))
      : null;

    mount(root,
      h('div', { class: 'page-head' },
        h('h1', {}, 'Overview'),
        h('span', { class: 'muted small', id: 'refreshed' }, `Updated ${new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' }).format(now)} · every 5 s`)),
      configBanner,
      summary,
      sections,
      h('section', { class: 'panel' }, jobChart(jobs, { title: `Recent jobs on ${ctx.node || 'this node'}`, id: 'overview-chart' })));
    loaded = true;
  }

  async function tick() {
    if (ctx.signal.aborted || document.hidden) return;
    try {
      await refresh();
    } catch (e) {
      if (e.status === 401 || ctx.signal.aborted) return;
      if (!loaded) {
        mount(root, h('div', { class: 'banner banner-error', role: 'alert' }, `The overview could not be loaded: ${e.message}`));
      } else {
        const note = root.querySelector('#refreshed');
        if (note) note.textContent = `Refresh failed: ${e.message}`;
      }
    }
  }

  await tick();
  const timer = setInterval(tick, REFRESH_MS);
  ctx.signal.addEventListener('abort', () => clearInterval(timer));
}
