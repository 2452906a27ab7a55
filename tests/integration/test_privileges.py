"""test_privileges.py: least privilege.  Started as root (as the tests are
in CI), the stack runs nothing of its own as root: HAProxy as shop-edge,
lighttpd as shop-web, each service's pool (supervisor and workers), sweep,
outbox relay and consumers as shop-auth / shop-product / shop-order, the
RabbitMQ nodes as rabbitmq; auth's signing key and each
service's config (its DB password) are readable by that service's user
alone.  Started by anyone else, everything runs as that user."""
import glob
import os
import pwd
import signal
import subprocess

import shop

SERVICES = ("auth", "product", "order")


def _state(*parts):
    return os.path.join(shop.STACK["SHOP_STATE_DIR"], *parts)


_read_pid = shop.read_pid


def _children(pid):
    return [c for c, _ in shop.children(pid)]


def _ids(pid):
    """(uids, gids, groups) of a live process: real, effective, saved, fs."""
    with open("/proc/%d/status" % pid) as f:
        st = dict(line.split(":", 1) for line in f if ":" in line)
    return ([int(x) for x in st["Uid"].split()], [int(x) for x in st["Gid"].split()],
            [int(x) for x in st["Groups"].split()])


def _comm(pid):
    """A process's name, or None once it is gone (a child listed a moment
    ago may have exited and been reaped since: the killed worker here)."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _processes():
    """{(what, pid): expected user} for every process the stack runs but
    MariaDB's."""
    root = os.geteuid() == 0
    me = pwd.getpwuid(os.geteuid()).pw_name
    want = {}
    pid = _read_pid(_state("haproxy", "haproxy.pid"))
    assert pid, "no HAProxy pid"
    want[("haproxy", pid)] = "shop-edge" if root else me
    for n in (1, 2, 3):
        host = "host%d" % n
        pid = _read_pid(_state(host, "lighttpd.pid"))
        assert pid, "no lighttpd pid for " + host
        want[(host + " lighttpd", pid)] = "shop-web" if root else me
        for svc in SERVICES:
            user = "shop-" + svc if root else me
            pool = _read_pid(_state(host, "%s.pool.pid" % svc))
            assert pool and _comm(pool) == "shop-pool", (host, svc, pool)
            want[(host + " " + svc + " pool", pool)] = user
            workers = [p for p in _children(pool) if _comm(p) == svc + ".fcgi"]
            assert len(workers) >= 1, (host, svc, "no workers")
            for w in workers:
                want[(host + " " + svc + " worker", w)] = user
        for svc, f in (("order", "sweep.pid"), ("auth", "auth-sweep.pid")):
            pid = _read_pid(_state(host, f))
            assert pid and _comm(pid) == svc + ".fcgi", (host, f, pid)
            want[(host + " " + svc + " sweep", pid)] = "shop-" + svc if root else me
        for svc, f, comm in (("order", "relay-order.pid", "shop-relay"),
                             ("auth", "relay-auth.pid", "shop-relay"),
                             ("product", "consume-settle.pid", "shop-consume"),
                             ("revoke", "consume-revoke.pid", "shop-consume"),
                             ("notify", "consume-notify.pid", "shop-consume")):
            pid = _read_pid(_state(host, f))
            assert pid and _comm(pid) == comm, (host, f, pid)
            want[(host + " " + comm, pid)] = "shop-" + svc if root else me
        pid = _read_pid(_state("rabbit%d" % n, "server.pid"))
        assert pid and _comm(pid) == "beam.smp", ("rabbit%d" % n, pid)
        want[("rabbit%d" % n, pid)] = "rabbitmq" if root else me
    pid = _read_pid(_state("mail", "smtp.pid"))          # the SMTP sink
    assert pid and _comm(pid) == "smtp-sink", ("smtp", pid)
    want[("smtp sink", pid)] = "shop-web" if root else me
    return want


def test_no_stack_process_runs_as_root():
    bad = []
    for (what, pid), user in sorted(_processes().items()):
        uids, gids, groups = _ids(pid)
        pw = pwd.getpwnam(user)
        if set(uids) != {pw.pw_uid} or set(gids) != {pw.pw_gid}:
            bad.append((what, pid, "uids", uids, "gids", gids, "want", user))
        elif os.geteuid() == 0 and 0 in groups:
            bad.append((what, pid, "in group 0", groups))
    assert not bad, bad


def _can_read(user, path):
    """Whether `user` can read `path` (as root: runuser; else only for the
    invoking user, by trying)."""
    r = subprocess.run(["runuser", "-u", user, "--", "cat", path],
                       capture_output=True, text=True, timeout=10)
    return r.returncode == 0 and r.stdout != ""


