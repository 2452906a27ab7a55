"""test_notify.py: what users see of the events (issue 13, part B): a role
or password change voids the user's older access tokens on every host
within 2 s (401, revoked), a password change also voids the refresh
tokens; every confirmed and every cancelled order gets exactly one email,
read back from the stack's SMTP sink; a message that always fails lands in
its dead-letter queue and `shop-consume replay` moves it back; a firing
alert reaches a person (Alertmanager's email in the same sink)."""
import json
import os
import subprocess
import time

import shop
from shop import assert_problem, call

REVOKE_WITHIN = 2.0          # seconds: the bound
NEW_PASSWORD = "a brand new passphrase"


# ---------------------------------------------------------------- helpers

def _revoked_everywhere(path, token, body=None, method="GET"):
    """Waits until every host answers `token` with the 401 of a revoked token;
    returns the seconds it took."""
    t0 = time.time()
    pending = {1, 2, 3}
    while pending and time.time() - t0 < REVOKE_WITHIN + 3:
        for n in sorted(pending):
            r = call(method, path, body, token=token, base=shop.host_url(n))
            if r.status == 401:
                shop.assert_revoked(r)
                pending.discard(n)
        time.sleep(0.05)
    assert not pending, "hosts %s still accept the token after %.1f s" % (sorted(pending), time.time() - t0)
    return time.time() - t0


