// api.js: the one way the storefront talks to the shop's public API, and the
// session.  The access token lives only in this module's memory; the refresh
// token is kept in sessionStorage (this tab only, gone when the tab closes) so
// that a reload can get a new access token with POST /auth/refresh.

const REFRESH_KEY = 'shop.refresh';
let access = null;          // the access token: memory only
let user = null;            // {id, email, name, role, created_at}
let refreshing = null;      // the one refresh in flight (refresh tokens are single-use)
let timer = null;
const listeners = new Set();

// An API error: the problem+json body's members (status, code, detail,
// errors, items, request_id) plus retryAfter (seconds, from Retry-After).
// A request that never got an answer has status 0 and code "network".
// The 401 of a sign-in that ended (its refresh refused); `more` adds to it.
export function sessionEnded(more = '', requestId = undefined) {
  return new ApiError(401, { code: 'unauthorized', title: 'Unauthorized',
    detail: 'Your session has ended. Please sign in again' + (more || '.'), request_id: requestId }, null);
}

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super((problem && (problem.detail || problem.title)) || 'HTTP ' + status);
    Object.assign(this, problem || {});
    this.status = status;
    this.code = (problem && problem.code) || (status === 0 ? 'network' : 'http_' + status);
    this.retryAfter = retryAfter;
  }
}

export function currentUser() { return user; }
export function signedIn() { return access !== null; }
export function onSession(fn) { listeners.add(fn); }
function changed() { for (const fn of listeners) fn(user); }

function retryAfterOf(resp) {
  const v = resp.headers.get('Retry-After');
  if (!v) return null;
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, Math.ceil((t - Date.now()) / 1000));
}

// One HTTP exchange.  Resolves {status, data, headers} for 2xx and 304;
// throws ApiError for anything else, and for a network failure.
async function exchange(method, path, { body, headers = {}, token = null, contentType } = {}) {
  const h = { Accept: 'application/json, application/problem+json', ...headers };
  if (token) h.Authorization = 'Bearer ' + token;
  const init = { method, headers: h, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    h['Content-Type'] = contentType || 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { title: 'Network error',
      detail: 'The shop could not be reached (the connection failed or was interrupted).' }, null);
  }
  let data = null;
  const text = await resp.text().catch(() => '');
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = null; }
  }
  if (resp.ok || resp.status === 304) return { status: resp.status, data, headers: resp.headers };
  const problem = data && typeof data === 'object' ? data : { title: resp.statusText || 'Error' };
  throw new ApiError(resp.status, problem, retryAfterOf(resp));
}

function setTokens(t) {
  access = t.access_token;
  user = t.user;
  sessionStorage.setItem(REFRESH_KEY, t.refresh_token);
  clearTimeout(timer);
  // Renew a minute before the access token expires (never sooner than 10 s).
  const secs = Math.max(10, (Number(t.expires_in) || 900) - 60);
  timer = setTimeout(() => { refresh().catch(() => {}); }, secs * 1000);
  changed();
}

function dropSession() {
  access = null;
  user = null;
  clearTimeout(timer);
  sessionStorage.removeItem(REFRESH_KEY);
  changed();
}

// Exchanges the stored refresh token for new tokens.  Only one at a time: a
// refresh token is single-use, and presenting a spent one revokes the family.
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const rt = sessionStorage.getItem(REFRESH_KEY);
      if (!rt) throw new ApiError(401, { code: 'unauthorized', detail: 'Please sign in.' }, null);
      try {
        const r = await exchange('POST', '/auth/refresh', { body: { refresh_token: rt } });
        setTokens(r.data);
      } catch (e) {
        if (e.status === 401) dropSession();
        throw e;
      }
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

