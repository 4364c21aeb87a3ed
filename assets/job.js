// One job (`#/jobs/{node}/{id}`), a backup or a restore: its status, counts, what a restore
// restores and where to, and its log. While the job is
// active the screen follows it live: every second it asks for the lines after the last one
// seen (`afterId`) and re-reads the status, until the job is final. Lines are de-duplicated
// by id, so a server that ignores `afterId` (and answers the whole log) works the same.
// A job on a peer node is read through this Marina with `?peer=URL`.

import { api, peers } from './api.js';
import { h, mount, instanceHref } from './dom.js';
import { absolute, duration, jobDuration, jobKind, logTime, restoreDestination, shortSnapshot, FINAL } from './format.js';
import { kindChip, statusBadge } from './cards.js';

const POLL_MS = 1000;
/** Polls after the job turned final, to catch lines written just after its status. */
const TAIL_PASSES = 2;
export const LEVELS = ['ERROR', 'WARN', 'INFO', 'DEBUG'];
const NO_TARGET = '__none__';

/** Whether `level` is at least as severe as `min`. */
export function atLeast(level, min) {
  const rank = LEVELS.indexOf(level);
  return rank === -1 || rank <= LEVELS.indexOf(min);
}

/** A log line as a row: local time, level, target, message. */
export function logLine(line) {
  return h('div', {
    class: `log-line lvl-${line.level}`, 'data-log-id': line.id, 'data-level': line.level, 'data-target': line.targetId || '',
  },
  h('time', { class: 'log-time', datetime: line.timestamp, title: absolute(line.timestamp) }, logTime(line.timestamp)),
  h('span', { class: 'log-level' }, line.level),
  h('span', { class: 'log-msg' },
    line.targetId ? h('span', { class: 'log-target' }, line.targetId) : null,
    line.message));
}

function select(id, label, options, onchange) {
  return h('label', { class: 'control', for: id }, h('span', {}, label),
    h('select', { id, onchange }, options.map(([value, text]) => h('option', { value }, text))));
}