def _pika(script, *args):
    """Runs a pika snippet with Debian's python3 (python3-pika), connected
    as the notifier's broker user; returns its stdout."""
    state = shop.STACK["SHOP_STATE_DIR"]
    with open(os.path.join(state, "secrets", "amqp-notify.pw")) as f:
        pw = f.read().strip()
    port = shop.STACK["SHOP_AMQP_PORTS"].split()[0]
    prog = ("import pika, sys\n"
            "c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', %s, '/',"
            " pika.PlainCredentials('shop-notify', %r)))\n"
            "ch = c.channel()\n%s\nc.close()\n" % (port, pw, script))
    r = subprocess.run(["/usr/bin/python3", "-c", prog] + list(args), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def _depth(queue):
    return int(_pika("print(ch.queue_declare(queue=sys.argv[1], passive=True).method.message_count)",
                     queue).strip())


def _poison():
    """A CloudEvent of an order type whose data no email can be made of,
    published straight to the notifier's queue (the other consumers of the
    type are left alone)."""
    ev = {"specversion": "1.0", "id": shop.unique("poison"), "source": "/shop/test",
          "type": "order.confirmed", "time": "2026-11-28T10:00:00.000Z", "subject": "0",
          "datacontenttype": "application/json", "data": {"note": "no order_id, no user_id"}}
    _pika("ch.confirm_delivery()\n"
          "ch.basic_publish('', 'notify', sys.argv[1].encode(), pika.BasicProperties("
          "content_type='application/cloudevents+json', delivery_mode=2, message_id=sys.argv[2],"
          " type='order.confirmed'), mandatory=True)", json.dumps(ev), ev["id"])
    return ev["id"]


# ---------------------------------------------------------------- revocation

def test_notify_password_change_voids_old_tokens_everywhere():
    u = shop.register()
    t = shop.login(u["email"])
    access, refresh = t["access_token"], t["refresh_token"]
    path = "/auth/password"
    assert_problem(call("POST", path, {"current_password": "not the password", "new_password": NEW_PASSWORD},
                        token=access), 401, "invalid_credentials")
    assert_problem(call("POST", path, {"current_password": shop.PASSWORD, "new_password": "short"},
                        token=access), 422, "validation_failed")
    assert_problem(call("POST", path, {"current_password": shop.PASSWORD}, token=access),
                   422, "validation_failed")
    assert_problem(call("POST", path, {"current_password": shop.PASSWORD, "new_password": NEW_PASSWORD,
                                       "extra": 1}, token=access), 422, "validation_failed")
    assert_problem(call("POST", path, {"current_password": shop.PASSWORD, "new_password": NEW_PASSWORD}),
                   401, "unauthorized")
    # Nothing of that changed anything.
    for n in (1, 2, 3):
        assert call("GET", "/auth/me", token=access, base=shop.host_url(n)).status == 200
    other = shop.login(u["email"])           # a second login family, also voided

    r = call("POST", path, {"current_password": shop.PASSWORD, "new_password": NEW_PASSWORD}, token=access)
    assert r.status == 204 and r.body == b"", r
    took = _revoked_everywhere("/auth/me", access)
    assert took <= REVOKE_WITHIN, "revocation took %.2f s" % took
    shop.assert_revoked(call("GET", "/auth/me", token=other["access_token"]))
    for old in (refresh, other["refresh_token"]):
        assert_problem(call("POST", "/auth/refresh", {"refresh_token": old}), 401, "unauthorized")
    r = call("POST", "/auth/login", {"email": u["email"], "password": shop.PASSWORD})
    assert_problem(r, 401, "invalid_credentials")
    fresh = shop.login(u["email"], NEW_PASSWORD)
    for n in (1, 2, 3):
        r = call("GET", "/auth/me", token=fresh["access_token"], base=shop.host_url(n))
        assert r.status == 200 and r.json["id"] == u["id"], r
    rows = shop.sql("SELECT event_type, subject FROM shop_auth.outbox WHERE subject = '%d' ORDER BY id"
                    % u["id"])
    assert [tuple(x) for x in rows] == [("user.password_changed", str(u["id"]))], rows


def _consumer_processed(service, path):
    """Per host: shop_events_processed_total{service} on the host's `path`
    scrape (the pool that reports that consumer's counters)."""
    return [shop.metric(shop.scrape(n, path), "shop_events_processed_total", service=service)
            for n in (1, 2, 3)]


def test_notify_demoted_seller_loses_seller_rights_everywhere_within_2s():
    seller, token = shop.new_user("seller")
    shop.new_product(token)
    revokes = _consumer_processed("revoke", "/auth/metrics")
    assert None not in revokes, revokes
    for n in (1, 2, 3):            # a seller's request: {} is 422 once the role is checked
        assert_problem(call("POST", "/products", {}, token=token, base=shop.host_url(n)),
                       422, "validation_failed")
    r = call("PATCH", "/auth/users/%d" % seller["id"], {"role": "customer"}, token=shop.admin_token())
    assert r.status == 200 and r.json["role"] == "customer", r
    took = _revoked_everywhere("/products", token, body={}, method="POST")
    assert took <= REVOKE_WITHIN, "revocation took %.2f s" % took
    # Every host's revoke consumer took the event off its own queue, and its
    # counter shows on that host's /auth/metrics.
    shop.wait_for("each host's revoke consumer to count the event", lambda: all(
        now > then for now, then in zip(_consumer_processed("revoke", "/auth/metrics"), revokes)),
        timeout=10)
    # Signed in again: a customer, who may not create products.
    t = shop.login(seller["email"])
    assert_problem(call("POST", "/products", {}, token=t["access_token"]), 403, "forbidden")
    # Setting the role it already has is no change: no event, no revocation.
    r = call("PATCH", "/auth/users/%d" % seller["id"], {"role": "customer"}, token=shop.admin_token())
    assert r.status == 200, r
    time.sleep(REVOKE_WITHIN)
    assert call("GET", "/auth/me", token=t["access_token"]).status == 200
    rows = shop.sql("SELECT event_type, payload FROM shop_auth.outbox WHERE subject = '%d' ORDER BY id"
                    % seller["id"])
    changes = [json.loads(p) for ty, p in rows if ty == "user.role_changed"]
    assert [(c["old_role"], c["new_role"]) for c in changes] == [("customer", "seller"),
                                                                  ("seller", "customer")], changes


# ---------------------------------------------------------------- email

ORDERS = 200
CANCELS = 50


def test_notify_one_email_per_confirmed_and_cancelled_order():
    seller = shop.new_user("seller")[1]
    products = [shop.new_product(seller, stock=10000, price_cents=250 + i, name="Mail item %d" % i)
                for i in range(3)]
    customers = shop.parallel(8, lambda i: shop.new_user())
    for c in customers:
        assert not isinstance(c, Exception), c
    notified = sum(_consumer_processed("notify", "/orders/metrics"))

    def place(i):
        user, tok = customers[i % len(customers)]
        items = [{"product_id": products[i % 3]["id"], "quantity": 1 + i % 2}]
        if i % 4 == 0:
            items.append({"product_id": products[(i + 1) % 3]["id"], "quantity": 3})
        r = call("POST", "/orders", {"items": items}, token=tok)
        assert r.status == 201, r
        return user, tok, r.json
    placed = []
    for batch in range(0, ORDERS, 20):
        got = shop.parallel(20, lambda i: place(batch + i))
        for g in got:
            assert not isinstance(g, Exception), g
        placed.extend(got)
    cancelled = shop.parallel(CANCELS, lambda i: call("POST", "/orders/%d/cancel" % placed[i * 4][2]["id"],
                                                    token=placed[i * 4][1]))
    for c in cancelled:
        assert not isinstance(c, Exception) and c.status == 200, c
    want = {(o["id"], "confirmed") for _, _, o in placed}
    want |= {(placed[i * 4][2]["id"], "cancelled") for i in range(CANCELS)}

    def all_there():
        got = shop.order_mails()
        return got if want <= set(got) else None
    shop.wait_for("%d order emails in the sink" % len(want), all_there, timeout=180, every=1)
    time.sleep(3)                    # late duplicates would arrive now
    got = shop.order_mails()
    twice = {k: len(v) for k, v in got.items() if k in want and len(v) != 1}
    assert not twice, "emails sent more than once: %r" % sorted(twice.items())[:10]
    sent = shop.sql("SELECT COUNT(*) FROM shop_notify.sent_notifications WHERE sent_at IS NOT NULL"
                    " AND order_id IN (%s)" % ",".join(str(o["id"]) for _, _, o in placed))
    assert int(sent[0][0]) == len(want), sent
    # The notify consumers' counters (/orders/metrics of their hosts) saw
    # every one of those events.
    shop.wait_for("the notify counters", lambda: sum(
        _consumer_processed("notify", "/orders/metrics")) - notified >= len(want), timeout=10)

    # What a customer reads: to them, the order's lines and total.
    user, _, order = placed[0]
    m = got[(order["id"], "confirmed")][0]
    assert m["To"].addresses[0].addr_spec == user["email"], m["To"]
    body = m.get_content()
    assert "Order %d is confirmed" % order["id"] in body, body
    for line in order["items"]:
        assert "%d x %s (%s) at %d.%02d EUR: %d.%02d EUR" % (
            line["quantity"], line["name"], line["sku"], line["unit_price_cents"] // 100,
            line["unit_price_cents"] % 100, line["line_total_cents"] // 100,
            line["line_total_cents"] % 100) in body, body
    assert "Total: %d.%02d EUR" % (order["total_cents"] // 100, order["total_cents"] % 100) in body
    c = got[(order["id"], "cancelled")][0]
    assert "has been cancelled" in c.get_content()
    assert c["Message-ID"] != m["Message-ID"]


# ---------------------------------------------------------------- dead letters, alerts

def test_notify_poison_message_is_dead_lettered_and_replayed():
    before = _depth("notify.dead")
    _poison()
    shop.wait_for("the poison message in notify.dead", lambda: _depth("notify.dead") == before + 1,
                  timeout=30)
    env = dict(os.environ, SHOP_CONFIG=os.path.join(shop.STACK["SHOP_STATE_DIR"], "etc", "notify.conf"))
    r = subprocess.run([os.path.join(shop.STACK["SHOP_BIN_DIR"], "shop-consume"), "replay", "notify.dead"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr[-2000:])
    assert "replayed %d message(s) from notify.dead to notify" % (before + 1) in r.stdout, r.stdout
    # Back in its queue, it fails again and returns to the dead letters.
    shop.wait_for("the replayed message dead again", lambda: _depth("notify.dead") == before + 1,
                  timeout=30)
    r = subprocess.run([os.path.join(shop.STACK["SHOP_BIN_DIR"], "shop-consume"), "replay", "notify"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "not a dead-letter queue" in r.stderr, r


def test_notify_alert_reaches_a_person():
    """make monitor's Prometheus sees notify.dead hold a message
    (DeadLetters) and Alertmanager emails the operators via the sink."""
    if _depth("notify.dead") == 0:
        _poison()
        shop.wait_for("a message in notify.dead", lambda: _depth("notify.dead") > 0, timeout=30)
    # Scrapes and evaluations every 2 s, the first email 1 s after the
    # alert fires: the rule's own `for: 30s` is most of the wait.
    r = shop.script("monitor", "start", check=False,
                    env={"SHOP_SCRAPE_INTERVAL": "2s", "SHOP_ALERT_GROUP_WAIT": "1s"})
    try:
        assert r.returncode == 0, (r.stdout, r.stderr[-2000:])

        def alert_mail():
            for m in shop.mails():
                if "DeadLetters" in str(m["Subject"] or "") and "[shop FIRING]" in str(m["Subject"]):
                    return m
            return None
        m = shop.wait_for("the DeadLetters alert's email", alert_mail, timeout=120, every=1)
        assert m["To"].addresses[0].addr_spec == "ops@shop.local", m["To"]
        body = m.get_body(preferencelist=("plain", "html")).get_content()
        assert "notify.dead" in body, body
        assert "Replaying dead letters" in body, body       # the runbook case
    finally:
        shop.script("monitor", "stop", check=False)


# ---------------------------------------------------------------- least privilege

def test_notify_consumers_hold_only_what_they_need():
    """notify reads of auth's data only a user's id, email and name; each
    consumer's config (its passwords) is its own user's alone; the list
    the revoke consumer writes is readable by every service's workers; the
    consumers' broker users cannot read each other's queues."""
    import test_privileges as tp
    grants = " ".join(g[0] for g in shop.sql("SHOW GRANTS FOR shop_notify@'%'"))
    assert "`shop_notify`.*" in grants, grants
    assert "SELECT (`id`, `email`, `name`) ON `shop_auth`.`users`" in grants, grants
    assert "password_hash" not in grants and "refresh_tokens" not in grants, grants
    assert "shop_order" not in grants and "shop_product" not in grants, grants
    revoke = tp._conf("revoke.conf")
    assert not any(k.startswith("DB_") for k in revoke), revoke
    if os.geteuid() == 0:
        for name, owner in (("notify.conf", "shop-notify"), ("revoke.conf", "shop-revoke")):
            path = tp._state("etc", name)
            assert tp._can_read(owner, path), (owner, path)
            for other in ("shop-auth", "shop-product", "shop-order", "shop-web", "shop-edge",
                          "shop-notify", "shop-revoke"):
                if other != owner:
                    assert not tp._can_read(other, path), "%s can read %s" % (other, path)
        for n in (1, 2, 3):
            path = tp._state("host%d" % n, "revoked.list")
            st = os.stat(path)
            assert st.st_size > 0 and st.st_mode & 0o777 == 0o644, (path, oct(st.st_mode))
            assert pwd_name(st.st_uid) == "shop-revoke", path
    notify_pw = tp._conf("notify.conf")["AMQP_PASSWORD"]
    out = _pika("try:\n"
                "    ch.basic_get('settle')\n"
                "    print('read')\n"
                "except pika.exceptions.ChannelClosedByBroker as e:\n"
                "    print(e.reply_code)")
    assert out.strip() == "403", out
    assert notify_pw != tp._conf("revoke.conf")["AMQP_PASSWORD"]


def pwd_name(uid):
    import pwd
    return pwd.getpwuid(uid).pw_name


def test_notify_local_relay_keeps_each_message_as_sent():
    """The stack's SMTP sink (scripts/smtp-sink.c) is the mail relay a
    developer reads: it must speak SMTP as a relay does (pipelined commands,
    order of commands, dot-stuffing) and keep each accepted message whole."""
    import smtplib
    import socket
    host, port = shop.STACK["SHOP_SMTP_URL"].rsplit("/", 1)[1].rsplit(":", 1)
    tag = shop.unique("sink")
    body = ("Subject: %s\r\n\r\nfirst line\r\n.starts with a dot\r\n..two dots\r\n.\r\n"
            "after a lone dot\r\nlast line\r\n" % tag)
    with smtplib.SMTP(host, int(port), timeout=10) as s:
        code, _ = s.ehlo("test")
        assert code == 250 and s.has_extn("pipelining"), s.esmtp_features
        assert s.rcpt("a@example.test")[0] == 503          # RCPT before MAIL
        assert s.docmd("DATA")[0] == 503                   # DATA before RCPT
        refused = s.sendmail("sender@example.test", ["a@example.test", "b@example.test"],
                             body.encode())
        assert refused == {}
    # Pipelined: the three commands in one write, the three replies after.
    with socket.create_connection((host, int(port)), timeout=10) as c:
        f = c.makefile("rb")
        assert f.readline().startswith(b"220")
        c.sendall(b"EHLO test\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        c.sendall(b"MAIL FROM:<p@example.test>\r\nRCPT TO:<q@example.test>\r\nDATA\r\n")
        assert [f.readline()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        c.sendall(("Subject: %s-pipelined\r\n\r\nhello\r\n.\r\nQUIT\r\n" % tag).encode())
        assert f.readline()[:3] == b"250" and f.readline()[:3] == b"221"

    got = {}
    for m in shop.mails():
        if str(m["Subject"] or "").startswith(tag):
            got[str(m["Subject"])] = m
    assert set(got) == {tag, tag + "-pipelined"}, sorted(got)
    m = got[tag]
    assert m["Return-Path"] == "<sender@example.test>", m["Return-Path"]
    assert m.get_all("Delivered-To") == ["a@example.test", "b@example.test"]
    assert m.get_content() == ("first line\n.starts with a dot\n..two dots\n.\n"
                               "after a lone dot\nlast line\n"), repr(m.get_content())
    assert got[tag + "-pipelined"].get_all("Delivered-To") == ["q@example.test"]
