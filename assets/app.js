// Marina's dashboard: login, hash routing and the screens. Plain modules, no framework,
// nothing from outside this server; every text from the API goes in as text, never markup.

import { api, onUnauthorized } from './api.js';
import { h, mount } from './dom.js';
import { overview } from './overview.js';
import { instance } from './instance.js';
import { restore } from './restore.js';
import { job } from './job.js';
import { systemLogs } from './logs.js';
import { config } from './config.js';
import { targets } from './targets.js';

const app = document.getElementById('app');
const topbar = document.getElementById('topbar');
const loginSection = document.getElementById('login');
const loginForm = document.getElementById('login-form');
const loginPassword = document.getElementById('login-password');
const loginError = document.getElementById('login-error');
const loginSubmit = document.getElementById('login-submit');
const logoutButton = document.getElementById('logout');
const nodeChip = document.getElementById('node-name');

/** What every screen may read: this node's name, and a signal that fires when it is left. */
const ctx = { node: '', version: '', signal: new AbortController().signal };
let current = null;
let authRequired = false;
let routing = false;

/** `#/jobs/a/5?instance=x` → screen, decoded path parts and query. */
function parse(hash) {
  const raw = hash.replace(/^#/, '') || '/';
  const [path, search = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const query = new URLSearchParams(search);
  if (parts.length === 0) return { screen: overview, nav: 'overview', params: { query } };
  if (parts[0] === 'instances' && parts.length === 2) return { screen: instance, nav: 'overview', params: { id: parts[1], query } };
  if (parts[0] === 'instances' && parts.length === 4 && parts[2] === 'restore') return { screen: restore, nav: 'overview', params: { id: parts[1], target: parts[3], query } };
  if (parts[0] === 'jobs' && parts.length === 3) return { screen: job, nav: 'overview', params: { node: parts[1], id: parts[2], query } };
  if (parts[0] === 'logs' && parts.length === 1) return { screen: systemLogs, nav: 'logs', params: { query } };
  if (parts[0] === 'config' && parts.length === 1) return { screen: config, nav: 'config', params: { query } };
  if (parts[0] === 'targets' && parts.length === 1) return { screen: targets, nav: 'targets', params: { query } };
  return null;
}

function leave() {
  if (current) current.abort();
  current = null;
}

async function route() {
  leave();
  const controller = new AbortController();
  current = controller;
  const target = parse(window.location.hash);
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (target && link.dataset.nav === target.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  window.scrollTo(0, 0);
  if (!target) {
    mount(app, h('div', { class: 'banner banner-error', role: 'alert' }, 'There is no such page. ', h('a', { href: '#/' }, 'Go to the overview.')));
    return;
  }
  const screenCtx = { ...ctx, signal: controller.signal };
  try {
    await target.screen(app, target.params, screenCtx);
  } catch (e) {
    if (e.status === 401 || controller.signal.aborted) return;
    mount(app, h('div', { class: 'banner banner-error', role: 'alert' }, `This page could not be shown: ${e.message}`));
  }
}

function showLogin(note) {
  leave();
  topbar.hidden = true;
  mount(app);
  loginSection.hidden = false;
  loginError.hidden = !note;
  loginError.textContent = note || '';
  loginPassword.value = '';
  loginPassword.focus();
}

async function enter() {
  loginSection.hidden = true;
  topbar.hidden = false;
  logoutButton.hidden = !authRequired;
  try {
    const info = await api('/api/info');
    ctx.node = info.nodeName;
    ctx.version = info.version;
    nodeChip.textContent = info.nodeName || 'no config yet';
    nodeChip.title = `This node · Marina ${info.version}`;
  } catch (e) {
    if (e.status === 401) return;
    nodeChip.textContent = 'unknown node';
  }
  if (!routing) {
    routing = true;
    window.addEventListener('hashchange', route);
  }
  await route();
}

function capitalised(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  loginSubmit.disabled = true;
  loginError.hidden = true;
  try {
    await api('/api/auth/login', { method: 'POST', body: { password: loginPassword.value }, allow401: true });
    loginPassword.value = '';
    await enter();
  } catch (e) {
    let text;
    if (e.status === 429) {
      const seconds = Number.parseInt(e.retryAfter, 10);
      text = Number.isFinite(seconds) ? `Too many attempts, retry in ${seconds} s.` : capitalised(e.message);
    } else {
      text = `${capitalised(e.message)}.`.replace(/\.\.$/, '.');
    }
    loginError.textContent = text;
    loginError.hidden = false;
    loginPassword.select();
  } finally {
    loginSubmit.disabled = false;
  }
});

logoutButton.addEventListener('click', async () => {
  try {
    await api('/api/auth/logout', { method: 'POST', allow401: true });
  } catch {
    // Logged out or not, the login screen is the right place now.
  }
  showLogin('');
});

onUnauthorized(() => showLogin('Your session has ended. Log in again.'));

async function start() {
  try {
    const check = await api('/api/auth/check');
    authRequired = check.authRequired;
    if (check.authRequired && !check.authenticated) {
      showLogin('');
      return;
    }
  } catch (e) {
    mount(app, h('div', { class: 'banner banner-error', role: 'alert' }, `Marina does not answer: ${e.message}`));
    return;
  }
  await enter();
}

start();
