// seller.js: a seller's products (drafts and archived included), create,
// edit with the ETag (If-Match), publish / archive, stock adjustment.
import { api, currentUser } from './api.js';
import { h, clear, money, page, messageBox, showProblem, field, select, busy, parseMoney, amountText, fieldError,
  clearFieldErrors, amountExample } from './ui.js';

const PRICE_MAX = 1e11;     // minor units, as the API bounds price_cents

// Runs write(etag) with If-Match.  Every order bumps a product's version,
// so a 412 is no conflict while unchanged(current product) holds (nothing
// the caller edits moved): asked again, at most three times, with the new
// ETag.  Otherwise the 412 is thrown.
async function writeUnlessChanged(id, etag, write, unchanged) {
  for (let tries = 0; ; tries++) {
    try {
      return await write(etag);
    } catch (e) {
      if (e.status !== 412 || tries >= 3) throw e;
      const cur = await api('GET', '/products/' + id, { auth: 'required' }).catch(() => null);
      if (!cur || !unchanged(cur.data)) throw e;
      etag = cur.headers.get('ETag');
    }
  }
}

const FIELDS = { price_cents: 'price' };
const etagOf = (p) => '"' + p.version + '"';

function productForm(p, submitText) {
  const cur = p ? p.currency : 'EUR';
  const f = {
    sku: h('input', { name: 'sku', type: 'text', required: true, maxlength: '64', value: p ? p.sku : '',
      disabled: !!p, 'aria-describedby': 'sku-hint' }),
    name: h('input', { name: 'name', type: 'text', required: true, maxlength: '200', value: p ? p.name : '' }),
    description: h('textarea', { name: 'description', rows: '4', maxlength: '5000' }, p ? p.description : ''),
    price: h('input', { name: 'price', type: 'text', inputmode: 'decimal', required: true,
      value: p ? amountText(p.price_cents, p.currency) : '', 'aria-describedby': 'price-hint' }),
    currency: h('input', { name: 'currency', type: 'text', required: true, maxlength: '3', value: cur,
      autocapitalize: 'characters', class: 'short' }),
    stock: h('input', { name: 'stock', type: 'number', min: '0', max: '1000000000', value: '0', inputmode: 'numeric' }),
    status: select({ name: 'status' }, p
      ? [['draft', 'Draft (only its seller and admins see it)'], ['active', 'Active (public)'], ['archived', 'Archived']]
      : [['draft', 'Draft (only you and admins see it)'], ['active', 'Active (public)']], p ? p.status : 'draft'),
  };
  const submit = h('button', { type: 'submit', class: 'primary' }, submitText);
  const form = h('form', { class: 'narrow', novalidate: true },
    field('SKU', {}, f.sku), h('p', { class: 'hint', id: 'sku-hint' }, p ? 'The SKU cannot change.' : 'Letters, digits, ".", "_" and "-"; unique in the shop.'),
    field('Name', {}, f.name), field('Description', {}, f.description),
    h('div', { class: 'row' }, field('Price', {}, f.price), field('Currency', {}, f.currency)),
    h('p', { class: 'hint', id: 'price-hint' }),
    p ? null : field('Initial stock', {}, f.stock),
    field('Status', {}, f.status),
    h('div', { class: 'actions' }, submit));
  const hint = form.querySelector('#price-hint');
  const setHint = () => {
    const c = f.currency.value.trim().toUpperCase();
    hint.textContent = /^[A-Z]{3}$/.test(c) ? 'In ' + c + ', for example ' + amountExample(c) + '.' : 'For example 12.50.';
  };
  f.currency.addEventListener('input', setHint);
  setHint();
  // The values to send, or null with the bad fields marked (and the first
  // focused, the reason said in `box` when given).
  form.values = (box) => {
    const currency = f.currency.value.trim().toUpperCase();
    const price = parseMoney(f.price.value, currency);
    const bad = price === null ? 'Enter an amount such as ' + amountExample(currency) + ' (' + currency + ' has ' +
      amountExample(currency).replace(/^\d+\.?/, '').length + ' decimals at most).'
      : price > PRICE_MAX ? 'At most ' + money(PRICE_MAX, currency) + '.' : null;
    if (bad) {
      fieldError(f.price, bad);
      if (box) {
        box.show('error', h('p', {}, 'Please correct the fields marked below.'));
        f.price.focus();
      }
      return null;
    }
    const v = { name: f.name.value, description: f.description.value, price_cents: price, currency, status: f.status.value };
    if (!p) { v.sku = f.sku.value.trim(); v.stock = Number(f.stock.value || 0); }
    return v;
  };
  form.fields = f;
  form.submit = submit;
  return form;
}

