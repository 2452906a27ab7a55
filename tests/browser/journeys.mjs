// journeys.mjs: the storefront driven in a real browser (Debian's chromium,
// headless, through playwright-core) against a running stack's edge.
//
//   node journeys.mjs EDGE_URL SETUP_JSON SCREENSHOT_DIR
//
// SETUP_JSON (written by tests/integration/test_storefront.py) names a
// seller, the admin and products made through the API.  Each journey checks
// what a person sees, and what the API says afterwards; every page is
// checked by axe-core (no serious or critical violation) and photographed at
// 1280 and 375 px.  Prints "journey NAME: ok|FAIL ..." lines and, last, one
// JSON line with what the Python test checks again through the API.  Exits 1
// when any journey failed.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const [EDGE, SETUP_FILE, SHOTS] = process.argv.slice(2);
if (!EDGE || !SETUP_FILE || !SHOTS) {
  console.error('usage: node journeys.mjs EDGE_URL SETUP_JSON SCREENSHOT_DIR');
  process.exit(2);
}
const S = JSON.parse(readFileSync(SETUP_FILE, 'utf8'));
const PASSWORD = 'storefront pass 1';
const TIMEOUT = 30000;
const out = {};
const failures = [];
const shot = new Set();
const problems = [];   // CSP violations, page errors, failed asset loads

function check(cond, msg) { if (!cond) throw new Error(msg); }

// ---- the API, for checks (what the person's actions did) -------------------
async function apiCall(method, p, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = 'Bearer ' + token;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  let r;
  // The checks' own requests (logins, reads) retry a 503 as the contract
  // allows: a busy machine can make the database briefly unavailable.
  for (let i = 0; ; i++) {
    r = await fetch(EDGE + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status !== 503 || i === 20) break;
    await new Promise((res) => setTimeout(res, 1000));
  }
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null, headers: r.headers };
}
async function tokenOf(email, password) {
  const r = await apiCall('POST', '/auth/login', { body: { email, password } });
  check(r.status === 200, 'login ' + email + ': ' + r.status);
  return r.json.access_token;
}
// The admin's token for checks: reads with a token are never served from
// the edge's 5-second cache, so they show the stock as it is now.
let adminTok = null;
async function adminToken() {
  if (!adminTok || Date.now() - adminTok.at > 600000) {
    adminTok = { token: await tokenOf(S.admin.email, S.admin.password), at: Date.now() };
  }
  return adminTok.token;
}
async function product(id, token) {
  const r = await apiCall('GET', '/products/' + id, { token: token || await adminToken() });
  check(r.status === 200, 'GET /products/' + id + ': ' + r.status);
  return r.json;
}

// ---- the browser -------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // As root (CI) chromium refuses its sandbox.
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});

async function newPage() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
  ctx.setDefaultTimeout(TIMEOUT);
  const page = await ctx.newPage();
  page.on('console', (m) => {
    // A failed request is logged by chromium whatever the page does with
    // it; the pages show those answers themselves (checked by the journeys).
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) {
      problems.push('console: ' + m.text());
    }
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('response', (r) => {
    if (r.url().startsWith(EDGE + '/app/') && r.status() >= 400) problems.push('asset ' + r.url() + ': ' + r.status());
  });
  return page;
}

async function go(page, hash) {
  await page.goto(EDGE + '/' + hash);
  await ready(page);
}
// The router marks <main aria-busy="false"> once a page has rendered.
async function ready(page, h1) {
  await page.waitForFunction(() => {
    const m = document.getElementById('main');
    return m && m.getAttribute('aria-busy') === 'false';
  });
  if (h1) await page.locator('h1', { hasText: h1 }).waitFor();
}

// axe-core at the current width (no serious/critical violation), a
// screenshot, and nothing wider than the window at 375 px.
async function audit(page, name) {
  const vp = page.viewportSize();
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 800 });
    await page.waitForTimeout(50);
    if (width === 375) {
      const sw = await page.evaluate(() => document.documentElement.scrollWidth);
      check(sw <= 375, name + ': the page is ' + sw + ' px wide at 375 px (horizontal scrolling)');
    }
    // evaluate() runs through DevTools: the page's CSP does not apply to it.
    const has = await page.evaluate(() => typeof window.axe !== 'undefined');
    if (!has) await page.evaluate(AXE);
    const res = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
    });
    const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    check(!bad.length, name + ' at ' + width + ' px: axe violations ' + JSON.stringify(bad));
    await page.screenshot({ path: path.join(SHOTS, name + '-' + width + '.png'), fullPage: true });
  }
  await page.setViewportSize(vp);
  shot.add(name);
}