export async function job(root, params, ctx) {
  const node = params.node;
  const id = Number(params.id);
  const local = node === ctx.node || node === '-';
  let instanceId = params.query.get('instance');
  let peerUrl = null;

  mount(root, h('p', { class: 'muted' }, 'Loading…'));
  if (!local) {
    const list = await peers().catch(() => null);
    if (ctx.signal.aborted) return;
    const peer = (list || []).find((p) => p.nodeName === node);
    if (!peer) {
      mount(root, h('div', { class: 'banner banner-error', role: 'alert' },
        `Job ${id} ran on node "${node}", which is not a configured peer of this Marina; its log cannot be read from here.`));
      return;
    }
    peerUrl = peer.url;
  }

  const lines = [];
  const seen = new Set();
  const targets = new Set();
  let lastId = null;
  let current = null;
  let stopped = false;
  let longSearch = false;
  let tail = 0;

  const head = h('div', { class: 'page-head' });
  const facts = h('dl', { class: 'facts facts-wide', id: 'job-facts' });
  const live = h('span', { class: 'live', id: 'job-live' }, 'Loading…');
  const count = h('span', { class: 'muted small', id: 'job-log-count' });
  const logBox = h('div', { class: 'log', id: 'job-log', role: 'log', 'aria-live': 'polite' });
  const empty = h('p', { class: 'empty', id: 'job-log-empty' }, 'No log lines yet.');
  const problem = h('div', { class: 'banner banner-error', role: 'alert', hidden: true });
  const levelControl = select('log-level', 'Level', LEVELS.map((l) => [l, l === 'DEBUG' ? 'All (DEBUG+)' : `${l}+`]), () => redraw());
  const targetControl = select('log-target', 'Target', [['', 'All targets']], () => redraw());
  const levelSelect = levelControl.querySelector('select');
  const targetSelect = targetControl.querySelector('select');
  levelSelect.value = 'DEBUG';

  mount(root,
    h('nav', { class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' / ',
      instanceId ? [h('a', { href: instanceHref(instanceId), id: 'job-instance-crumb' }, instanceId), ' / '] : null,
      h('span', {}, `job ${id}`)),
    head,
    problem,
    h('section', { class: 'panel' }, facts),
    h('section', { class: 'panel' },
      h('div', { class: 'toolbar' }, h('h3', {}, 'Log'), live, h('span', { class: 'push-end' }), levelControl, targetControl, count),
      logBox, empty));

  const visible = (line) => atLeast(line.level, levelSelect.value)
    && (!targetSelect.value || (targetSelect.value === NO_TARGET ? !line.targetId : line.targetId === targetSelect.value));

  function updateCount() {
    const shown = logBox.childElementCount;
    count.textContent = lines.length === shown ? `${lines.length} lines` : `${shown} of ${lines.length} lines`;
    empty.hidden = shown > 0;
    empty.textContent = lines.length ? 'No lines match the filters.' : 'No log lines yet.';
  }

  function redraw() {
    mount(logBox, lines.filter(visible).map(logLine));
    updateCount();
  }

  function refreshTargets() {
    const chosen = targetSelect.value;
    const options = [['', 'All targets'], [NO_TARGET, 'No target (job)'], ...[...targets].sort().map((t) => [t, t])];
    mount(targetSelect, options.map(([value, text]) => h('option', { value }, text)));
    targetSelect.value = chosen;
  }

  function renderStatus() {
    const status = current ? current.status : 'unknown';
    const restore = current && jobKind(current) === 'restore';
    mount(head,
      h('h1', {}, current ? `${restore ? 'Restore' : 'Job'} #${current.iid} of ${current.instanceId}` : `Job ${id}`),
      current ? statusBadge(status, { id: 'job-status' }) : h('span', { class: 'badge badge-never', id: 'job-status', 'data-job-status': 'unknown' }, 'unknown'),
      current ? kindChip(current, { id: 'job-kind' }) : null,
      h('span', { class: 'chip' }, local ? ctx.node || 'this node' : node));
    if (!current) {
      mount(facts, h('p', { class: 'muted' }, 'The job record has not been found (yet).'));
      return;
    }
    const fact = (label, ...value) => h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, ...value));
    const what = current.restore;
    mount(facts,
      fact('Instance', h('a', { href: instanceHref(current.instanceId) }, current.instanceId)),
      what ? [
        fact('Restores', h('code', { id: 'job-restore-target' }, what.target)),
        fact('From snapshot', h('code', { id: 'job-restore-snapshot', title: what.snapshot }, shortSnapshot(what.snapshot))),
        fact('Destination', h('span', { id: 'job-restore-destination', 'data-in-place': String(Boolean(what.inPlace)) }, restoreDestination(what))),
      ] : null,
      fact('Trigger', current.trigger || '—'),
      fact('Started', absolute(current.lastStartedAt)),
      fact('Finished', absolute(current.lastCompletedAt)),
      fact('Duration', h('span', { id: 'job-duration' }, duration(jobDuration(current)))),
      fact('Targets', h('span', { id: 'job-targets' }, `${current.lastTargetsSuccessful} of ${current.lastTargetsTotal} succeeded`)),
      current.message ? h('div', { class: 'fact fact-row' }, h('dt', {}, 'Message'), h('dd', {}, h('span', { class: 'job-message' }, current.message))) : null);
  }

  async function findJob() {
    if (!instanceId) instanceId = lines.find((l) => l.instanceId)?.instanceId || null;
    const wanted = local ? ctx.node : node;
    if (!instanceId) {
      if (!local) return null;
      const recent = await api('/api/jobs?limit=1000');
      return recent.find((j) => j.id === id) || null;
    }
    const enc = encodeURIComponent(instanceId);
    const match = (j) => j.id === id && j.nodeName === wanted;
    let found = (await api(`/api/status/${enc}?limit=50`)).find(match);
    if (!found && !longSearch) {
      // Older than the newest 50 jobs: look once through a long history.
      longSearch = true;
      found = (await api(`/api/status/${enc}?limit=5000`)).find(match);
    }
    return found || null;
  }

  // The API answers a job log a page at a time; a full page means more follow at once.
  const LOG_PAGE = 1000;

  async function fetchLogs() {
    for (;;) {
      const query = new URLSearchParams();
      if (lastId !== null) query.set('afterId', lastId);
      query.set('limit', LOG_PAGE);
      if (peerUrl) query.set('peer', peerUrl);
      const batch = await api(`/api/logs/job/${encodeURIComponent(id)}?${query}`);
      if (ctx.signal.aborted) return;
      const fresh = batch.filter((line) => !seen.has(line.id)).sort((a, b) => a.id - b.id);
      if (!fresh.length) return;
      const stick = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 40;
      let newTarget = false;
      for (const line of fresh) {
        seen.add(line.id);
        lines.push(line);
        lastId = lastId === null ? line.id : Math.max(lastId, line.id);
        if (line.targetId && !targets.has(line.targetId)) {
          targets.add(line.targetId);
          newTarget = true;
        }
        if (visible(line)) logBox.append(logLine(line));
      }
      if (newTarget) refreshTargets();
      updateCount();
      if (stick && current && !FINAL.has(current.status)) logBox.scrollTop = logBox.scrollHeight;
      if (batch.length < LOG_PAGE) return;
    }
  }

  async function poll() {
    if (ctx.signal.aborted || stopped) return;
    try {
      // Status before log: once the status is final, the log read after it is complete
      // but for lines still in the writer's batch, which the tail passes pick up.
      const found = await findJob();
      if (ctx.signal.aborted) return;
      if (found) current = found;
      renderStatus();
      await fetchLogs();
      problem.hidden = true;
      if (current && FINAL.has(current.status)) {
        tail += 1;
        if (tail > TAIL_PASSES) stopped = true;
      }
    } catch (e) {
      if (e.status === 401 || ctx.signal.aborted) return;
      problem.hidden = false;
      problem.textContent = e.status === 404 ? `This job cannot be found: ${e.message}` : `Could not refresh this job: ${e.message}`;
      if (e.status === 404) stopped = true;
    }
    const following = !stopped && (!current || !FINAL.has(current.status));
    live.className = following ? 'live live-on' : 'live';
    const finished = current && FINAL.has(current.status);
    live.textContent = following ? 'Following live' : finished ? 'Finished' : 'Stopped';
    if (!stopped) {
      const timer = setTimeout(poll, POLL_MS);
      ctx.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    }
  }

  await poll();
}