export async function sellerPage(main) {
  const box = messageBox();
  const lbox = messageBox();   // the list's own load errors (never hidden by a notice)
  const list = h('div', { class: 'products' });
  const more = h('button', { type: 'button', hidden: true }, 'More products');
  const status = h('p', { class: 'muted', role: 'status' });
  let cursor = null;
  const me = currentUser();

  // An admin sees every seller's products here (the API shows them all to
  // admins); a seller their own.
  const all = me.role === 'admin';
  async function load(reset) {
    if (reset) { cursor = null; clear(list); }
    const qs = new URLSearchParams({ limit: '20' });
    if (!all) qs.set('seller_id', String(me.id));
    if (cursor) qs.set('cursor', cursor);
    try {
      const r = await api('GET', '/products?' + qs, { auth: 'required' });
      for (const p of r.data.items) list.append(row(p));
      cursor = r.data.next_cursor;
      more.hidden = !cursor;
      status.textContent = list.children.length ? '' : all ? 'No products yet.' : 'You have no products yet.';
      lbox.hide();
    } catch (e) {
      showProblem(lbox, e);
      const again = h('button', { type: 'button' }, 'Load the list again');
      again.addEventListener('click', busy(again, () => load(true)));
      lbox.append(again);
    }
  }

  function row(p) {
    const rbox = messageBox();
    const delta = h('input', { name: 'delta', type: 'number', inputmode: 'numeric', class: 'qty', placeholder: '+5 or -2' });
    const apply = h('button', { type: 'submit' }, 'Adjust stock');
    const stockForm = h('form', { class: 'inline', novalidate: true, 'aria-label': 'Adjust stock of ' + p.name },
      field('Stock change', {}, delta), apply);
    const stockText = h('span', {}, String(p.stock));
    stockForm.addEventListener('submit', busy(apply, async () => {
      rbox.hide();
      clearFieldErrors(stockForm);
      const d = Number(delta.value);
      if (!/^\s*[-+]?\d+\s*$/.test(delta.value) || !Number.isInteger(d) || d === 0) {
        fieldError(delta, 'Enter a whole number other than 0.');
        rbox.show('error', h('p', {}, 'Enter the change of stock as a whole number other than 0, such as +5 or -2.'));
        delta.focus();
        return;
      }
      try {
        const r = await api('POST', '/products/' + p.id + '/stock', { body: { delta: d }, auth: 'required' });
        p.stock = r.data.stock; p.version = r.data.version;
        stockText.textContent = String(p.stock);
        delta.value = '';
        rbox.show('info', h('p', {}, 'Stock of ' + p.name + ' is now ' + p.stock + '.'));
      } catch (e) {
        if (e.code === 'insufficient_stock') {
          rbox.show('error', h('p', {}, 'Stock cannot go below zero: ' + p.name + ' has ' + ((e.items && e.items[0] && e.items[0].available) ?? p.stock) + '.'));
          fieldError(delta, 'Too large a decrease.');
        } else showProblem(rbox, e, stockForm);
      }
    }));
    const acts = [];
    // fn(etag) publishes or archives.  A 412 because only the stock moved
    // (an order, say) is no conflict: asked again with the new ETag while
    // the status is still the one shown.
    const change = async (label, fn) => {
      rbox.hide();
      try {
        await writeUnlessChanged(p.id, etagOf(p), fn, (cur) => cur.status === p.status);
        box.show('info', h('p', {}, label));
      } catch (e) {
        if (e.status !== 412) { showProblem(rbox, e); return; }
        box.show('error', h('p', {}, p.name + ' was changed elsewhere since this list was loaded; nothing was changed. The list now shows its current state: check it and try again.'));
      }
      await load(true);
      box.setAttribute('tabindex', '-1');
      box.focus();
    };
    if (p.status === 'draft') {
      const b = h('button', { type: 'button', class: 'primary' }, 'Publish');
      b.addEventListener('click', busy(b, () => change(p.name + ' is published.', (etag) =>
        api('PATCH', '/products/' + p.id, { body: { status: 'active' }, contentType: 'application/merge-patch+json',
          headers: { 'If-Match': etag }, auth: 'required' }))));
      acts.push(b);
    }
    if (p.status !== 'archived') {
      const b = h('button', { type: 'button', class: 'danger' }, 'Archive');
      b.addEventListener('click', busy(b, () => change(p.name + ' is archived.', (etag) =>
        api('DELETE', '/products/' + p.id, { headers: { 'If-Match': etag }, auth: 'required' }))));
      acts.push(b);
    }
    acts.unshift(h('a', { class: 'button', href: '#/seller/edit/' + p.id, 'aria-label': 'Edit ' + p.name }, 'Edit'));
    return h('article', { class: 'card wide', 'data-product-id': String(p.id), 'aria-labelledby': 'p-' + p.id },
      h('h2', { id: 'p-' + p.id }, h('a', { href: '#/product/' + p.id }, p.name)),
      h('p', {}, h('span', { class: 'badge status-' + p.status }, p.status), ' SKU ' + p.sku + ' · ' +
        money(p.price_cents, p.currency) + ' · stock ', stockText),
      h('div', { class: 'actions' }, acts), stockForm, rbox);
  }

  more.addEventListener('click', busy(more, () => load(false)));
  page(main, all ? 'All products' : 'My products', h('p', {}, h('a', { class: 'button primary', href: '#/seller/new' }, 'New product')),
    box, lbox, status, list, h('div', { class: 'actions' }, more));
  await load(true);
}

