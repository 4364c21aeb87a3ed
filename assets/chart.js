// The chart of job durations and outcomes over time: inline SVG, one bar per job in the
// order the jobs started, height = how long it ran, colour = how it ended. Drawn at the
// container's real width (and redrawn when that changes), so text stays legible on a phone.

import { h, s, jobHref } from './dom.js';
import { badgeStatus, duration, jobDuration, jobKind, jobTime, short, statusLabel } from './format.js';

const HEIGHT = 200;
const PAD = { top: 14, right: 10, bottom: 30, left: 52 };

/** A round step near `raw` (1, 2 or 5 times a power of ten). */
function niceStep(raw) {
  if (raw <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

/** The axis unit for a longest duration of `maxMs`. */
function unitFor(maxMs) {
  if (maxMs < 120_000) return { ms: 1000, label: 's' };
  if (maxMs < 2 * 3_600_000) return { ms: 60_000, label: 'min' };
  return { ms: 3_600_000, label: 'h' };
}

/** Time labels for jobs from `first` to `last` (milliseconds). */
function axisFormat(first, last) {
  const span = last - first;
  const sameDay = new Date(first).toDateString() === new Date(last).toDateString()
    && new Date(last).toDateString() === new Date().toDateString();
  if (span < 10 * 60_000) {
    return new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' });
  }
  if (sameDay) return new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
  return new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
}

function draw(container, jobs, now) {
  const width = Math.max(280, Math.floor(container.clientWidth || 640));
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const ordered = [...jobs].sort((a, b) => jobTime(a) - jobTime(b) || a.id - b.id);
  const durations = ordered.map((job) => jobDuration(job, now) ?? 0);
  const maxMs = Math.max(1000, ...durations);
  const unit = unitFor(maxMs);
  const step = niceStep(maxMs / unit.ms / 4);
  const top = Math.ceil(maxMs / unit.ms / step) * step;
  const y = (ms) => PAD.top + plotH - (ms / unit.ms / top) * plotH;

  const svg = s('svg', {
    class: 'chart-svg',
    width,
    height: HEIGHT,
    viewBox: `0 0 ${width} ${HEIGHT}`,
    role: 'img',
    'aria-label': `Durations of ${ordered.length} jobs`,
  });

  for (let value = 0; value <= top + 1e-9; value += step) {
    const py = y(value * unit.ms);
    svg.append(
      s('line', { class: 'grid', x1: PAD.left, x2: width - PAD.right, y1: py, y2: py }),
      s('text', { class: 'axis', x: PAD.left - 6, y: py + 4, 'text-anchor': 'end' },
        `${Number(value.toFixed(2))} ${unit.label}`),
    );
  }

  const slot = plotW / Math.max(ordered.length, 1);
  const barW = Math.max(2, Math.min(26, slot * 0.7));
  ordered.forEach((job, i) => {
    const ms = durations[i];
    const x = PAD.left + slot * i + (slot - barW) / 2;
    // A job that ended at once (or never started) still shows its outcome as a sliver.
    const barH = Math.max(4, PAD.top + plotH - y(ms));
    const status = badgeStatus(job.status);
    const tip = `${jobKind(job) === 'restore' ? 'Restore' : 'Backup'} ${job.iid ?? job.id} of ${job.instanceId} · ${statusLabel(job.status)} · `
      + `${jobDuration(job, now) === null ? 'did not start' : duration(ms)} · ${short(job.lastStartedAt || job.createdAt)}`;
    svg.append(
      s('a', { href: jobHref(job.nodeName, job.id, job.instanceId), class: 'bar-link' },
        s('rect', {
          class: `bar bar-${status}`,
          x: x.toFixed(1),
          y: (PAD.top + plotH - barH).toFixed(1),
          width: barW.toFixed(1),
          height: barH.toFixed(1),
          rx: Math.min(3, barW / 3).toFixed(1),
          'data-job': job.id,
        }, s('title', {}, tip))),
    );
  });

  svg.append(s('line', {
    class: 'baseline', x1: PAD.left, x2: width - PAD.right, y1: PAD.top + plotH, y2: PAD.top + plotH,
  }));

  // Start, middle and end times under the bars they belong to (fewer when they would collide),
  // as precise as the span of the jobs needs.
  const label = axisFormat(jobTime(ordered[0]), jobTime(ordered[ordered.length - 1]));
  const labelCount = Math.min(ordered.length, plotW < 360 ? 2 : 3);
  const picks = labelCount === 1 ? [0]
    : Array.from({ length: labelCount }, (_, k) => Math.round((k * (ordered.length - 1)) / (labelCount - 1)));
  for (const [k, i] of [...new Set(picks)].entries()) {
    const job = ordered[i];
    const cx = PAD.left + slot * i + slot / 2;
    const anchor = k === 0 && picks.length > 1 ? 'start' : k === picks.length - 1 && picks.length > 1 ? 'end' : 'middle';
    const tx = anchor === 'start' ? Math.max(PAD.left, cx - barW / 2) : anchor === 'end' ? Math.min(width - PAD.right, cx + barW / 2) : cx;
    svg.append(s('text', { class: 'axis', x: tx, y: HEIGHT - 10, 'text-anchor': anchor }, label.format(new Date(jobTime(job)))));
  }
  container.replaceChildren(svg);
}

/**
 * A chart of `jobs` (entries of `/api/jobs` or `/api/status/{id}`) with its legend, or a
 * note when there are none.
 */
export function jobChart(jobs, { title = 'Job durations', id } = {}) {
  const now = Date.now();
  const canvas = h('div', { class: 'chart-canvas' });
  const present = [...new Set(jobs.map((job) => badgeStatus(job.status)))];
  const figure = h('figure', { class: 'chart', id },
    h('figcaption', { class: 'chart-head' },
      h('span', { class: 'chart-title' }, title),
      h('span', { class: 'legend' }, present.map((status) => h('span', { class: 'legend-item' },
        h('span', { class: `swatch swatch-${status}` }), statusLabel(status))))),
    jobs.length ? canvas : h('p', { class: 'empty' }, 'No jobs yet. They appear here once a backup has run.'));
  if (!jobs.length) return figure;

  let lastWidth = -1;
  const observer = new ResizeObserver(() => {
    if (!canvas.isConnected) {
      observer.disconnect();
      return;
    }
    if (canvas.clientWidth !== lastWidth) {
      lastWidth = canvas.clientWidth;
      draw(canvas, jobs, now);
    }
  });
  observer.observe(canvas);
  return figure;
}