// Clicks `button` until `done` shows; a "temporarily unavailable" (503) or
// "too many requests" (429) message is retried as the page tells a person to.
// "10.10" for 1010 cents: the digits any locale shows for a EUR amount (the
// setup's products are in EUR).
function euros(cents) { return (cents / 100).toFixed(2); }

// Sets a product's price as its seller would (PATCH with If-Match); returns the old one.
async function setPrice(id, cents) {
  for (let i = 0; ; i++) {
    const cur = await product(id);
    const r = await apiCall('PATCH', '/products/' + id, { token: await adminToken(), body: { price_cents: cents },
      headers: { 'If-Match': '"' + cur.version + '"' } });
    if (r.status === 200) return cur.price_cents;
    check((r.status === 412 || r.status === 503) && i < 5, 'PATCH price of ' + id + ': ' + r.status);
  }
}

async function submitUntil(page, button, done, tries = 12) {
  const retry = page.getByRole('alert').filter({ hasText: /temporarily unavailable|Too many requests/ });
  for (let i = 1; ; i++) {
    if (typeof button === 'function') await button(i);
    else await button.click();
    await done.or(retry).first().waitFor({ timeout: 30000 });
    if (await done.isVisible()) return;
    check(i < tries, 'still unavailable after ' + tries + ' tries: ' + await retry.textContent());
    await page.waitForTimeout(1500);
  }
}

async function signUp(page, email, name) {
  await go(page, '#/signup');
  await page.getByLabel('Name (optional)').fill(name);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await submitUntil(page, page.getByRole('button', { name: 'Create account' }), page.locator('.who', { hasText: email }));
  await ready(page, 'Catalogue');
}

async function signIn(page, email, password, hash = '') {
  await go(page, '#/signin' + hash);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await submitUntil(page, page.getByRole('button', { name: 'Sign in' }), page.locator('.who', { hasText: email }));
}

async function addFromProductPage(page, p, qty = 1) {
  await go(page, '#/product/' + p.id);
  await ready(page, p.name);
  await page.getByLabel('Quantity').fill(String(qty));
  await page.getByRole('button', { name: 'Add to cart: ' + p.name }).click();
  await page.getByText('to your cart').waitFor();
}

async function journey(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log('journey %s: ok (%ss)', name, ((Date.now() - t0) / 1000).toFixed(1));
  } catch (e) {
    failures.push(name);
    console.log('journey %s: FAIL %s', name, e.stack || e);
    // What each open page showed when it failed.
    let i = 0;
    for (const ctx of browser.contexts()) {
      for (const pg of ctx.pages()) {
        await pg.screenshot({ path: path.join(SHOTS, 'FAILED-' + name + '-' + (++i) + '.png'), fullPage: true }).catch(() => {});
      }
      await ctx.close().catch(() => {});
    }
  }
}

const P = S.products;
const email = (what) => what + '-' + S.tag + '@example.test';

