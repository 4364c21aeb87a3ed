// Restoring one target (`#/instances/{id}/restore/{target}`): its snapshots, newest first;
// where the content goes (a new volume or container, or in place behind a safety snapshot);
// the dry run's plan for exactly those choices; and only then, after a confirmation, the
// restore job, followed on its job screen. Nothing changes before the operator confirms a
// plan without conflicts, and the job is asked for with the destination the plan showed.

import { api } from './api.js';
import { h, mount, instanceHref, jobHref } from './dom.js';
import { absolute, bytes, count, relative } from './format.js';

/** How long the name field must rest before its dry run is asked for. */
const NAME_PAUSE_MS = 500;
/** What Docker accepts as a volume or container name (the API's `to`). */
const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const SAFETY_TAG = 'marina:pre-restore';

/** The words that differ between a volume and a database target. */
function wordsFor(target) {
  const name = target.slice(target.indexOf(':') + 1);
  if (target.startsWith('db:')) {
    return {
      name,
      noun: 'container',
      intoNew: 'Into a new container',
      intoNewNote: `A new container from the image of ${name}, with its environment, on no network, gets the snapshot's dump loaded. ${name} itself is not touched.`,
      inPlaceNote: `Load the snapshot's dump into the running container ${name}, replacing its data.`,
      warning: [
        h('strong', {}, 'In place replaces the database. '),
        `A safety snapshot of the current database of ${name} is saved first (tagged ${SAFETY_TAG}); then the dump is loaded into ${name} with the database's own client, replacing what it holds now `,
        '(Redis: the container is stopped, its dump.rdb replaced, and started again). ',
        'Whatever was written since the snapshot is then only in the safety snapshot; restoring that one in place undoes this restore.',
      ],
    };
  }
  return {
    name,
    noun: 'volume',
    intoNew: 'Into a new volume',
    intoNewNote: `A new volume gets the snapshot's files. Volume ${name} and the containers that use it are not touched.`,
    inPlaceNote: `Replace the content of volume ${name} itself.`,
    warning: [
      h('strong', {}, 'In place replaces the volume\'s content. '),
      `The containers that use volume ${name} are stopped; its current content is saved as a safety snapshot (tagged ${SAFETY_TAG}); `,
      'then the content is replaced by the snapshot\'s and the containers are started again. ',
      'Whatever was written since the snapshot is then only in the safety snapshot; restoring that one in place undoes this restore.',
    ],
  };
}

function fact(label, ...value) {
  return h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, ...value));
}

