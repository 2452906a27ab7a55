// account.js: sign up, sign in, and "my orders" (with cancel).
import { api, signIn, register, currentUser } from './api.js';
import { h, money, page, messageBox, showProblem, field, busy, when } from './ui.js';
import { emptyCart } from './cart.js';

function next(params) {
  const n = params.get('next') || '/';
  return n.startsWith('/') && !n.startsWith('//') ? '#' + n : '#/';
}

export function signInPage(main, params) {
  const box = messageBox();
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'username', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'narrow', novalidate: true },
    field('Email', {}, email), field('Password', {}, password), h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', busy(submit, async () => {
    box.hide();
    try {
      const before = currentUser();
      const now = await signIn(email.value.trim(), password.value);
      // Another person now: the last one's cart is not theirs (as at sign-out).
      if (before && before.id !== now.id) emptyCart();
      location.hash = next(params);
    } catch (e) { showProblem(box, e, form); }
  }));
  const me = currentUser();
  if (me) box.show('info', h('p', {}, 'You are signed in as ' + me.email + '; signing in here switches to another account.'));
  page(main, 'Sign in', box, form,
    h('p', {}, 'New here? ', h('a', { href: '#/signup' + (params.get('next') ? '?next=' + encodeURIComponent(params.get('next')) : '') }, 'Create an account'), '.'));
}

export function signUpPage(main, params) {
  const box = messageBox();
  const name = h('input', { name: 'name', type: 'text', autocomplete: 'name', maxlength: '200' });
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'email', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true,
    minlength: '8', maxlength: '128', 'aria-describedby': 'pw-hint' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create account');
  const form = h('form', { class: 'narrow', novalidate: true },
    field('Name (optional)', {}, name), field('Email', {}, email), field('Password', {}, password),
    h('p', { class: 'hint', id: 'pw-hint' }, '8 to 128 characters.'),
    h('div', { class: 'actions' }, submit));
  // Signing up is two requests: register, then sign in.  When the account
  // was made but the sign-in failed (a 503, say), a retry only signs in:
  // registering again would answer "email taken".
  let created = null;
  form.addEventListener('submit', busy(submit, async () => {
    box.hide();
    const em = email.value.trim();
    try {
      if (created !== em) {
        await register(em, password.value, name.value.trim() || null);
        created = em;
      }
      await signIn(em, password.value);
      location.hash = next(params);
    } catch (e) {
      showProblem(box, e, form);
      if (created === em) box.prepend(h('p', {}, 'Your account was created, but signing in failed. Press "Create account" again to sign in.'));
    }
  }));
  page(main, 'Create an account', box, form,
    h('p', {}, 'Already have one? ', h('a', { href: '#/signin' }, 'Sign in'), '.'));
}

function orderView(o, box, onChange) {
  const cancel = h('button', { type: 'button', class: 'danger' }, 'Cancel order');
  cancel.addEventListener('click', busy(cancel, async () => {
    box.hide();
    try {
      const r = await api('POST', '/orders/' + o.id + '/cancel', { auth: 'required' });
      box.show('info', h('p', {}, 'Order #' + o.id + ' is cancelled; its stock went back to the shop.'));
      onChange(r.data);
      // The button is gone with the change: keyboard focus goes to the news.
      box.setAttribute('tabindex', '-1');
      box.focus();
    } catch (e) { showProblem(box, e); }
  }));
  return h('article', { class: 'order', 'data-order-id': String(o.id), 'aria-labelledby': 'order-' + o.id },
    h('h2', { id: 'order-' + o.id }, h('a', { href: '#/orders/' + o.id }, 'Order #' + o.id)),
    h('p', {}, h('span', { class: 'badge status-' + o.status }, o.status), ' ', when(o.created_at),
      // An admin sees every customer's orders: say whose.
      currentUser() && currentUser().role === 'admin' && o.user_id !== currentUser().id
        ? ' · customer #' + o.user_id : null),
    h('ul', { class: 'items' }, o.items.map((it) =>
      h('li', {}, h('a', { href: '#/product/' + it.product_id }, it.name), ' × ' + it.quantity + ' — ' +
        money(it.line_total_cents, o.currency)))),
    h('p', { class: 'total' }, 'Total: ' + money(o.total_cents, o.currency)),
    o.status === 'confirmed' ? h('div', { class: 'actions' }, cancel) : null);
}

export async function ordersPage(main) {
  const box = messageBox();
  const list = h('div', { class: 'orders' });
  const more = h('button', { type: 'button', hidden: true }, 'More orders');
  const status = h('p', { class: 'muted', role: 'status' });
  let cursor = null;
  const admin = currentUser() && currentUser().role === 'admin';
  async function load() {
    const qs = new URLSearchParams({ limit: '10' });
    if (cursor) qs.set('cursor', cursor);
    try {
      const r = await api('GET', '/orders?' + qs, { auth: 'required' });
      for (const o of r.data.items) {
        const slot = h('div', {});
        const put = (x) => slot.replaceChildren(orderView(x, box, put));
        put(o);
        list.append(slot);
      }
      cursor = r.data.next_cursor;
      more.hidden = !cursor;
      status.textContent = list.children.length ? '' : 'No orders yet.';
    } catch (e) { showProblem(box, e); }
  }
  more.addEventListener('click', busy(more, load));
  page(main, admin ? 'All orders' : 'My orders', box, status, list, h('div', { class: 'actions' }, more));
  await load();
}

export async function orderPage(main, id, params) {
  const box = messageBox();
  page(main, 'Order #' + id, box);
  try {
    const r = await api('GET', '/orders/' + id, { auth: 'required' });
    const slot = h('div', {});
    const put = (x) => slot.replaceChildren(orderView(x, box, put));
    put(r.data);
    page(main, 'Order #' + id, box, slot, h('p', {}, h('a', { href: '#/orders' }, 'All my orders')));
    // The thanks belong to the moment of placing: shown while the order
    // stands confirmed, and taken out of the address so that a reload or
    // Back does not say it again.
    if (params.get('placed')) {
      if (r.data.status === 'confirmed') box.show('info', h('p', {}, 'Thank you: order #' + id + ' is confirmed.'));
      history.replaceState(history.state, '', '#/orders/' + id);
    }
  } catch (e) {
    if (e.status === 404) box.show('error', h('p', {}, 'No such order.'));
    else showProblem(box, e);
  }
}
