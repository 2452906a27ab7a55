// main.js: the storefront's entry point.  Routes live in the URL's fragment
// (#/cart, #/product/12, ...), so the edge only ever serves "/" and /app/.
import { restore, onSession, currentUser, signOut, hasRole } from './api.js';
import { onCart, cartCount, forgetAttempt, emptyCart } from './cart.js';
import { h, clear, page, messageBox, showProblem } from './ui.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');

// Pages are loaded on first use: the first page fetches only what it shows.
const routes = [
  [/^\/$/, async (m, p) => (await import('./catalogue.js')).cataloguePage(m, p)],
  [/^\/product\/(\d+)$/, async (m, p, id) => (await import('./catalogue.js')).productPage(m, id)],
  [/^\/cart$/, async (m) => (await import('./cart.js')).cartPage(m)],
  [/^\/signin$/, async (m, p) => (await import('./account.js')).signInPage(m, p)],
  [/^\/signup$/, async (m, p) => (await import('./account.js')).signUpPage(m, p)],
  [/^\/orders$/, async (m) => (await import('./account.js')).ordersPage(m), 'any'],
  [/^\/orders\/(\d+)$/, async (m, p, id) => (await import('./account.js')).orderPage(m, id, p), 'any'],
  [/^\/seller$/, async (m) => (await import('./seller.js')).sellerPage(m), 'seller'],
  [/^\/seller\/new$/, async (m) => (await import('./seller.js')).newProductPage(m), 'seller'],
  [/^\/seller\/edit\/(\d+)$/, async (m, p, id) => (await import('./seller.js')).editProductPage(m, id, p), 'seller'],
  [/^\/admin$/, async (m, p) => (await import('./admin.js')).adminPage(m, p), 'admin'],
];

function renderNav() {
  const u = currentUser();
  const here = location.hash.split('?')[0] || '#/';
  const link = (href, text) => h('a', { href, 'aria-current': here === href ? 'page' : null }, text);
  const n = cartCount();
  const items = [
    link('#/', 'Catalogue'),
    link('#/cart', n ? 'Cart (' + n + ')' : 'Cart'),
  ];
  if (u) items.push(link('#/orders', u.role === 'admin' ? 'Orders' : 'My orders'));
  if (u && (u.role === 'seller' || u.role === 'admin')) items.push(link('#/seller', u.role === 'admin' ? 'All products' : 'My products'));
  if (u && u.role === 'admin') items.push(link('#/admin', 'Users'));
  if (u) {
    const out = h('button', { type: 'button', class: 'link' }, 'Sign out');
    out.addEventListener('click', async () => {
      forgetAttempt();
      emptyCart();
      await signOut();
      location.hash = '#/';
    });
    // The account number is what an admin needs to make someone a seller.
    items.push(h('span', { class: 'who' }, u.email + ' (account #' + u.id + ')'), out);
  } else {
    items.push(link('#/signin', 'Sign in'), link('#/signup', 'Sign up'));
  }
  clear(nav).append(h('ul', {}, items.map((i) => h('li', {}, i))));
}

let seq = 0;
async function route() {
  const hash = location.hash || '#/';
  if (!hash.startsWith('#/')) return;            // an in-page anchor
  const [path, query] = hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  renderNav();
  const my = ++seq;
  for (const [re, fn, need] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    if (need && !currentUser()) {
      location.replace('#/signin?next=' + encodeURIComponent(hash.slice(1)));
      return;
    }
    if ((need === 'seller' && !hasRole('seller', 'admin')) || (need === 'admin' && !hasRole('admin'))) {
      page(main, 'Not allowed', h('p', {}, 'Your account (' + currentUser().role + ') cannot use this page.'));
      break;
    }
    try {
      await fn(main, params, ...m.slice(1));
    } catch (e) {
      const box = messageBox();
      page(main, 'Error', box);
      showProblem(box, e);
    }
    break;
  }
  if (my !== seq) return;
  if (!routes.some(([re]) => re.test(path))) {
    page(main, 'Not found', h('p', {}, 'There is no such page. ', h('a', { href: '#/' }, 'Go to the catalogue'), '.'));
  }
  const h1 = main.querySelector('h1');
  if (h1 && document.activeElement === document.body) h1.focus({ preventScroll: true });
  main.setAttribute('aria-busy', 'false');
}

function navigated() {
  // Moving to a new page puts focus on its heading (for keyboard and screen
  // reader users); an explicit focus set by the page wins.
  document.activeElement && document.activeElement.blur && document.activeElement.blur();
  main.setAttribute('aria-busy', 'true');
  route();
}

document.querySelector('.skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  main.focus();
});
onSession(() => renderNav());
onCart(() => renderNav());
window.addEventListener('hashchange', navigated);

(async () => {
  if (await restore() === 'copied') {
    // A copy of a signed-in tab: the original keeps the sign-in (api.js).
    const note = h('div', { class: 'msg msg-info', role: 'status' }, h('p', {},
      'This tab is a copy of a signed-in tab, which stays signed in. Sign in here too to use this tab on its own.'));
    main.before(note);
    onSession((u) => { if (u) note.remove(); });
  }
  navigated();
})();