export async function restore(root, params, ctx) {
  const id = params.id;
  const target = params.target;
  const words = wordsFor(target);
  const base = `/api/instances/${encodeURIComponent(id)}`;

  /** The snapshots listed, newest first. */
  let snapshots = [];
  /** The picked snapshot's id, or null. */
  let chosen = null;
  let inPlace = false;
  /** The plan shown, and the request (as a key) it is the plan of. */
  let plan = null;
  let planKey = null;
  /** Why there is no plan to show: the dry run's error, in words. */
  let planError = null;
  /** Numbers each dry run; an answer is shown only if no newer one was asked for. */
  let asked = 0;
  let pending = false;
  let nameTimer = null;
  let sending = false;

  // ---- the parts of the screen that change ----
  const listProblem = h('div', { class: 'banner banner-error', role: 'alert', id: 'restore-list-error', hidden: true });
  const listBody = h('div', { id: 'restore-snapshot-list' }, h('p', { class: 'muted' }, 'Loading the snapshots…'));
  const listCount = h('span', { class: 'count', id: 'restore-snapshot-count' }, '…');
  const countButton = h('button', {
    type: 'button', class: 'button button-quiet button-small push-end', id: 'restore-count',
    title: 'restic before 0.17 does not record sizes; counting takes about a second per snapshot',
    onclick: () => loadSnapshots(true),
  }, 'Count files and sizes');

  const modeNew = h('input', { type: 'radio', name: 'restore-mode', id: 'restore-mode-new', value: 'new', checked: true, onchange: () => setMode(false) });
  const modeInPlace = h('input', { type: 'radio', name: 'restore-mode', id: 'restore-mode-in-place', value: 'in-place', onchange: () => setMode(true) });
  const nameInput = h('input', {
    type: 'text', id: 'restore-to', name: 'to', autocomplete: 'off', spellcheck: 'false', pattern: NAME_PATTERN.source,
    placeholder: 'filled in by the dry run', 'aria-describedby': 'restore-to-note',
    oninput: () => nameChanged(),
  });
  const nameNote = h('p', { class: 'muted small', id: 'restore-to-note' },
    `It must not exist yet. The dry run proposes ${words.name}-restore-DATE-TIME.`);
  const nameField = h('div', { class: 'choice-extra', id: 'restore-to-field' },
    h('label', { for: 'restore-to' }, `Name of the new ${words.noun}`), nameInput, nameNote);
  const warning = h('div', { class: 'banner banner-warn restore-warning', id: 'restore-in-place-warning', role: 'note', hidden: true }, words.warning);

  const planPanel = h('section', { class: 'panel', id: 'restore-plan', 'data-state': 'idle', 'aria-live': 'polite' });
  const againButton = h('button', { type: 'button', class: 'button button-quiet button-small push-end', id: 'restore-dry-run', disabled: true, onclick: () => dryRun() }, 'Run the dry run again');

  const startButton = h('button', { type: 'button', class: 'button button-primary', id: 'restore-start', disabled: true, onclick: () => openConfirm() }, 'Restore…');
  const startNote = h('span', { class: 'muted small', id: 'restore-start-note' });
  const confirmText = h('p', { id: 'restore-confirm-text' });
  const confirmYes = h('button', { type: 'button', class: 'button button-primary', id: 'restore-confirm-yes', onclick: () => send() }, 'Restore now');
  const confirmNo = h('button', { type: 'button', class: 'button', id: 'restore-confirm-no', onclick: () => closeConfirm(true) }, 'Cancel');
  const confirmBox = h('div', {
    class: 'confirm', id: 'restore-confirm', role: 'alertdialog', 'aria-labelledby': 'restore-confirm-title', 'aria-describedby': 'restore-confirm-text', hidden: true,
    onkeydown: (event) => { if (event.key === 'Escape') closeConfirm(true); },
  }, h('h4', { id: 'restore-confirm-title' }, 'Confirm the restore'), confirmText, h('div', { class: 'confirm-actions' }, confirmYes, confirmNo));
  const sendProblem = h('div', { class: 'banner banner-error', role: 'alert', id: 'restore-error', hidden: true });

  mount(root,
    h('nav', { class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' / ', h('a', { href: instanceHref(id) }, id), ' / ', h('span', {}, 'restore')),
    h('div', { class: 'page-head' },
      h('h1', {}, 'Restore'),
      h('code', { class: 'restore-target', id: 'restore-target' }, target),
      h('span', { class: 'chip' }, `${id} · ${ctx.node || 'this node'}`)),
    listProblem,
    h('section', { class: 'panel', id: 'restore-snapshots-panel' },
      h('div', { class: 'toolbar' }, h('h3', {}, '1. Pick a snapshot'), listCount, countButton),
      listBody),
    h('section', { class: 'panel', id: 'restore-mode-panel' },
      h('fieldset', { class: 'choices' },
        h('legend', {}, h('h3', {}, '2. Choose where it goes')),
        h('div', { class: 'choice' },
          h('label', { class: 'choice-label', for: 'restore-mode-new' }, modeNew, h('span', {}, h('strong', {}, words.intoNew), h('span', { class: 'muted small choice-note' }, words.intoNewNote))),
          nameField),
        h('div', { class: 'choice' },
          h('label', { class: 'choice-label', for: 'restore-mode-in-place' }, modeInPlace, h('span', {}, h('strong', {}, 'In place'), h('span', { class: 'muted small choice-note' }, words.inPlaceNote))))),
      warning),
    planPanel,
    h('section', { class: 'panel', id: 'restore-go' },
      h('h3', {}, '4. Restore'),
      h('div', { class: 'toolbar' }, startButton, startNote),
      confirmBox,
      sendProblem));

  // ---- what the operator chose, as the API's request ----

  /** The request the current choices make (without `dryRun`); `to` only when given. */
  function request() {
    const body = { target, snapshot: chosen };
    if (inPlace) body.inPlace = true;
    else if (nameInput.value.trim()) body.to = nameInput.value.trim();
    return body;
  }

  const keyOf = (body) => JSON.stringify([body.target, body.snapshot, Boolean(body.inPlace), body.to || null]);

  /** Why the choices cannot be dry-run yet, in words; null when they can. */
  function notReady() {
    if (!chosen) return 'Pick a snapshot first.';
    const name = nameInput.value.trim();
    if (!inPlace && name && !NAME_PATTERN.test(name)) {
      return `"${name}" is not a ${words.noun} name: it starts with a letter or digit and has only letters, digits, "_", "." and "-".`;
    }
    return null;
  }

  // ---- the snapshots ----

  async function loadSnapshots(withCounts = false) {
    countButton.disabled = true;
    if (withCounts) countButton.textContent = 'Counting…';
    try {
      const query = new URLSearchParams({ target });
      if (withCounts) query.set('count', 'true');
      const answer = await api(`${base}/snapshots?${query}`);
      if (ctx.signal.aborted) return;
      snapshots = [...answer.snapshots].sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
      const gone = chosen && !snapshots.some((s) => s.id === chosen);
      if (gone) chosen = null;
      listProblem.hidden = true;
      renderSnapshots();
      if (gone) update();
    } catch (e) {
      if (e.status === 401 || ctx.signal.aborted) return;
      listProblem.hidden = false;
      listProblem.textContent = `The snapshots of ${target} could not be listed: ${e.message}`;
      listCount.textContent = '—';
      mount(listBody, h('p', { class: 'empty' }, 'No snapshots to pick from.'));
    } finally {
      countButton.disabled = false;
      countButton.textContent = 'Count files and sizes';
    }
  }

  function renderSnapshots() {
    listCount.textContent = String(snapshots.length);
    if (!snapshots.length) {
      mount(listBody, h('p', { class: 'empty', id: 'restore-no-snapshots' },
        `Instance ${id} has no snapshot of ${target} yet: back it up first (`, h('a', { href: instanceHref(id) }, 'Back up now'), ' on its page).'));
      return;
    }
    const cell = (label, ...content) => h('td', { 'data-label': label }, h('div', { class: 'cell' }, ...content));
    mount(listBody, h('div', { class: 'table-wrap' }, h('table', { class: 'table snapshot-table', id: 'restore-snapshots' },
      h('caption', { class: 'visually-hidden' }, `Snapshots of ${target}, newest first`),
      h('thead', {}, h('tr', {}, ['Pick', 'Time', 'Host', 'Snapshot', 'Files', 'Size', 'Kind'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, snapshots.map((snapshot) => {
        const radioId = `restore-snapshot-${snapshot.shortId}`;
        const radio = h('input', {
          type: 'radio', name: 'restore-snapshot', id: radioId, value: snapshot.id, checked: snapshot.id === chosen,
          'aria-label': `Snapshot ${snapshot.shortId} of ${absolute(snapshot.time)} from ${snapshot.host}`,
          onchange: () => pick(snapshot.id),
        });
        return h('tr', {
          class: snapshot.id === chosen ? 'row-picked' : null,
          'data-snapshot': snapshot.id, 'data-short-id': snapshot.shortId, 'data-pre-restore': String(snapshot.preRestore),
          // The whole row picks, for a mouse or a finger; the radio is what the keyboard uses.
          onclick: (event) => { if (event.target !== radio && !event.target.closest('label')) radio.click(); },
        },
        cell('Pick', radio),
        cell('Time', h('label', { for: radioId, class: 'when' },
          h('time', { class: 'when-rel', datetime: snapshot.time }, absolute(snapshot.time)),
          h('span', { class: 'when-abs' }, relative(snapshot.time)))),
        cell('Host', snapshot.host),
        cell('Snapshot', h('code', { class: 'snapshot-id', title: snapshot.id }, snapshot.shortId)),
        cell('Files', h('span', { class: 'snapshot-files' }, count(snapshot.files))),
        cell('Size', h('span', { class: 'snapshot-size' }, bytes(snapshot.bytes))),
        cell('Kind', snapshot.preRestore
          ? h('span', { class: 'chip chip-warn', 'data-mark': 'pre-restore', title: 'Saved by an in-place restore just before it replaced the content; restoring it in place undoes that restore.' }, 'safety snapshot')
          : h('span', { class: 'muted' }, 'backup')));
      })))));
  }

  function pick(snapshotId) {
    chosen = snapshotId;
    for (const row of listBody.querySelectorAll('tr[data-snapshot]')) {
      row.classList.toggle('row-picked', row.dataset.snapshot === snapshotId);
    }
    choicesChanged();
  }

  // ---- the destination ----

  function setMode(place) {
    inPlace = place;
    nameField.hidden = place;
    warning.hidden = !place;
    confirmYes.className = place ? 'button button-danger' : 'button button-primary';
    choicesChanged();
  }

  function nameChanged() {
    clearTimeout(nameTimer);
    closeConfirm(false);
    update();
    nameTimer = setTimeout(() => dryRun(), NAME_PAUSE_MS);
  }

  function choicesChanged() {
    clearTimeout(nameTimer);
    closeConfirm(false);
    dryRun();
  }

  // ---- the dry run ----

  async function dryRun() {
    clearTimeout(nameTimer);
    const reason = notReady();
    if (reason) {
      planError = null;
      update();
      return;
    }
    const body = request();
    const number = ++asked;
    pending = true;
    update();
    try {
      const answer = await api(`${base}/restore`, { method: 'POST', body: { ...body, dryRun: true } });
      if (ctx.signal.aborted || number !== asked) return;
      showPlan(answer, body);
    } catch (e) {
      if (e.status === 401 || ctx.signal.aborted || number !== asked) return;
      plan = null;
      planKey = null;
      planError = `The dry run failed: ${e.message}`;
    } finally {
      if (number === asked) {
        pending = false;
        update();
      }
    }
  }

  /** Shows `answer`, the plan of `body`; a plan asked for without a name fills in its own. */
  function showPlan(answer, body) {
    plan = answer;
    planError = null;
    let answered = body;
    if (!answer.inPlace && !body.to && !nameInput.value.trim()) {
      nameInput.value = answer.destination;
      answered = { ...body, to: answer.destination };
    }
    planKey = keyOf(answered);
  }

  /** Whether the plan shown answers the choices as they are now. */
  function planIsCurrent() {
    return plan !== null && planKey === keyOf(request());
  }

  function renderPlan() {
    const reason = notReady();
    const current = planIsCurrent();
    let state = 'idle';
    if (reason) state = 'idle';
    else if (pending) state = 'pending';
    else if (planError) state = 'error';
    else if (current) state = plan.conflicts.length ? 'conflicts' : 'ready';
    else if (plan) state = 'stale';
    planPanel.dataset.state = state;
    againButton.disabled = Boolean(reason) || pending;

    const children = [h('div', { class: 'toolbar' }, h('h3', {}, '3. Check the dry run'),
      state === 'pending' ? h('span', { class: 'live live-on', id: 'restore-planning' }, 'Planning…') : null, againButton)];
    if (reason) {
      children.push(h('p', { class: 'empty', id: 'restore-plan-waiting' }, chosen ? reason
        : 'Pick a snapshot to see what the restore would do. A dry run changes nothing.'));
    } else if (planError && !pending) {
      children.push(h('div', { class: 'banner banner-error', role: 'alert', id: 'restore-plan-error' }, planError));
    } else if (!plan) {
      children.push(h('p', { class: 'muted' }, 'Planning…'));
    } else {
      const destinationKind = plan.inPlace ? `in place: ${words.noun} ${plan.destination} itself` : `new ${words.noun}`;
      children.push(
        current ? null : h('p', { class: 'muted small', id: 'restore-plan-stale' }, 'This plan is for earlier choices; the dry run of the new ones follows.'),
        h('dl', { class: 'facts facts-wide plan-facts' },
          fact('Snapshot', h('code', { id: 'restore-plan-snapshot' }, plan.snapshot.shortId), h('span', { class: 'when-abs' }, `${absolute(plan.snapshot.time)} · ${plan.snapshot.host}`)),
          fact('Destination', h('code', { id: 'restore-destination' }, plan.destination), h('span', { class: 'when-abs', id: 'restore-destination-kind' }, destinationKind)),
          fact('Files', h('span', { id: 'restore-files' }, count(plan.files))),
          fact('Size', h('span', { id: 'restore-size' }, bytes(plan.bytes)))),
        h('h4', { class: 'plan-heading' }, 'Steps, in order'),
        h('ol', { class: 'plan-steps', id: 'restore-steps' }, plan.steps.map((step) => h('li', { 'data-action': step.action },
          h('strong', { class: 'step-action' }, step.action), ' ', h('span', { class: 'step-subject' }, step.subject)))),
        plan.conflicts.length
          ? h('div', { class: 'banner banner-error', role: 'alert', id: 'restore-conflicts' },
            h('strong', {}, plan.conflicts.length === 1 ? 'This restore cannot run as chosen:' : `This restore cannot run as chosen (${plan.conflicts.length} conflicts):`),
            h('ul', { class: 'plain-list conflict-list' }, plan.conflicts.map((c) => h('li', {}, c))))
          : h('div', { class: 'banner banner-ok', id: 'restore-no-conflicts' }, 'No conflicts: the restore can run as shown. The dry run changed nothing.'));
    }
    mount(planPanel, children);
  }

  /** Why "Restore…" cannot be pressed now, in words; null when it can. */
  function blocked() {
    const reason = notReady();
    if (reason) return reason;
    if (sending) return 'Asking Marina to start the restore…';
    if (pending) return 'Waiting for the dry run…';
    if (planError) return 'The dry run failed; see above.';
    if (!planIsCurrent()) return 'Waiting for the dry run…';
    if (plan.conflicts.length) return 'The dry run found conflicts; change the choices above.';
    return null;
  }

  function update() {
    renderPlan();
    const reason = blocked();
    startButton.disabled = reason !== null;
    startNote.textContent = reason || (plan.inPlace
      ? `Replaces the content of ${words.noun} ${plan.destination} after a safety snapshot.`
      : `Creates ${words.noun} ${plan.destination}; nothing that exists is changed.`);
    if (reason !== null && !confirmBox.hidden && !sending) closeConfirm(false);
  }

  // ---- confirm and send ----

  function openConfirm() {
    if (blocked() !== null) return;
    const snapshot = plan.snapshot;
    confirmText.textContent = plan.inPlace
      ? `Replace the content of ${words.noun} ${plan.destination} with snapshot ${snapshot.shortId} of ${absolute(snapshot.time)}? The steps above run in order, the safety snapshot first.`
      : `Restore snapshot ${snapshot.shortId} of ${absolute(snapshot.time)} into the new ${words.noun} ${plan.destination}?`;
    confirmYes.textContent = plan.inPlace ? `Replace ${plan.destination}` : 'Restore now';
    sendProblem.hidden = true;
    confirmBox.hidden = false;
    startButton.hidden = true;
    confirmYes.focus();
  }

  function closeConfirm(refocus) {
    confirmBox.hidden = true;
    startButton.hidden = false;
    if (refocus) startButton.focus();
  }

  async function send() {
    if (blocked() !== null || sending) return;
    // Exactly what the plan shown was made for, with the destination it named.
    const body = request();
    if (!body.inPlace) body.to = plan.destination;
    sending = true;
    confirmYes.disabled = true;
    confirmNo.disabled = true;
    update();
    try {
      const answer = await api(`${base}/restore`, { method: 'POST', body });
      if (ctx.signal.aborted) return;
      window.location.hash = jobHref(ctx.node, answer.jobId, id);
    } catch (e) {
      if (e.status === 401 || ctx.signal.aborted) return;
      sendProblem.hidden = false;
      sendProblem.textContent = `The restore was not started: ${e.message}`;
      // A 409 with a plan: the world changed since the dry run; show why.
      if (e.body && e.body.plan) showPlan(e.body.plan, body);
      closeConfirm(false);
    } finally {
      sending = false;
      confirmYes.disabled = false;
      confirmNo.disabled = false;
      if (!ctx.signal.aborted) update();
    }
  }

  ctx.signal.addEventListener('abort', () => clearTimeout(nameTimer));
  update();
  await loadSnapshots(false);
}