// ---- 1. anonymous: the first page, its weight, search and "more" ---------
await journey('catalogue', async () => {
  const page = await newPage();
  const sizes = [];
  page.on('requestfinished', async (req) => {
    const s = await req.sizes().catch(() => null);
    if (s) sizes.push(s.responseBodySize + s.responseHeadersSize);
  });
  await page.goto(EDGE + '/');
  await ready(page, 'Catalogue');
  await page.waitForLoadState('networkidle');
  const total = sizes.reduce((a, b) => a + b, 0);
  out.first_page_bytes = total;
  check(total > 0 && total < 100 * 1024, 'first page transferred ' + total + ' bytes (limit 100 KB)');
  await audit(page, 'catalogue');

  // Search by a word that begins a word of the names; then "more" (keyset).
  await page.getByLabel('Search products').fill(S.bulk_tag);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await ready(page, 'Search: ' + S.bulk_tag);
  const cards = page.locator('.grid > li');
  await page.waitForFunction(() => document.querySelectorAll('.grid > li').length === 12);
  await page.getByRole('button', { name: 'More products' }).click();
  await page.waitForFunction((n) => document.querySelectorAll('.grid > li').length === n, S.bulk_count);
  check(await page.getByRole('button', { name: 'More products' }).isHidden(), '"More" still offered after the last page');
  const ids = await cards.evaluateAll((els) => els.map((e) => Number(e.dataset.productId)));
  check(new Set(ids).size === ids.length && ids.every((x, i) => i === 0 || x > ids[i - 1]), 'pages overlap or are out of order: ' + ids);
  // A product of the second page, then Back: both pages are there again,
  // with the keyboard focus on the product that was opened.
  const last = ids[ids.length - 1];
  await page.locator('li[data-product-id="' + last + '"] a').click();
  await ready(page);
  await page.locator('#stock').waitFor();
  await page.goBack();
  await ready(page, 'Search: ' + S.bulk_tag);
  await page.waitForFunction((n) => document.querySelectorAll('.grid > li').length === n, S.bulk_count);
  check(await page.evaluate((id) => document.activeElement && document.activeElement.closest('li') &&
    document.activeElement.closest('li').dataset.productId === String(id), last),
  'after Back the focus is not on the product that was opened');
  check(await page.evaluate((id) => {
    const r = document.querySelector('li[data-product-id="' + id + '"]').getBoundingClientRect();
    return r.bottom > 0 && r.top < window.innerHeight;
  }, last), 'after Back the product that was opened is scrolled out of view');
  check(await page.getByRole('button', { name: 'More products' }).isHidden(), '"More" offered again after Back');
  await audit(page, 'search');

  // A too-short query: the API's field error next to the search field.
  await page.getByLabel('Search products').fill('ab');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await ready(page, 'Search: ab');
  await page.locator('.field-error').waitFor();
  check(await page.getByLabel('Search products').getAttribute('aria-invalid') === 'true', 'search field not marked invalid');
  await page.context().close();
});

