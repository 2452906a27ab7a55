// cart.js: the cart (kept in this browser's localStorage: product ids,
// quantities and the name/price seen when added) and checkout.
import { api, currentUser, sessionEnded, signedIn } from './api.js';
import { h, clear, money, page, messageBox, showProblem, sleep, fieldError, clearFieldErrors } from './ui.js';

const CART_KEY = 'shop.cart';
const OWNER_KEY = 'shop.cart.owner';   // the account whose cart it is (none: built signed out)
const ATTEMPT_KEY = 'shop.checkout';
const MAX_LINES = 50;                   // lines per order (the API's limit)
const cartListeners = new Set();

// localStorage is the browser's, shared by its tabs and kept after they
// close: a cart saved by a signed-in person is theirs alone.  Anyone else
// (another account, or nobody signed in) finds it empty, so the next person
// on a shared computer never sees or orders the last one's lines.  A cart
// built signed out goes with whoever signs in.
function mine() {
  const owner = localStorage.getItem(OWNER_KEY);
  const u = currentUser();
  return owner === null || (u !== null && owner === String(u.id));
}

export function cart() {
  if (!mine()) return [];
  try {
    const c = JSON.parse(localStorage.getItem(CART_KEY) || '[]');
    return Array.isArray(c) ? c : [];
  } catch (e) { return []; }
}

function save(lines) {
  const u = currentUser();
  if (u) localStorage.setItem(OWNER_KEY, String(u.id));
  else localStorage.removeItem(OWNER_KEY);
  localStorage.setItem(CART_KEY, JSON.stringify(lines));
  for (const fn of cartListeners) fn(lines);
}

// Signing out empties the cart: on a shared computer the next person to
// sign in must not find (and order) the last one's lines.
export function emptyCart() { save([]); }

export function onCart(fn) {
  cartListeners.add(fn);
  window.addEventListener('storage', (e) => { if (e.key === CART_KEY) fn(cart()); });
}

// The quantity a box holds: digits only (not "1e2" or "1.0"), 1 to 1000;
// null otherwise.
export function quantityOf(text) {
  const m = /^\s*(\d{1,4})\s*$/.exec(text || '');
  const q = m ? Number(m[1]) : 0;
  return q >= 1 && q <= 1000 ? q : null;
}

export function cartCount() { return cart().reduce((n, l) => n + l.quantity, 0); }

// Adds up to `quantity` (a line holds at most 1000); returns how many were
// added, which the page says.
export function addToCart(p, quantity = 1) {
  const lines = cart();
  const line = lines.find((l) => l.product_id === p.id);
  let added = quantity;
  if (line) {
    added = Math.max(0, Math.min(1000, line.quantity + quantity) - line.quantity);
    line.quantity += added;
    Object.assign(line, { name: p.name, price_cents: p.price_cents, currency: p.currency });
  } else lines.push({ product_id: p.id, quantity, name: p.name, price_cents: p.price_cents, currency: p.currency });
  save(lines);
  return added;
}

// The cart's lines as the shop has them now: each product read again, its
// name, price and currency taken, a change of price noted on the line
// (was_cents) until the next checkout, a product gone (404) or not for sale
// marked unavailable.  Returns whether any price or availability changed.
// Network trouble leaves the lines as they were.
export async function refreshCart() {
  const lines = cart();
  const reads = await Promise.all(lines.map((l) =>
    api('GET', '/products/' + l.product_id, { auth: signedIn() ? 'optional' : 'none' })
      .then((r) => r.data, (e) => (e.status === 404 ? null : undefined))));
  let changed = false;
  const now = cart();
  for (const l of now) {
    const i = lines.findIndex((x) => x.product_id === l.product_id);
    const p = i < 0 ? undefined : reads[i];
    if (p === undefined) continue;
    const unavailable = !p || p.status !== 'active';
    if (unavailable !== !!l.unavailable) changed = true;
    l.unavailable = unavailable;
    if (!p) continue;
    if (p.price_cents !== l.price_cents || p.currency !== l.currency) {
      if (l.was_cents === undefined) { l.was_cents = l.price_cents; l.was_currency = l.currency; }
      changed = true;
    }
    Object.assign(l, { name: p.name, price_cents: p.price_cents, currency: p.currency });
    if (l.was_cents === l.price_cents && l.was_currency === l.currency) { delete l.was_cents; delete l.was_currency; }
  }
  if (changed || JSON.stringify(now) !== JSON.stringify(cart())) save(now);
  return changed;
}