def _conf(name):
    with open(_state("etc", name)) as f:
        return dict(line.strip().split("=", 1) for line in f
                    if "=" in line and not line.startswith("#"))


def test_auth_key_and_db_passwords_are_readable_by_their_service_alone():
    if os.geteuid() != 0:
        return      # one user for everything: nothing to separate
    key = _conf("auth.conf")["JWT_PRIVATE_KEY"]
    assert os.path.exists(key), key
    assert _can_read("shop-auth", key), "auth cannot read its own signing key"
    for user in ("shop-product", "shop-order", "shop-web", "shop-edge"):
        assert not _can_read(user, key), "%s can read auth's private key %s" % (user, key)
    # Each service's config holds its DB password.
    confs = {"auth": [_state("etc", "auth.conf")],
             "order": [_state("etc", "order.conf")],
             "product": [_state("etc", "product.conf")]
             + sorted(glob.glob(_state("etc", "product-host*.conf")))}
    assert len(confs["product"]) == 4, confs
    for svc, paths in confs.items():
        for path in paths:
            assert _can_read("shop-" + svc, path), (svc, path)
            for other in ("shop-auth", "shop-product", "shop-order", "shop-web", "shop-edge"):
                if other != "shop-" + svc:
                    assert not _can_read(other, path), "%s can read %s" % (other, path)
    # The passwords differ per service, and each works only as its own DB user.
    pws = {svc: _conf(svc + ".conf")["DB_PASSWORD"] for svc in SERVICES}
    assert len(set(pws.values())) == 3
    assert {_conf(svc + ".conf")["DB_USER"] for svc in SERVICES} == \
        {"shop_auth", "shop_product", "shop_order"}
    grants = shop.sql("SHOW GRANTS FOR shop_product@'%'")
    text = " ".join(g[0] for g in grants)
    assert "shop_product" in text and "shop_auth" not in text and "shop_order" not in text, text


def test_public_keys_stay_readable_for_verification():
    """product and order verify tokens with auth's public keys: a token
    auth signed is accepted by both."""
    _, tok = shop.new_user()
    assert shop.call("GET", "/orders", token=tok).status == 200
    r = shop.call("GET", "/products?limit=1", token=tok)
    assert r.status == 200, r


def test_killed_worker_is_replaced_by_its_pool_as_the_same_user():
    host = "host1"
    pool = _read_pid(_state(host, "auth.pool.pid"))
    before = [p for p in _children(pool) if _comm(p) == "auth.fcgi"]
    assert len(before) == 3, before
    victim = before[0]
    uid = _ids(victim)[0]
    os.kill(victim, signal.SIGKILL)

    def replaced():
        now = [p for p in _children(pool) if _comm(p) == "auth.fcgi"]
        return len(now) == 3 and victim not in now and now
    now = shop.wait_for("the auth pool to replace a killed worker", replaced, timeout=10)
    new = (set(now) - set(before)).pop()
    assert _ids(new)[0] == uid
    # And the host serves auth as before.
    base = "http://127.0.0.1:%d" % (int(shop.STACK["SHOP_PORT_BASE"]) + 11)
    r = shop.call("GET", "/auth/health", base=base)
    assert r.status == 200, r


def test_broker_users_are_per_service_and_guest_is_gone():
    """RabbitMQ: no guest; each service has its own user and password, and
    order's (its relay only publishes) cannot read product's queue."""
    import test_events as te
    pika = te.pika
    port = int(shop.STACK["SHOP_AMQP_PORTS"].split()[0])

    def connect(user, pw):
        return pika.BlockingConnection(pika.ConnectionParameters(
            host="127.0.0.1", port=port, credentials=pika.PlainCredentials(user, pw),
            connection_attempts=1))
    try:
        connect("guest", "guest").close()
        raise AssertionError("guest/guest logged in")
    except pika.exceptions.AMQPConnectionError:
        pass
    pws = {svc: _conf(svc + ".conf")["AMQP_PASSWORD"] for svc in SERVICES}
    assert len(set(pws.values())) == 3, "the services share a broker password"
    assert {_conf(svc + ".conf")["AMQP_USER"] for svc in SERVICES} == \
        {"shop-auth", "shop-product", "shop-order"}
    conn = connect("shop-order", pws["order"])
    try:
        ch = conn.channel()
        try:
            ch.basic_get("settle")
            raise AssertionError("shop-order could read product's queue settle")
        except pika.exceptions.ChannelClosedByBroker as e:
            assert e.reply_code == 403, e
    finally:
        conn.close()
    if os.geteuid() == 0:
        cookie = _state("secrets", "erlang.cookie")
        for user in ("shop-auth", "shop-product", "shop-order", "shop-web", "shop-edge"):
            assert not _can_read(user, cookie), "%s can read the Erlang cookie" % user