// ---- 2. a customer: sign up, search, two products, checkout, cancel ---------
let customer;
await journey('customer', async () => {
  const page = await newPage();
  customer = { email: email('cust'), password: PASSWORD };
  await signUp(page, customer.email, 'Casey Customer');
  await audit(page, 'signed-in-catalogue');
  // A copied tab (it starts with this tab's sessionStorage, refresh token
  // included) leaves the sign-in to the original: were both to refresh on
  // the one single-use token, both would be signed out.
  const [copy] = await Promise.all([page.context().waitForEvent('page'),
    page.evaluate(() => { window.open(location.href); })]);
  await copy.getByText('This tab is a copy of a signed-in tab').waitFor({ timeout: TIMEOUT });
  check(await copy.locator('.who').count() === 0, 'the copied tab is signed in on the shared refresh token');
  await copy.close();
  await page.reload();
  await ready(page);
  await page.locator('.who').waitFor({ timeout: TIMEOUT });
  const before = { a: (await product(P.alpha.id)).stock, b: (await product(P.beta.id)).stock };

  await page.getByLabel('Search products').fill(S.tag);
  await page.getByLabel('Search products').press('Enter');
  await ready(page, 'Search: ' + S.tag);
  await page.locator('.grid > li[data-product-id="' + P.alpha.id + '"]').waitFor();
  await page.getByRole('button', { name: 'Add to cart: ' + P.alpha.name }).click();
  await page.getByRole('button', { name: 'Add to cart: ' + P.beta.name }).click();

  await page.getByRole('link', { name: 'Cart (2)' }).click();
  await ready(page, 'Your cart');
  // A quantity the shop refuses stops the checkout where it is shown: the
  // order is never placed with the quantity the box held before.
  await page.getByLabel('Quantity').first().fill('5000');
  await page.getByLabel('Quantity').first().press('Tab');
  await page.locator('#checkout').click();
  await page.getByText('Nothing was ordered: correct the quantity').waitFor();
  check(page.url().endsWith('#/cart'), 'checkout went on with an invalid quantity: ' + page.url());
  check(await page.getByLabel('Quantity').first().getAttribute('aria-invalid') === 'true',
    'the invalid quantity is not marked');
  await page.getByLabel('Quantity').first().fill('2');
  await page.getByLabel('Quantity').first().press('Tab');
  await page.getByText('Total:').waitFor();
  // The Tab goes on to the line's Remove button, and stays there once the
  // line is drawn again with its new quantity.
  await page.waitForTimeout(300);
  check(await page.evaluate(() => (document.activeElement?.getAttribute('aria-label') || '').startsWith('Remove: ')),
    'a Tab out of a changed quantity lost the keyboard focus');
  check(await page.getByText('Nothing was ordered: correct the quantity').count() === 0,
    'the quantity message stays after the quantity was corrected');
  // A price changed since the line was added is what the cart shows (the
  // change marked), and a change after the cart was shown stops the
  // checkout until the person has seen it: never charged unseen.
  const oldPrice = await setPrice(P.beta.id, P.beta.price_cents + 111);
  try {
    await page.reload();
    await ready(page, 'Your cart');
    const betaLine = page.locator('li.line[data-product-id="' + P.beta.id + '"]');
    await betaLine.getByText('price changed').waitFor();
    check((await betaLine.textContent()).includes(euros(P.beta.price_cents + 111)),
      'the cart does not show the current price: ' + await betaLine.textContent());
    await audit(page, 'cart');
    await setPrice(P.beta.id, P.beta.price_cents + 222);
    await page.locator('#checkout').click();
    await page.getByRole('alert').filter({ hasText: 'prices changed since you last looked' }).waitFor();
    check(page.url().endsWith('#/cart'), 'ordered at a price not shown: ' + page.url());
    check((await betaLine.textContent()).includes(euros(P.beta.price_cents + 222)),
      'the cart does not show the price that stopped the checkout');
    await submitUntil(page, page.locator('#checkout'), page.locator('h1', { hasText: 'Order #' }));
  } finally {
    await setPrice(P.beta.id, oldPrice);
  }
  await ready(page, 'Order #');
  const orderId = Number(/#\/orders\/(\d+)/.exec(page.url())[1]);
  out.customer_order = orderId;
  await page.getByText('is confirmed').waitFor();
  const placed = await apiCall('GET', '/orders/' + orderId, { token: await adminToken() });
  const betaItem = placed.json.items.find((it) => it.product_id === P.beta.id);
  check(betaItem && betaItem.unit_price_cents === P.beta.price_cents + 222,
    'the order holds another price than the cart showed: ' + JSON.stringify(placed.json.items));
  await audit(page, 'order');
  const mid = { a: (await product(P.alpha.id)).stock, b: (await product(P.beta.id)).stock };
  check(mid.a === before.a - 2 && mid.b === before.b - 1, 'stock not taken: ' + JSON.stringify([before, mid]));

  await page.getByRole('link', { name: 'My orders', exact: true }).click();
  await ready(page, 'My orders');
  const art = page.locator('article[data-order-id="' + orderId + '"]');
  await art.waitFor();
  check((await art.textContent()).includes(P.alpha.name), 'order does not list ' + P.alpha.name);
  await audit(page, 'orders');
  await submitUntil(page, art.getByRole('button', { name: 'Cancel order' }), art.locator('.badge', { hasText: 'cancelled' }));
  await page.getByText('its stock went back').waitFor();

  // The product page, read with the customer's token (never cached): stock back.
  await go(page, '#/product/' + P.alpha.id);
  await ready(page, P.alpha.name);
  check(!/\bnull\b/.test(await page.locator('main').innerText()), 'the product page shows "null"');
  const stock = (await page.locator('#stock').textContent()).trim();
  check(stock === before.a + ' in stock', 'stock shown after cancel: ' + stock + ', want ' + before.a);
  await audit(page, 'product');
  const after = { a: (await product(P.alpha.id)).stock, b: (await product(P.beta.id)).stock };
  check(after.a === before.a && after.b === before.b, 'stock not back: ' + JSON.stringify([before, after]));

  // Sign out: the session ends, a reload does not bring it back.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('link', { name: 'Sign in' }).waitFor();
  await page.reload();
  await ready(page);
  check(await page.locator('.who').count() === 0, 'still signed in after sign-out and reload');
  await audit(page, 'signin-link');
  await page.context().close();
});

// ---- 3. double click, and a lost answer: one order ----------------------------
await journey('double-click', async () => {
  const page = await newPage();
  const who = { email: email('dbl'), password: PASSWORD };
  out.double_click = who;
  await signUp(page, who.email, 'Dee Double');
  // A reload keeps the session (refresh token in sessionStorage).
  await page.reload();
  await ready(page);
  await page.locator('.who', { hasText: who.email }).waitFor();
  const before = (await product(P.gamma.id)).stock;
  await addFromProductPage(page, P.gamma, 1);
  await go(page, '#/cart');
  await ready(page, 'Your cart');
  // The first answer to POST /orders is lost after the order was placed
  // (the connection drops): the page retries with the same Idempotency-Key.
  const keys = [];
  let lost = false;
  await page.route('**/orders', async (route) => {
    const req = route.request();
    if (req.method() !== 'POST') return route.continue();
    keys.push(req.headers()['idempotency-key']);
    if (!lost) {
      lost = true;
      await route.fetch();            // the shop places the order ...
      return route.abort('connectionreset');   // ... the answer never arrives
    }
    return route.continue();
  });
  // (A 503 on a busy machine: "Retry order" repeats the same attempt.)
  await submitUntil(page, (i) => (i === 1 ? page.locator('#checkout').dblclick() : page.locator('#checkout').click()),
    page.locator('h1', { hasText: 'Order #' }));
  await ready(page, 'Order #');
  out.double_click.order = Number(/#\/orders\/(\d+)/.exec(page.url())[1]);
  check(keys.length >= 2 && keys.every((k) => k && k === keys[0]), 'retries did not reuse one Idempotency-Key: ' + JSON.stringify(keys));
  const token = await tokenOf(who.email, who.password);
  const orders = await apiCall('GET', '/orders', { token });
  check(orders.json.items.length === 1, 'double click placed ' + orders.json.items.length + ' orders');
  check(orders.json.items[0].id === out.double_click.order, 'the page shows another order than the one placed');
  const after = (await product(P.gamma.id)).stock;
  check(after === before - 1, 'stock taken ' + (before - after) + ' times');
  await page.context().close();
});

// ---- 4. out of stock: the failing line is named; keyboard-only sign-in ---------
await journey('out-of-stock', async () => {
  const page = await newPage();
  await go(page, '#/signin');
  // Keyboard only: the page heading has focus; Tab to the fields, Enter.
  await page.keyboard.press('Tab');
  await page.keyboard.type(customer.email);
  await page.keyboard.press('Tab');
  await page.keyboard.type(customer.password);
  await submitUntil(page, () => page.keyboard.press('Enter'), page.locator('.who', { hasText: customer.email }));
  await ready(page, 'Catalogue');
  await addFromProductPage(page, P.alpha, 1);
  await addFromProductPage(page, P.scarce, P.scarce.stock + 1);
  const stocks = [(await product(P.alpha.id)).stock, (await product(P.scarce.id)).stock];
  const token = await tokenOf(customer.email, customer.password);
  const nBefore = (await apiCall('GET', '/orders', { token })).json.items.length;
  await go(page, '#/cart');
  await ready(page, 'Your cart');
  const bad = page.locator('li.line[data-product-id="' + P.scarce.id + '"] .line-error');
  await submitUntil(page, page.locator('#checkout'), bad);
  const text = await bad.textContent();
  check(text.includes('only ' + P.scarce.stock + ' left') && text.includes('asked for ' + (P.scarce.stock + 1)), 'line error: ' + text);
  check(await page.locator('li.line[data-product-id="' + P.alpha.id + '"] .line-error').count() === 0, 'the good line is marked too');
  await page.getByRole('alert').filter({ hasText: 'Nothing was ordered' }).waitFor();
  await audit(page, 'cart-out-of-stock');
  check((await apiCall('GET', '/orders', { token })).json.items.length === nBefore, 'an order was placed');
  const now = [(await product(P.alpha.id)).stock, (await product(P.scarce.id)).stock];
  check(now[0] === stocks[0] && now[1] === stocks[1], 'stock changed: ' + JSON.stringify([stocks, now]));
  // Fixing the quantity makes the same cart orderable (a new attempt, a new key).
  const q = page.locator('li.line[data-product-id="' + P.scarce.id + '"] input');
  await q.fill(String(P.scarce.stock));
  await q.press('Tab');
  await submitUntil(page, page.locator('#checkout'), page.locator('h1', { hasText: 'Order #' }));
  await page.context().close();
});

// ---- 5. a seller: draft, publish, stock, a concurrent edit ------------------
await journey('seller', async () => {
  const a = await newPage();
  await signIn(a, S.seller.email, S.seller.password);
  await go(a, '#/seller');
  await ready(a, 'My products');
  await audit(a, 'seller-products');
  await a.getByRole('link', { name: 'New product' }).click();
  await ready(a, 'New product');
  const sku = 'web-' + S.tag;
  const name = 'Lamp ' + S.tag;
  // A bad price first: the field error appears next to the field.
  await a.getByLabel('SKU').fill(sku);
  await a.getByLabel('Name').fill(name);
  await a.getByLabel('Description').fill('A desk lamp.');
  await a.getByLabel('Price').fill('12.345');
  await a.getByLabel('Initial stock').fill('4');
  await a.getByRole('button', { name: 'Create product' }).click();
  await a.locator('#' + (await a.getByLabel('Price').getAttribute('id')) + '-error').waitFor();
  // The API's own 422: a name too long is reported at the name field.
  await a.getByLabel('Price').fill('19.90');
  await a.evaluate(() => document.querySelector('[name=name]').removeAttribute('maxlength'));
  await a.getByLabel('Name').fill('x'.repeat(201));
  await submitUntil(a, a.getByRole('button', { name: 'Create product' }), a.locator('[name=name][aria-invalid="true"]'));
  await audit(a, 'seller-new-errors');
  await a.getByLabel('Name').fill(name);
  await submitUntil(a, a.getByRole('button', { name: 'Create product' }), a.locator('h1', { hasText: 'Edit product' }));
  await ready(a, 'Edit product');
  const id = Number(/edit\/(\d+)/.exec(a.url())[1]);
  out.seller_product = id;
  await a.getByText('Created ' + name + ' (draft)').waitFor();
  check((await apiCall('GET', '/products/' + id)).status === 404, 'a draft is visible anonymously');

  await go(a, '#/seller');
  await ready(a, 'My products');
  const card = a.locator('article[data-product-id="' + id + '"]');
  await card.locator('.badge', { hasText: 'draft' }).waitFor();
  await submitUntil(a, card.getByRole('button', { name: 'Publish' }), a.locator('article[data-product-id="' + id + '"] .badge', { hasText: 'active' }));
  check((await product(id, await tokenOf(S.seller.email, S.seller.password))).status === 'active', 'not active after Publish');
  // Stock: +3, then a decrease below zero is refused next to the field.
  const card2 = a.locator('article[data-product-id="' + id + '"]');
  await card2.getByLabel('Stock change').fill('3');
  await submitUntil(a, card2.getByRole('button', { name: 'Adjust stock' }), card2.getByText('is now 7'));
  await card2.getByLabel('Stock change').fill('-50');
  await card2.getByRole('button', { name: 'Adjust stock' }).click();
  await card2.getByText('cannot go below zero').waitFor();
  await audit(a, 'seller-products-list');

  // Two pages edit the same product; the second save gets the conflict.
  const b = await newPage();
  await signIn(b, S.seller.email, S.seller.password);
  await go(a, '#/seller/edit/' + id);
  await ready(a, 'Edit product');
  await go(b, '#/seller/edit/' + id);
  await ready(b, 'Edit product');
  await b.getByLabel('Name').fill(name + ' B');
  await submitUntil(b, b.getByRole('button', { name: 'Save changes' }), b.getByText('Saved:'));
  await a.getByLabel('Name').fill(name + ' A');
  await a.getByLabel('Price').fill('21.00');
  const alert = a.getByRole('alert').filter({ hasText: 'changed elsewhere' });
  await submitUntil(a, a.getByRole('button', { name: 'Save changes' }), alert);
  check((await alert.textContent()).includes('name: ' + name + ' A'), 'the unsaved values are not shown: ' + await alert.textContent());
  check(await a.getByLabel('Name').inputValue() === name + ' B', 'the form was not reloaded with the current version');
  await audit(a, 'seller-edit-conflict');
  const cur = await product(id);
  check(cur.name === name + ' B' && cur.price_cents === 1990, 'the stale edit overwrote: ' + JSON.stringify(cur));
  // Saving again, now on the current version, works.
  await a.getByLabel('Name').fill(name + ' A');
  await submitUntil(a, a.getByRole('button', { name: 'Save changes' }), a.getByText('Saved:'));
  check((await product(id, await tokenOf(S.seller.email, S.seller.password))).name === name + ' A', 'second save lost');
  // Only the stock moved since the form was loaded (a customer's order, a
  // stock change): nothing the form edits changed, so the save goes through.
  const r = await apiCall('POST', '/products/' + id + '/stock', { token: await adminToken(), body: { delta: 1 } });
  check(r.status === 200, 'stock +1: ' + r.status);
  await a.getByLabel('Name').fill(name + ' C');
  await submitUntil(a, a.getByRole('button', { name: 'Save changes' }), a.getByText('Saved:'));
  const saved = await product(id);
  check(saved.name === name + ' C' && saved.stock === r.json.stock, 'the save after a stock move: ' + JSON.stringify(saved));
  out.seller_product_name = name + ' C';
  // A name the API allows but a text input cannot show (a newline, set
  // through the API): saving another field in the form leaves it as it is.
  const odd = name + ' C\nsecond line';
  const before = await product(id);
  const set = await apiCall('PATCH', '/products/' + id, { token: await adminToken(), body: { name: odd },
    headers: { 'If-Match': '"' + before.version + '"' } });
  check(set.status === 200, 'PATCH a name with a newline: ' + set.status);
  await a.reload();             // the same edit page, read again
  await ready(a, 'Edit product');
  check((await a.getByLabel('Name').inputValue()) === name + ' Csecond line', 'the form shows the name as ' +
    JSON.stringify(await a.getByLabel('Name').inputValue()));
  await a.getByLabel('Price').fill('22.00');
  await submitUntil(a, a.getByRole('button', { name: 'Save changes' }), a.getByText('Saved:'));
  const kept = await product(id);
  check(kept.name === odd && kept.price_cents === 2200, 'a save of the price rewrote the name: ' + JSON.stringify(kept));
  const back = await apiCall('PATCH', '/products/' + id, { token: await adminToken(), body: { name: name + ' C' },
    headers: { 'If-Match': '"' + kept.version + '"' } });
  check(back.status === 200, 'PATCH the name back: ' + back.status);
  // Another seller who opens this product's edit page gets no form for it.
  const otherEmail = email('other-seller');
  const reg = await apiCall('POST', '/auth/register', { body: { email: otherEmail, password: PASSWORD, name: 'Other Seller' } });
  check(reg.status === 201, 'register the other seller: ' + reg.status);
  const role = await apiCall('PATCH', '/auth/users/' + reg.json.id, { token: await adminToken(), body: { role: 'seller' } });
  check(role.status === 200, 'make them a seller: ' + role.status);
  await signIn(b, otherEmail, PASSWORD);
  await go(b, '#/seller/edit/' + id);
  await ready(b, 'Edit product');
  await b.getByText('No such product among yours.').waitFor();
  check(await b.getByRole('button', { name: 'Save changes' }).count() === 0, "another seller's edit page shows a form");
  // Archive from the list.
  await go(a, '#/seller');
  await ready(a, 'My products');
  // (If the list cannot be reloaded after a 503, "Load the list again".)
  const reload = a.getByRole('button', { name: 'Load the list again' });
  await submitUntil(a, async () => (await reload.isVisible() ? reload.click()
    : a.locator('article[data-product-id="' + id + '"]').getByRole('button', { name: 'Archive' }).click()),
  a.locator('article[data-product-id="' + id + '"] .badge', { hasText: 'archived' }));
  await b.context().close();
  await a.context().close();
});

// ---- 6. the admin: users and roles ------------------------------------------
await journey('admin', async () => {
  const page = await newPage();
  await signIn(page, S.admin.email, S.admin.password);
  await go(page, '#/admin');
  await ready(page, 'Users and roles');
  const token = await tokenOf(customer.email, customer.password);
  const me = (await apiCall('GET', '/auth/me', { token })).json;
  await page.getByLabel('User id').fill(String(me.id));
  await page.getByRole('button', { name: 'Look up' }).click();
  const card = page.locator('article[data-user-id="' + me.id + '"]');
  await card.waitFor();
  await card.getByLabel('Role', { exact: true }).selectOption('seller');
  await submitUntil(page, card.getByRole('button', { name: 'Save role' }), page.getByText(customer.email + ' is now seller'));
  await audit(page, 'admin');
  const admin = await tokenOf(S.admin.email, S.admin.password);
  check((await apiCall('GET', '/auth/users/' + me.id, { token: admin })).json.role === 'seller', 'role not changed');
  out.promoted = me.id;
  // The admin sees every order.
  await go(page, '#/orders');
  await ready(page, 'All orders');
  // ...and whose each one is: the customer's order names them.
  await page.locator('article[data-order-id="' + out.customer_order + '"]', { hasText: 'customer #' + me.id }).waitFor();
  await audit(page, 'admin-orders');
  await page.context().close();
});

// ---- 6b. one browser, two people: the cart is its account's alone ------------
await journey('shared-browser', async () => {
  const a = await newPage();
  const annEmail = email('share-ann');
  await signUp(a, annEmail, 'Ann Shared');
  await addFromProductPage(a, P.alpha);
  await a.getByRole('link', { name: 'Cart (1)' }).waitFor();
  // Another tab of the same browser, nobody signed in there: no cart of Ann's.
  const b = await a.context().newPage();
  b.on('pageerror', (e) => problems.push('page error: ' + e.message));
  await go(b, '#/cart');
  await ready(b, 'Your cart');
  await b.getByText('Your cart is empty.').waitFor();
  check(await b.getByRole('link', { name: /^Cart \(/ }).count() === 0, 'a signed-out tab counts the cart of Ann');
  // Bob signs in there: still not Ann's.
  await signUp(b, email('share-bob'), 'Bob Shared');
  await go(b, '#/cart');
  await ready(b, 'Your cart');
  await b.getByText('Your cart is empty.').waitFor();
  await b.close();
  // Ann's own tab still holds her line.
  await go(a, '#/cart');
  await ready(a, 'Your cart');
  await a.locator('li.line[data-product-id="' + P.alpha.id + '"]').waitFor();
  // Her session ends elsewhere (signed out with its refresh token, then her
  // role changed, which voids her access token): the checkout says so.
  const refresh = await a.evaluate(() => sessionStorage.getItem('shop.refresh'));
  check((await apiCall('POST', '/auth/logout', { body: { refresh_token: refresh } })).status === 204, 'logout');
  const me = (await apiCall('GET', '/auth/me', { token: await tokenOf(annEmail, PASSWORD) })).json;
  check((await apiCall('PATCH', '/auth/users/' + me.id, { token: await adminToken(), body: { role: 'seller' } })).status === 200,
    'role change');
  const stock = (await product(P.alpha.id)).stock;
  await new Promise((res) => setTimeout(res, 3000));      // the revocation reaches every host within 2 s
  await a.locator('#checkout').click();
  await a.getByText('Your session has ended. Please sign in again; your cart is kept for you.').waitFor();
  check((await product(P.alpha.id)).stock === stock, 'an order was placed for an ended session');
  // Signed in again, her cart is hers again.
  await signIn(a, annEmail, PASSWORD, '?next=' + encodeURIComponent('/cart'));
  await ready(a, 'Your cart');
  await a.locator('li.line[data-product-id="' + P.alpha.id + '"]').waitFor();
  await a.context().close();
});

// ---- 7. the remaining pages, as they are first seen ----------------------------
await journey('pages', async () => {
  const page = await newPage();
  await go(page, '#/signin');
  await ready(page, 'Sign in');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').waitFor();
  await audit(page, 'signin');
  await go(page, '#/signup');
  await ready(page, 'Create an account');
  await audit(page, 'signup');
  await go(page, '#/cart');
  await ready(page, 'Your cart');
  await audit(page, 'cart-empty');
  await go(page, '#/nowhere');
  await ready(page, 'Not found');
  await audit(page, 'not-found');
  // A small picture for the README.
  await go(page, '#/?q=' + S.tag);
  await ready(page, 'Search: ' + S.tag);
  await page.setViewportSize({ width: 960, height: 540 });
  await page.screenshot({ path: path.join(SHOTS, 'readme.png') });
  await page.context().close();
});

await browser.close();
if (problems.length) {
  failures.push('page-problems');
  console.log('journey page-problems: FAIL', JSON.stringify(problems.slice(0, 20)));
}
out.pages = [...shot].sort();
out.failures = failures;
console.log(JSON.stringify(out));
process.exit(failures.length ? 1 : 0);
