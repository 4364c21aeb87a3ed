// Pieces shared by the overview and the instance screen: status badges, an instance's
// facts (schedule, next run, last backup, retention, targets) and its problems.

import { h, instanceHref } from './dom.js';
import { absolute, badgeStatus, jobKind, relative, restoreDestination, shortSnapshot, statusLabel } from './format.js';

/** A coloured job-status badge; `data-job-status` carries the raw status for tests. */
export function statusBadge(status, attrs = {}) {
  const shown = badgeStatus(status);
  return h('span', { class: `badge badge-${shown}`, 'data-job-status': shown, ...attrs }, statusLabel(status));
}

/** A condition as a small badge: ok, failing (with its reason) or unknown. */
export function conditionBadge(condition) {
  const kind = condition.status === 'True' ? 'ok' : condition.status === 'False' ? 'bad' : 'unknown';
  const text = condition.status === 'True' ? 'ready' : condition.reason;
  return h('span', { class: `cond cond-${kind}`, title: condition.message, 'data-condition': condition.type }, text);
}

/** `7 daily · 4 weekly · 6 monthly`; custom images keep their own. */
export function retentionText(retention, backend) {
  if (backend === 'customImage') return 'kept by the image';
  if (!retention) return '—';
  const parts = [
    ['keepDaily', 'daily'], ['keepWeekly', 'weekly'], ['keepMonthly', 'monthly'], ['keepYearly', 'yearly'],
  ].filter(([key]) => retention[key]).map(([key, word]) => `${retention[key]} ${word}`);
  if (parts.length) return parts.join(' · ');
  // A peer reports zeros for instances whose image keeps its own retention.
  return backend ? 'keep everything' : '—';
}

/** A time shown as "in 3 hours" with the local date and time beneath. */
export function when(value, now) {
  if (!value) return h('span', { class: 'muted' }, '—');
  return h('span', { class: 'when' },
    h('span', { class: 'when-rel' }, relative(value, now)),
    h('time', { class: 'when-abs', datetime: value }, absolute(value)));
}

function fact(label, ...value) {
  return h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, ...value));
}

/**
 * The facts of an instance. `view` is the merged picture built by `describe` below.
 */
export function instanceFacts(view, now) {
  return h('dl', { class: 'facts' },
    fact('Schedule', h('code', { class: 'cron' }, view.cron || '—'), view.timezone && view.timezone !== 'UTC'
      ? h('span', { class: 'muted small' }, ` ${view.timezone}`) : null),
    fact('Next run', when(view.nextRunAt, now)),
    fact(view.lastLabel, when(view.lastAt, now)),
    // Each rule stays on one line; only the gaps between rules may wrap.
    fact('Retention', view.retentionText.split(' · ').map((part, i) => [i ? ' · ' : '', h('span', { class: 'nowrap' }, part)])));
}

/**
 * The targets of an instance with their readiness; `action(target)`, when given, adds a
 * control to each row (the instance screen's "Restore…").
 */
export function targetList(view, { action } = {}) {
  if (view.targets.length === 0) return h('p', { class: 'muted small no-targets' }, 'No targets yet: label a volume or container, or list one in the config.');
  return h('ul', { class: 'targets' }, view.targets.map((target) => h('li', { class: 'target', 'data-target': target.id },
    h('span', { class: 'target-id' }, target.id),
    h('span', { class: 'target-end' },
      (target.conditions || []).map(conditionBadge),
      action ? action(target) : null))));
}

/** A job's kind as a chip; `data-kind` carries it for tests. */
export function kindChip(job, attrs = {}) {
  const kind = jobKind(job);
  return h('span', { class: `chip kind-${kind} ${kind === 'restore' ? 'chip-accent' : ''}`, 'data-kind': kind, ...attrs }, kind);
}

/** `volume:data · from 1a2b3c4d · into new volume data-copy`: what a restore job restores. */
export function restoreText(restore) {
  if (!restore) return '';
  return `${restore.target} · from ${shortSnapshot(restore.snapshot)} · ${restoreDestination(restore)}`;
}

/** The job's kind, and for a restore what it restores and where to: for job lists. */
export function jobKindCell(job) {
  return [kindChip(job), job.restore ? h('span', { class: 'kind-detail' }, restoreText(job.restore)) : null];
}

/** The instance conditions that do not hold, as a short list of messages. */
export function problems(view) {
  const failing = (view.conditions || []).filter((c) => c.status === 'False' && c.type !== 'LastBackupSucceeded');
  if (!failing.length) return null;
  return h('ul', { class: 'problems' }, failing.map((c) => h('li', {}, h('strong', {}, `${c.reason}: `), c.message)));
}

/**
 * One picture of an instance from what the API gives: the local `/api/instances` entry
 * (absent for peers), its `/api/schedules` entry and the newest job seen in `/api/jobs`.
 */
export function describe({ instance, schedule, latestJob, node }) {
  let status = 'never';
  if (instance?.running) status = 'running';
  else if (instance?.queued) status = 'queued';
  else if (latestJob) status = latestJob.status;
  else if (schedule?.latestJobStatus) status = schedule.latestJobStatus;
  const targets = instance
    ? instance.targets
    : (schedule?.targetIds || []).map((id) => ({ id, conditions: [] }));
  const lastCompleted = latestJob?.lastCompletedAt || schedule?.latestJobCompletedAt || null;
  return {
    id: instance?.id || schedule?.instanceId,
    node,
    local: Boolean(instance),
    backend: instance?.backend || null,
    status: badgeStatus(status),
    cron: instance?.schedule || schedule?.scheduleCron,
    timezone: instance?.timezone,
    nextRunAt: instance ? instance.nextRunAt : schedule?.nextRunAt,
    lastLabel: 'Last backup',
    lastAt: lastCompleted || instance?.lastSuccessAt || null,
    lastSuccessAt: instance?.lastSuccessAt || null,
    retentionText: retentionText(instance ? instance.retention : schedule?.retention, instance?.backend),
    targets,
    conditions: instance?.conditions || [],
    running: Boolean(instance?.running),
    queued: Boolean(instance?.queued),
  };
}

/** The instance's name as a link to its screen. */
export function instanceLink(id) {
  return h('a', { class: 'instance-link', href: instanceHref(id) }, id);
}
