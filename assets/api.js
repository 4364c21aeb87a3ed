// The one way the dashboard talks to Marina: same-origin fetches carrying the session
// cookie, JSON in and out, and errors as `ApiError` with the server's own message.

/**
 * A failed API call: HTTP status (0 when Marina could not be reached), message, and the
 * whole answer, whose other fields some errors carry (a refused restore's `plan`).
 */
export class ApiError extends Error {
  constructor(status, message, retryAfter, body = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
    this.body = body;
  }
}

let unauthorized = () => {};

/** What to do when any call answers 401 (the session ended): show the login screen. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/**
 * Calls `path` and returns the parsed JSON answer. `allow401` keeps a 401 from ending the
 * session view (the login call answers 401 for a wrong password).
 */
export async function api(path, { method = 'GET', body, allow401 = false } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `Marina cannot be reached (${e.message})`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message = data && typeof data.error === 'string' ? data.error : `HTTP ${response.status}`;
    const error = new ApiError(response.status, message, response.headers.get('Retry-After'), data);
    if (response.status === 401 && !allow401) unauthorized(error);
    throw error;
  }
  return data;
}

/** Like `api`, but a 404 (an endpoint this Marina does not have) answers `fallback`. */
export async function apiOptional(path, fallback = null) {
  try {
    return await api(path);
  } catch (e) {
    if (e.status === 404) return fallback;
    throw e;
  }
}

/** The peers and their state, or `null` when this Marina has no `/api/peers`. */
export async function peers() {
  try {
    return await apiOptional('/api/peers', null);
  } catch (e) {
    if (e.status === 401) throw e;
    // Peer information is an extra: the rest of a screen still works without it.
    return null;
  }
}
