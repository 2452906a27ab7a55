// ui.js: small DOM helpers, money, and the one way problems are shown.
// Every piece of text from the API goes in through textContent (h() below),
// never as HTML.

// h('p', {class: 'x', onclick: fn}, 'text', child, ...)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// Minor units per currency as ISO 4217 has them (the API's price_cents
// count them): the codes whose exponent is not 2.  Not from Intl, whose
// CLDR digits differ for some (HUF 0, IQD 0, where ISO says 2 and 3).
const ISO_DIGITS = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0, UYI: 0,
  VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
  CLF: 4, UYW: 4,
};
export function minorDigits(currency) {
  return Object.prototype.hasOwnProperty.call(ISO_DIGITS, currency) ? ISO_DIGITS[currency] : 2;
}

export function money(cents, currency) {
  const d = minorDigits(currency);
  const v = Number(cents) / 10 ** d;
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency,
      minimumFractionDigits: d, maximumFractionDigits: d }).format(v);
  } catch (e) { return v.toFixed(d) + ' ' + currency; }
}

// An amount as a person types it in this currency: "12.50", "1500", "12.500".
export function amountExample(currency) {
  const d = minorDigits(currency);
  return d === 0 ? '1500' : '12.' + '50'.padEnd(d, '0').slice(0, d);
}

// "12.5" -> 1250 (EUR), exactly: parsed as a string, never through a float.
// Returns null when the text is not an amount with at most the currency's
// digits after the point.
export function parseMoney(text, currency) {
  const d = minorDigits(currency);
  const m = /^\s*(\d{1,12})(?:[.,](\d*))?\s*$/.exec(text || '');
  if (!m || (m[2] && m[2].length > d)) return null;
  return Number(m[1]) * 10 ** d + Number(((m[2] || '') + '0'.repeat(d)).slice(0, d) || 0);
}

export function amountText(cents, currency) {
  const d = minorDigits(currency);
  if (d === 0) return String(cents);
  const s = String(cents).padStart(d + 1, '0');
  return s.slice(0, -d) + '.' + s.slice(-d);
}

export function when(ts) {
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? ts : d.toLocaleString();
}

// The sentence a person reads for an API error.
export function problemText(e) {
  if (e.status === 0) {
    return 'The shop could not be reached (network error). Check your connection and try again.';
  }
  if (e.status === 429) {
    const s = e.retryAfter;
    return 'Too many requests from this address. ' +
      (s ? 'Please wait ' + s + ' second' + (s === 1 ? '' : 's') + ' before trying again.' : 'Please wait a moment before trying again.');
  }
  if (e.status === 503) {
    return 'The shop is temporarily unavailable; nothing was changed. Please retry' +
      (e.retryAfter ? ' in ' + e.retryAfter + ' second' + (e.retryAfter === 1 ? '' : 's') + '.' : ' in a moment.');
  }
  if (e.status >= 500) return 'Something went wrong on our side. Please try again.';
  if (e.status === 401 && e.code === 'invalid_credentials') return 'Wrong email or password.';
  if (e.status === 401) return e.detail || 'Please sign in.';
  if (e.code === 'validation_failed' && e.errors && e.errors.length) return 'Please correct the fields marked below.';
  return e.detail || e.title || 'The request failed (HTTP ' + e.status + ').';
}

// A message box: role=alert for errors (announced at once), role=status
// for notices.  Returns the element so a page can place it.
export function messageBox() {
  const box = h('div', { class: 'msg', hidden: true });
  box.show = (kind, ...content) => {
    clear(box);
    box.className = 'msg msg-' + kind;
    box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    box.append(...content.flat().filter((c) => c !== null && c !== undefined));
    box.hidden = false;
  };
  box.hide = () => { box.hidden = true; clear(box); };
  return box;
}

// Shows an ApiError in `box`; each field error of a 422 next to its field
// in `form` (fieldMap renames API fields to input names: price_cents ->
// price).  Field errors without an input are listed in the box.
export function showProblem(box, e, form, fieldMap = {}) {
  if (form) clearFieldErrors(form);
  if (!(e && 'status' in e)) {
    box.show('error', h('p', {}, 'Unexpected error: ' + (e && e.message)));
    return;
  }
  const loose = [];
  for (const fe of e.errors || []) {
    const name = fieldMap[fe.field] || fe.field;
    const input = form && form.querySelector('[name="' + CSS.escape(name) + '"]');
    if (input) fieldError(input, fe.message);
    else loose.push(h('li', {}, fe.field + ': ' + fe.message));
  }
  box.show('error',
    h('p', {}, problemText(e)),
    loose.length ? h('ul', {}, loose) : null,
    e.request_id ? h('p', { class: 'rid' }, 'Reference: ' + e.request_id) : null);
  const first = form && form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
}

export function fieldError(input, message) {
  const id = (input.id || input.name) + '-error';
  let p = document.getElementById(id);
  if (!p) {
    p = h('p', { class: 'field-error', id });
    input.insertAdjacentElement('afterend', p);
  }
  p.textContent = message;
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-describedby', id);
}

export function clearFieldErrors(root) {
  for (const p of root.querySelectorAll('.field-error')) p.remove();
  for (const i of root.querySelectorAll('[aria-invalid]')) {
    i.removeAttribute('aria-invalid');
    i.removeAttribute('aria-describedby');
  }
}

let seq = 0;
// A labelled input: field('Email', {name: 'email', type: 'email', ...})
export function field(label, attrs, control) {
  const id = attrs.id || 'f' + (++seq) + '-' + (attrs.name || 'x');
  const input = control || h('input', { ...attrs, id });
  if (control) control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

export function select(attrs, options, value) {
  return h('select', attrs, options.map(([v, t]) => h('option', { value: v, selected: v === value ? 'selected' : null }, t)));
}

// Sets the page title and the h1 that gets focus after a navigation.
export function page(main, title, ...content) {
  clear(main);
  document.title = title + ' · Shop';
  // Like h(): an absent part (null, undefined, false) shows nothing.
  main.append(h('h1', { tabindex: '-1' }, title),
    ...content.flat().filter((c) => c !== undefined && c !== null && c !== false));
}

// A button that runs an async action once at a time (disabled meanwhile).
export function busy(button, fn) {
  return async (ev) => {
    if (ev) ev.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try { await fn(ev); } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
      // A disabled button drops the focus to the page: give it back, unless
      // the action moved it somewhere on purpose.
      const a = document.activeElement;
      if (button.isConnected && (!a || a === document.body)) button.focus();
    }
  };
}