function setQuantity(id, q) {
  save(cart().map((l) => (l.product_id === id ? { ...l, quantity: q } : l)));
}

function removeLine(id) { save(cart().filter((l) => l.product_id !== id)); }

// One checkout attempt = one Idempotency-Key, for one user and one body.
// The key is kept (sessionStorage, this tab) until the attempt has a final
// answer, so a double click, an automatic retry or the "retry" button after
// a network error or a 503 all send the same key: at most one order.  A
// changed cart is a new attempt with a new key.
function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return 'web-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// The sign-in ended while the checkout ran: the cart stays its account's,
// back when they sign in again.
const sessionEndedHere = () => sessionEnded('; your cart is kept for you.');

function attemptFor(body) {
  const user = currentUser();
  if (!user) throw sessionEndedHere();
  const text = JSON.stringify(body);
  let a = null;
  try { a = JSON.parse(sessionStorage.getItem(ATTEMPT_KEY) || 'null'); } catch (e) { a = null; }
  if (!a || a.body !== text || a.user !== user.id) {
    a = { key: newKey(), body: text, user: user.id };
    sessionStorage.setItem(ATTEMPT_KEY, JSON.stringify(a));
  }
  return a;
}

export function forgetAttempt() { sessionStorage.removeItem(ATTEMPT_KEY); }

let placing = null;   // the checkout in flight: a second click joins it

export function placeOrder(body) {
  if (!placing) placing = place(body).finally(() => { placing = null; });
  return placing;
}

async function place(body) {
  const a = attemptFor(body);
  for (let tries = 0; ; tries++) {
    try {
      const r = await api('POST', '/orders', { body, headers: { 'Idempotency-Key': a.key }, auth: 'required' });
      forgetAttempt();
      return r.data;
    } catch (e) {
      // Still being placed: wait as told and ask again (same key).
      if (e.code === 'idempotency_in_progress' && tries < 20) { await sleep((e.retryAfter || 1) * 1000); continue; }
      // No answer, or the shop could not answer: the order may or may not
      // exist.  Retry twice with the same key; then the key stays for the
      // person's own retry.
      if ((e.status === 0 || e.status >= 500) && tries < 2) { await sleep(1000 * (tries + 1)); continue; }
      if (e.status === 0 || e.status >= 500 || e.status === 429) throw e;
      forgetAttempt();   // a final answer: a new click is a new attempt
      throw e;
    }
  }
}