export function newProductPage(main) {
  const box = messageBox();
  const form = productForm(null, 'Create product');
  form.addEventListener('submit', busy(form.submit, async () => {
    box.hide();
    clearFieldErrors(form);
    const v = form.values(box);
    if (!v) return;
    try {
      const r = await api('POST', '/products', { body: v, auth: 'required' });
      location.hash = '#/seller/edit/' + r.data.id + '?created=1';
    } catch (e) { showProblem(box, e, form, FIELDS); }
  }));
  page(main, 'New product', box, form, h('p', {}, h('a', { href: '#/seller' }, 'Back to the product list')));
}

export async function editProductPage(main, id, params) {
  const box = messageBox();
  const slot = h('div', {});
  page(main, 'Edit product', box, slot, h('p', {}, h('a', { href: '#/seller' }, 'Back to the product list')));
  let etag = null;

  async function loadForm(keep) {
    const r = await api('GET', '/products/' + id, { auth: 'required' });
    etag = r.headers.get('ETag');
    const p = r.data;
    const me = currentUser();
    if (!me || (me.role !== 'admin' && p.seller_id !== me.id)) {
      // Someone else's product: not among yours, before anything is typed.
      notYours();
      return;
    }
    const form = productForm(p, 'Save changes');
    // The product's editable fields as last read or saved (the base of
    // "nothing the form edits changed elsewhere"), and as the form showed
    // them then: a text input drops a newline the API allows in a name, so
    // a field not edited here is sent back as it was read, not as shown.
    const shown = form.values() || {};
    const loaded = {};
    for (const k of Object.keys(shown)) loaded[k] = p[k];
    // PUT with the ETag.  A 412 because only the stock moved (an order, a
    // stock change) is no conflict with what the form edits: asked again
    // with the new ETag while every field the form shows is as loaded.
    const put = (v) => writeUnlessChanged(id, etag,
      (tag) => api('PUT', '/products/' + id, { body: v, headers: { 'If-Match': tag }, auth: 'required' }),
      (cur) => Object.keys(loaded).every((k) => cur[k] === loaded[k]));
    const ver = h('p', { class: 'muted', id: 'version' }, 'Version ' + p.version + ' · stock ' + p.stock + ' · ' +
      money(p.price_cents, p.currency));
    form.addEventListener('submit', busy(form.submit, async () => {
      box.hide();
      clearFieldErrors(form);
      const typed = form.values(box);
      if (!typed) return;
      const v = {};
      for (const [k, x] of Object.entries(typed)) v[k] = x === shown[k] ? loaded[k] : x;
      try {
        const r2 = await put(v);
        for (const k of Object.keys(loaded)) loaded[k] = r2.data[k];
        Object.assign(shown, typed);
        etag = r2.headers.get('ETag');
        ver.textContent = 'Version ' + r2.data.version + ' · stock ' + r2.data.stock + ' · ' + money(r2.data.price_cents, r2.data.currency);
        box.show('info', h('p', {}, 'Saved: ' + r2.data.name + ' is now version ' + r2.data.version + '.'));
      } catch (e) {
        if (e.status === 412) {
          // Changed elsewhere: show the current version, and what was typed
          // here that it does not have, so nothing is lost silently.
          const lost = Object.entries(v).filter(([k, x]) => k !== 'sku' && k !== 'stock' && loaded[k] !== x);
          await loadForm(true);
          const cur = slot.querySelector('form').values() || {};
          const diff = lost.filter(([k, x]) => cur[k] !== x);
          box.show('error',
            h('p', {}, 'This product was changed elsewhere (another tab or person) since you opened it, so your changes were NOT saved. ' +
              'The form now shows the current version.'),
            diff.length ? h('p', {}, 'Your unsaved values, to enter again if you still want them:') : null,
            diff.length ? h('ul', {}, diff.map(([k, x]) => h('li', {}, (k === 'price_cents' ? 'price' : k) + ': ' +
              (k === 'price_cents' ? amountText(x, v.currency) : String(x))))) : null);
          box.setAttribute('tabindex', '-1');
          box.focus();
        } else showProblem(box, e, form, FIELDS);
      }
    }));
    slot.replaceChildren(ver, form);
    if (!keep && params.get('created')) {
      box.show('info', h('p', {}, 'Created ' + p.name + ' (' + p.status + ').'));
      history.replaceState(history.state, '', '#/seller/edit/' + id);   // said once, not at every reload
    }
  }
  function notYours() {
    slot.replaceChildren();
    box.show('error', h('p', {}, 'No such product among yours.'));
  }
  try { await loadForm(false); } catch (e) {
    if (e.status === 404) notYours();
    else showProblem(box, e);
  }
}