// A copied tab ("Duplicate", or a window.open) starts with a copy of this
// tab's sessionStorage, refresh token included.  Refresh tokens are single
// use, and the second use of one revokes the sign-in, so two tabs on one
// token would both be signed out at the next refresh.  Each tab therefore
// has an id (sessionStorage) and answers for it on a BroadcastChannel; a tab
// that finds its id answered by another live tab is the copy: it takes a
// new id and leaves the session to the original (signed out here, with a
// word of why).  A reload finds no one answering: the old page is gone.
const TAB_KEY = 'shop.tab';
const tabs = 'BroadcastChannel' in window ? new BroadcastChannel('shop.tabs') : null;
const nonce = Math.random().toString(36).slice(2);
let tabId = sessionStorage.getItem(TAB_KEY);
function newTabId() { tabId = nonce + Date.now().toString(36); sessionStorage.setItem(TAB_KEY, tabId); }
if (tabs) {
  tabs.onmessage = (m) => {
    const d = m.data || {};
    if (d.ask && d.ask === tabId && d.from !== nonce) tabs.postMessage({ have: d.ask, to: d.from });
  };
}
function copiedTab() {
  if (!tabs || !tabId) { if (!tabId) newTabId(); return Promise.resolve(false); }
  return new Promise((resolve) => {
    const seen = (m) => { if (m.data && m.data.to === nonce && m.data.have === tabId) done(true); };
    const done = (copy) => { tabs.removeEventListener('message', seen); clearTimeout(t); resolve(copy); };
    tabs.addEventListener('message', seen);
    const t = setTimeout(() => done(false), 150);
    tabs.postMessage({ ask: tabId, from: nonce });
  });
}

// On page load: a refresh token in sessionStorage means this tab was signed
// in before the reload.  Network trouble keeps the token for a later try.
// Returns 'copied' when this tab is a copy of a signed-in one (see above).
export async function restore() {
  if (!sessionStorage.getItem(REFRESH_KEY)) {
    if (!tabId) newTabId();
    return;
  }
  if (await copiedTab()) {
    newTabId();
    sessionStorage.removeItem(REFRESH_KEY);
    return 'copied';
  }
  try { await refresh(); } catch (e) { /* signed out, or try again on the next call */ }
}

// api(method, path, {body, headers, auth, contentType}):
//   auth 'none'     never sends the token (public reads, served by the edge cache)
//   auth 'optional' sends it when signed in (the default)
//   auth 'required' fails with 401 "please sign in" when signed out
// A 401 to a request that carried a token is retried once after a refresh.
export async function api(method, path, opts = {}) {
  const auth = opts.auth || 'optional';
  if (auth === 'required' && !access && sessionStorage.getItem(REFRESH_KEY)) {
    await refresh().catch(() => {});
  }
  if (auth === 'required' && !access) {
    throw new ApiError(401, { code: 'unauthorized', title: 'Unauthorized', detail: 'Please sign in first.' }, null);
  }
  const token = auth === 'none' ? null : access;
  try {
    return await readRetrying(method, path, { ...opts, token });
  } catch (e) {
    if (e.status !== 401 || !token) throw e;
    try { await refresh(); } catch (e2) { throw sessionEnded('', e.request_id); }
    return exchange(method, path, { ...opts, token: access });
  }
}

// A read that got 503 (the database briefly unavailable, a failover) is
// asked again twice, after Retry-After (at most 3 s): reads change nothing.
// Writes are never repeated here; the pages say "retry" instead (and the
// checkout repeats its own, under one Idempotency-Key).
async function readRetrying(method, path, opts) {
  for (let i = 0; ; i++) {
    try {
      return await exchange(method, path, opts);
    } catch (e) {
      if (method !== 'GET' || e.status !== 503 || i === 2) throw e;
      await new Promise((r) => setTimeout(r, 1000 * Math.min(3, e.retryAfter || 1)));
    }
  }
}

export async function signIn(email, password) {
  const r = await exchange('POST', '/auth/login', { body: { email, password } });
  setTokens(r.data);
  return r.data.user;
}

export async function register(email, password, name) {
  const body = { email, password };
  if (name) body.name = name;
  return (await exchange('POST', '/auth/register', { body })).data;
}

export async function signOut() {
  const rt = sessionStorage.getItem(REFRESH_KEY);
  dropSession();
  if (rt) {
    try { await exchange('POST', '/auth/logout', { body: { refresh_token: rt } }); } catch (e) { /* revoked at expiry anyway */ }
  }
}

export function hasRole(...roles) { return !!user && roles.includes(user.role); }