export function cartPage(main) {
  const box = messageBox();
  const list = h('ul', { class: 'lines', 'aria-label': 'Cart lines' });
  const total = h('p', { class: 'total' });
  const note = h('p', { class: 'hint' }, 'The order is placed at the prices shown here; a change since is marked on its line.');
  const checkout = h('button', { type: 'button', class: 'primary', id: 'checkout' }, 'Place order');
  const signin = h('p', {}, h('a', { href: '#/signin?next=' + encodeURIComponent('/cart') }, 'Sign in'),
    ' or ', h('a', { href: '#/signup?next=' + encodeURIComponent('/cart') }, 'create an account'), ' to check out.');
  let lastError = null;   // the insufficient stock / unavailable items to show per line

  function render() {
    // What the person is typing survives a re-render (the cart read again in
    // the background when the page opened, or at checkout).
    const typed = new Map([...list.querySelectorAll('input.qty')].map((q) => [q.id, q.value]));
    // ...and so does the keyboard focus (a Tab out of a changed quantity).
    const focused = list.contains(document.activeElement) ? document.activeElement.id : '';
    const lines = cart();
    clear(list);
    if (!lines.length) {
      list.append(h('li', { class: 'empty' }, 'Your cart is empty. ', h('a', { href: '#/' }, 'Browse the catalogue'), '.'));
    }
    lines.forEach((l, i) => {
      const qid = 'qty-' + l.product_id;
      const qty = h('input', { id: qid, name: 'items[' + i + '].quantity', type: 'number', min: '1', max: '1000',
        inputmode: 'numeric', value: typed.has(qid) ? typed.get(qid) : String(l.quantity), class: 'qty' });
      qty.addEventListener('change', () => {
        const q = quantityOf(qty.value);
        if (q) {
          lastError = null;
          setQuantity(l.product_id, q);
          if (box.dataset.about === 'quantity') box.hide();
          // After the focus has moved on (a Tab), so render() keeps it there.
          setTimeout(() => { if (list.isConnected) render(); }, 0);
        } else fieldError(qty, 'Enter a whole number from 1 to 1000.');
      });
      const li = h('li', { class: 'line', 'data-product-id': String(l.product_id) },
        h('div', { class: 'line-name' }, h('a', { href: '#/product/' + l.product_id }, l.name),
          h('span', { class: 'muted' }, ' ', money(l.price_cents, l.currency), ' each'),
          l.was_cents !== undefined ? h('span', { class: 'price-changed' }, ' (price changed: was ',
            money(l.was_cents, l.was_currency), ')') : null),
        h('div', { class: 'line-qty' }, h('label', { for: qid }, 'Quantity'), qty),
        h('div', { class: 'line-total' }, money(l.price_cents * l.quantity, l.currency)),
        h('button', { type: 'button', class: 'link', id: 'rm-' + l.product_id, 'aria-label': 'Remove: ' + l.name,
          onclick: () => { lastError = null; removeLine(l.product_id); render(); } }, 'Remove'));
      const problem = lineProblem(l);
      if (problem) {
        li.classList.add('line-bad');
        const pid = 'line-error-' + l.product_id;
        li.append(h('p', { class: 'field-error line-error', id: pid }, problem));
        qty.setAttribute('aria-invalid', 'true');
        qty.setAttribute('aria-describedby', pid);
      }
      list.append(li);
    });
    const currencies = [...new Set(lines.map((l) => l.currency))];
    total.textContent = lines.length
      ? currencies.map((c) => 'Total: ' + money(lines.filter((l) => l.currency === c)
        .reduce((s, l) => s + l.price_cents * l.quantity, 0), c)).join(' · ')
      : '';
    note.hidden = !lines.length;
    checkout.hidden = !lines.length || !signedIn();
    signin.hidden = !lines.length || signedIn();
    if (focused) document.getElementById(focused)?.focus();
  }

  function lineProblem(l) {
    if (l.unavailable) return 'No longer available: remove it to check out.';
    if (!lastError || !lastError.items) return null;
    const it = lastError.items.find((x) => x.product_id === l.product_id);
    if (!it) return null;
    if (lastError.code === 'insufficient_stock') {
      return it.available === 0 ? 'Out of stock: none left (you asked for ' + it.requested + ').'
        : 'Not enough stock: only ' + it.available + ' left (you asked for ' + it.requested + ').';
    }
    return 'No longer available: remove it to check out.';
  }

  // A quantity box must hold what will be ordered: a valid number there is
  // taken (as its change event would), an invalid one stops the checkout.
  function quantitiesValid() {
    let first = null;
    for (const qty of list.querySelectorAll('input.qty')) {
      const q = quantityOf(qty.value);
      const id = Number(qty.closest('li').dataset.productId);
      if (q) {
        if (!cart().some((l) => l.product_id === id && l.quantity === q)) setQuantity(id, q);
      } else {
        fieldError(qty, 'Enter a whole number from 1 to 1000.');
        first = first || qty;
      }
    }
    if (first) {
      box.show('error', h('p', {}, 'Nothing was ordered: correct the quantity marked below.'));
      box.dataset.about = 'quantity';
      first.focus();
    }
    return !first;
  }

  // What the shop would refuse, said in the cart's words before asking it.
  function linesValid(lines) {
    const bad = lines.filter((l) => l.unavailable);
    if (bad.length) {
      box.show('error', h('p', {}, 'Nothing was ordered: ' + bad.map((l) => l.name).join(', ') +
        (bad.length === 1 ? ' is' : ' are') + ' no longer for sale. Remove the lines marked below.'));
      list.querySelector('.line-bad input, .line-bad button')?.focus();
      return false;
    }
    if (lines.length > MAX_LINES) {
      box.show('error', h('p', {}, 'Nothing was ordered: one order holds at most ' + MAX_LINES +
        ' different products, and this cart holds ' + lines.length + '. Remove some lines, order the rest, then add them again.'));
      checkout.focus();
      return false;
    }
    const currencies = [...new Set(lines.map((l) => l.currency))];
    if (currencies.length > 1) {
      box.show('error', h('p', {}, 'Nothing was ordered: one order holds products of one currency, and this cart holds ' +
        currencies.join(' and ') + '. Remove the lines of all but one currency, order them, then order the others.'));
      checkout.focus();
      return false;
    }
    return true;
  }

  checkout.addEventListener('click', async () => {
    if (checkout.disabled) return;
    if (!quantitiesValid()) return;
    if (!cart().length) return;
    checkout.disabled = true;
    checkout.setAttribute('aria-busy', 'true');
    clearFieldErrors(list);
    box.show('info', h('p', {}, 'Placing your order…'));
    delete box.dataset.about;
    try {
      // The prices shown are the prices ordered: read them again first, and
      // stop for the person to see any that changed.
      const seen = JSON.stringify(cart().map((l) => [l.product_id, l.price_cents, l.currency]));
      const who = currentUser();
      await refreshCart();
      if (who && !currentUser()) throw sessionEndedHere();
      render();
      const lines = cart();
      if (JSON.stringify(lines.map((l) => [l.product_id, l.price_cents, l.currency])) !== seen) {
        box.show('error', h('p', {}, 'Nothing was ordered: prices changed since you last looked (marked below). ' +
          'Check the total, then press "Place order" again.'));
        checkout.focus();
        return;
      }
      if (!linesValid(lines)) return;
      const order = await placeOrder({ items: lines.map((l) => ({ product_id: l.product_id, quantity: l.quantity })) });
      save([]);
      location.hash = '#/orders/' + order.id + '?placed=1';
    } catch (e) {
      lastError = e.items ? e : null;
      render();
      showProblem(box, e, e.items ? null : list);
      if (e.status === 0 || e.status >= 500) {
        box.append(h('p', {}, 'Pressing "Retry order" cannot order twice: it repeats the same attempt.'));
        checkout.textContent = 'Retry order';
      } else if (e.items) {
        box.append(h('p', {}, e.code === 'insufficient_stock'
          ? 'Nothing was ordered. Lower the quantities marked below, or remove those lines.'
          : 'Nothing was ordered. Remove the lines marked below.'));
      }
    } finally {
      checkout.disabled = false;
      checkout.removeAttribute('aria-busy');
    }
  });

  page(main, 'Your cart', box, list, total, note, h('div', { class: 'actions' }, checkout), signin);
  render();
  refreshCart().then((changed) => {
    if (!list.isConnected) return;
    render();
    if (changed) box.show('info', h('p', {}, 'Some lines changed since you added them (marked below): the cart shows the current prices.'));
  });
}
