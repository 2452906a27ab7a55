// admin.js: users and their roles.  The API has no list of users: an admin
// looks a user up by id (GET /auth/users/{id}), and the page offers the ids
// of the users behind the most recent orders (GET /orders: admins see all).
import { api } from './api.js';
import { h, clear, page, messageBox, showProblem, field, select, busy, when } from './ui.js';

const ROLES = [['customer', 'Customer'], ['seller', 'Seller'], ['admin', 'Admin']];

export async function adminPage(main, params) {
  const box = messageBox();
  const idInput = h('input', { name: 'id', type: 'number', min: '1', inputmode: 'numeric', required: true,
    value: params.get('user') || '' });
  const find = h('button', { type: 'submit' }, 'Look up');
  const form = h('form', { class: 'inline', novalidate: true, role: 'search', 'aria-label': 'Find a user' },
    field('User id', {}, idInput), find);
  const result = h('div', { 'aria-live': 'polite' });
  const recent = h('ul', { class: 'chips', 'aria-label': 'Recent customers' });

  async function show(id) {
    clear(result);
    box.hide();
    try {
      const u = (await api('GET', '/auth/users/' + id, { auth: 'required' })).data;
      const role = select({ name: 'role' }, ROLES, u.role);
      const save = h('button', { type: 'submit', class: 'primary' }, 'Save role');
      const rform = h('form', { class: 'inline', novalidate: true, 'aria-label': 'Role of ' + u.email },
        field('Role', {}, role), save);
      rform.addEventListener('submit', busy(save, async () => {
        try {
          const r = await api('PATCH', '/auth/users/' + u.id, { body: { role: role.value }, auth: 'required',
            contentType: 'application/merge-patch+json' });
          box.show('info', h('p', {}, r.data.email + ' is now ' + r.data.role + '. Their old access tokens stop working within about 2 seconds; their next request gets a token with the new role (the storefront refreshes it by itself).'));
        } catch (e) { showProblem(box, e, rform); }
      }));
      result.append(h('article', { class: 'card wide', 'data-user-id': String(u.id) },
        h('h2', {}, u.name || u.email),
        h('p', {}, 'User #' + u.id + ' · ' + u.email + ' · since ' + when(u.created_at)),
        rform));
    } catch (e) {
      if (e.status === 404) box.show('error', h('p', {}, 'No user #' + id + '.'));
      else showProblem(box, e, form);
    }
  }

  form.addEventListener('submit', busy(find, async () => {
    const id = idInput.value.trim();
    if (!/^[1-9]\d*$/.test(id)) { box.show('error', h('p', {}, 'Enter a user id (a positive whole number).')); return; }
    await show(id);
  }));

  page(main, 'Users and roles', box, form,
    h('p', { class: 'hint' }, 'Signed-in users see their account number next to their email at the top of every page: ask for it.'),
    result,
    h('h2', {}, 'Users with recent orders'), recent);
  try {
    const r = await api('GET', '/orders?limit=50', { auth: 'required' });
    const ids = [...new Set(r.data.items.map((o) => o.user_id))];
    if (!ids.length) recent.append(h('li', {}, 'No orders yet.'));
    for (const id of ids) {
      const b = h('button', { type: 'button', class: 'link' }, 'User #' + id);
      b.addEventListener('click', () => { idInput.value = String(id); show(id); });
      recent.append(h('li', {}, b));
    }
  } catch (e) { showProblem(box, e); }
  if (idInput.value) await show(idInput.value);
}
