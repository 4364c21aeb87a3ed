// Times, durations and statuses for people. Times are shown in the browser's own zone.

const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const shortFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

function toDate(value) {
  if (!value) return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** `26 Nov 2026, 14:05` in the local zone; an em dash for nothing. */
export function absolute(value) {
  const date = toDate(value);
  return date ? dateTimeFormat.format(date) : '—';
}

/** `Nov 26, 14:05`: for axis labels and tables. */
export function short(value) {
  const date = toDate(value);
  return date ? shortFormat.format(date) : '—';
}

/** `14:05:09.123` (with the day when it is not today): for log lines. */
export function logTime(value) {
  const date = toDate(value);
  if (!date) return '';
  const ms = String(date.getMilliseconds()).padStart(3, '0');
  const time = `${clockFormat.format(date)}.${ms}`;
  const today = new Date();
  return date.toDateString() === today.toDateString() ? time : `${dayFormat.format(date)} ${time}`;
}

/** `in 3 hours`, `5 minutes ago`. */
export function relative(value, now = Date.now()) {
  const date = toDate(value);
  if (!date) return '—';
  const seconds = Math.round((date.getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return relativeFormat.format(seconds, 'second');
  if (abs < 45 * 60) return relativeFormat.format(Math.round(seconds / 60), 'minute');
  if (abs < 36 * 3600) return relativeFormat.format(Math.round(seconds / 3600), 'hour');
  return relativeFormat.format(Math.round(seconds / 86400), 'day');
}

/** `850 ms`, `12 s`, `3 min 4 s`, `1 h 2 min`. */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return seconds % 60 ? `${minutes} min ${seconds % 60} s` : `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
}

/** How long a job ran (or has been running), in milliseconds; `null` before it started. */
export function jobDuration(job, now = Date.now()) {
  const start = toDate(job.lastStartedAt);
  if (!start) return null;
  const end = toDate(job.lastCompletedAt);
  return Math.max(0, (end ? end.getTime() : job.isActive ? now : start.getTime()) - start.getTime());
}

/** Final job statuses: nothing changes after them. */
export const FINAL = new Set(['success', 'partial_success', 'failed', 'aborted', 'timed_out']);

/** The badge a job status shows: API statuses plus `running`, `queued` and `never`. */
export function badgeStatus(status) {
  if (status === 'in_progress') return 'running';
  if (status === 'scheduled') return 'queued';
  return status || 'never';
}

/** `partial success`, `timed out`. */
export function statusLabel(status) {
  return badgeStatus(status).replace(/_/g, ' ');
}

/** Time of a job for ordering: its start, else its creation. */
export function jobTime(job) {
  const date = toDate(job.lastStartedAt) || toDate(job.createdAt);
  return date ? date.getTime() : 0;
}

/** `512 B`, `64.0 KiB`, `1.2 GiB` (binary units, as Marina's log and CLI print them); `—` for nothing. */
export function bytes(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  if (value < 1024) return `${value} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let size = value / 1024;
  let unit = 0;
  while (size >= 1023.95 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size.toFixed(1)} ${units[unit]}`;
}

/** `1,234` in the browser's own digits; `—` for nothing. */
export function count(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  return new Intl.NumberFormat().format(value);
}

/** A job's kind: `backup` or `restore` (jobs from a Marina before restores are backups). */
export function jobKind(job) {
  return job.kind || 'backup';
}

/** The 8-digit form of a snapshot id, as restic prints it; `latest` stays `latest`. */
export function shortSnapshot(snapshot) {
  if (!snapshot) return '—';
  return /^[0-9a-f]{9,}$/.test(snapshot) ? snapshot.slice(0, 8) : snapshot;
}

/** What a restore job does, as its `restore` says: the kind of its destination. */
export function restoreNoun(target) {
  return String(target || '').startsWith('db:') ? 'container' : 'volume';
}

/**
 * `into new volume app-data-copy` or `in place`: where a restore job's content goes; the
 * destination's name comes from the request (the API fills in the default it chose).
 */
export function restoreDestination(restore) {
  if (!restore) return '—';
  if (restore.inPlace) return 'in place';
  return restore.to ? `into new ${restoreNoun(restore.target)} ${restore.to}` : `into a new ${restoreNoun(restore.target)}`;
}
