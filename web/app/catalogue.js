// catalogue.js: the product list (search, "more" by keyset cursor) and the
// product page.
import { api, signedIn } from './api.js';
import { addToCart, quantityOf } from './cart.js';
import { h, clear, money, page, messageBox, showProblem, field, busy } from './ui.js';

const PAGE = 12;

function stockText(p) {
  return p.stock > 0 ? p.stock + ' in stock' : 'Out of stock';
}

function addButton(p, box, qtyInput) {
  const b = h('button', { type: 'button', class: 'primary', disabled: p.stock <= 0 || p.status !== 'active',
    'aria-label': 'Add to cart: ' + p.name }, 'Add to cart');
  b.addEventListener('click', () => {
    const q = qtyInput ? quantityOf(qtyInput.value) : 1;
    if (!q) {
      box.show('error', h('p', {}, 'Enter a quantity from 1 to 1000.'));
      return;
    }
    const added = addToCart(p, q);
    const view = [' ', h('a', { href: '#/cart' }, 'View cart'), '.'];
    if (added === q) box.show('info', h('p', {}, 'Added ' + (q > 1 ? q + ' × ' : '') + p.name + ' to your cart.', ...view));
    else if (added === 0) box.show('error', h('p', {}, 'Nothing added: your cart already holds 1000 × ' + p.name + ', the most one order takes.', ...view));
    else box.show('info', h('p', {}, 'Added ' + added + ' × ' + p.name + ' (not ' + q + '): your cart now holds 1000, the most one order takes.', ...view));
  });
  return b;
}

export function cataloguePage(main, params) {
  const q = (params.get('q') || '').trim();
  const box = messageBox();
  const input = h('input', { name: 'q', type: 'search', value: q, autocomplete: 'off',
    placeholder: 'e.g. mug', 'aria-describedby': 'q-hint' });
  const form = h('form', { class: 'search', role: 'search' },
    field('Search products', {}, input),
    h('button', { type: 'submit' }, 'Search'),
    h('p', { id: 'q-hint', class: 'hint' }, 'Words of three letters or more; each must begin a word of the name.'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = input.value.trim();
    location.hash = v ? '#/?q=' + encodeURIComponent(v) : '#/';
  });
  const list = h('ul', { class: 'grid', 'aria-label': 'Products' });
  const more = h('button', { type: 'button', hidden: true }, 'More products');
  const status = h('p', { class: 'muted', role: 'status' });
  let cursor = null;
  let pages = 0;
  // Back from a product comes to this history entry again: its state says
  // how many pages were shown, where the page was scrolled and which product
  // was opened, so the list comes back as it was left.
  const saved = history.state && history.state.catalogue;
  const remember = (extra) => history.replaceState({ ...history.state, catalogue: { q, pages, ...extra } }, '');

  async function load(first) {
    const qs = new URLSearchParams({ limit: String(PAGE), status: 'active' });
    if (q) qs.set('q', q);
    if (cursor) qs.set('cursor', cursor);
    try {
      // Public data: asked anonymously, so the edge's cache can answer.
      const r = await api('GET', '/products?' + qs, { auth: 'none' });
      const items = r.data.items;
      for (const p of items) list.append(card(p));
      cursor = r.data.next_cursor;
      pages++;
      more.hidden = !cursor;
      if (first && !items.length) status.textContent = q ? 'No products match "' + q + '".' : 'No products yet.';
      else status.textContent = list.children.length + ' product' + (list.children.length === 1 ? '' : 's') + ' shown' + (cursor ? '; more available.' : '.');
      if (!first && items.length) list.children[list.children.length - items.length].querySelector('a').focus();
      return true;
    } catch (e) {
      showProblem(box, e, form);
      return false;
    }
  }

  function card(p) {
    const cbox = messageBox();
    const a = h('a', { href: '#/product/' + p.id }, p.name);
    a.addEventListener('click', () => remember({ scrollY: window.scrollY, opened: p.id }));
    return h('li', { class: 'card', 'data-product-id': String(p.id) },
      h('h2', {}, a),
      h('p', { class: 'price' }, money(p.price_cents, p.currency)),
      h('p', { class: p.stock > 0 ? 'stock' : 'stock out' }, stockText(p)),
      addButton(p, cbox), cbox);
  }

  more.addEventListener('click', busy(more, async () => { if (await load(false)) remember({}); }));
  page(main, q ? 'Search: ' + q : 'Catalogue', form, box, status, list, h('div', { class: 'actions' }, more));
  return restore();

  async function restore() {
    if (!await load(true) || !saved || saved.q !== q) return;
    while (pages < Math.min(saved.pages, 50) && cursor)
      if (!await load(false)) return;
    const back = list.querySelector('li[data-product-id="' + saved.opened + '"] a');
    if (back) back.focus({ preventScroll: true });
    window.scrollTo(0, saved.scrollY || 0);
  }
}

export async function productPage(main, id) {
  const box = messageBox();
  page(main, 'Product', box);
  let p;
  try {
    // Signed in: read with the token (never cached, and a seller sees their
    // own drafts); anonymous: the edge's cache may answer.
    p = (await api('GET', '/products/' + id, { auth: signedIn() ? 'optional' : 'none' })).data;
  } catch (e) {
    if (e.status === 404) box.show('error', h('p', {}, 'No such product (it may have been archived).'), h('p', {}, h('a', { href: '#/' }, 'Back to the catalogue')));
    else showProblem(box, e);
    return;
  }
  const qty = h('input', { name: 'quantity', type: 'number', min: '1', max: '1000', value: '1', inputmode: 'numeric', class: 'qty' });
  const abox = messageBox();
  const add = addButton(p, abox, qty);
  qty.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' && !add.disabled) { ev.preventDefault(); add.click(); } });
  page(main, p.name,
    p.status !== 'active' ? h('p', { class: 'badge' }, 'Status: ' + p.status + ' (only its seller and admins see it)') : null,
    h('p', { class: 'price big' }, money(p.price_cents, p.currency)),
    h('p', { class: p.stock > 0 ? 'stock' : 'stock out', id: 'stock' }, stockText(p)),
    p.description ? h('p', { class: 'desc' }, p.description) : null,
    h('p', { class: 'muted' }, 'SKU ' + p.sku),
    h('div', { class: 'buy' }, field('Quantity', {}, qty), add),
    abox,
    h('p', {}, h('a', { href: '#/' }, 'Back to the catalogue')));
  clear(box);
}
