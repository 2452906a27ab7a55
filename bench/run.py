#!/usr/bin/env python3
"""bench/run.py: the benchmark of issue 8 (called by bench/run, `make bench`).

Starts one stack (scripts/stack) on free ports in a temporary state dir with
the rate limits off, seeds it (1,000,000 products by SQL, a few users through
the API), measures every row of the table with wrk (bench/*.lua) and every
ceiling in the same run, always stops the stack, prints one table and rewrites
the generated part of bench/RESULTS.md.

Each figure is the median of --runs runs of --seconds seconds, after one short
warm-up run.  Ceilings:
  static        lighttpd static file through HAProxy (the layer's top)
  get_direct    the uncached product GET straight to host 1's lighttpd: what
                the edge adds is the ratio of the "product get, cache off" row
  (every wrk row also reports the CPU its HAProxy used, from /proc/<pid>/stat
  utime+stime over each run, in % of one core)
  hello         bench/hello.c, a FastCGI no-op, through HAProxy -> lighttpd
  argon2        bench/argon2_rate.c: crypto_pwhash_str at the auth service's
                parameters (read from a hash it stored), on nproc threads
  order_tx      bench/order_tx.lua under sysbench: one order's DB transactions
                on the writer, through the HAProxy DB listener
static and hello go through the public edge when it routes them (/hello,
/static/); otherwise through a small HAProxy started here with the edge's
per-request work (request id, stick table, forwardfor) in front of the
stack's own lighttpd hosts' internal listeners, which serve
/static/hello.txt and, when build/hello.fcgi exists, a /hello pool
(scripts/stack adds it).

  run.py [--runs N] [--seconds S] [--connections C] [--products N]
         [--only NAME,...] [--keep] [--no-results]"""
import argparse
import glob
import json
import os
import platform
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "scripts"))
import shoplib  # noqa: E402  (ports, stack start/stop, HTTP, SQL: shared with the tests)
from shoplib import load_env, sql, wait_port  # noqa: E402

BUILD = os.path.join(REPO, "build")
PASSWORD = "bench-password-123"
SPREAD = 10000          # order spread: products 1..SPREAD of the seeded range
CHUNK = 100000          # seeded rows per INSERT ... SELECT (one Galera writeset)
RARE_WORD = "zanzibar"  # in RARE_COUNT seeded names, spread over the id range: the search row
RARE_COUNT = 5
ONLY = []               # --only: measure just the rows whose name contains one of these

TRANSIENT = []          # failed setup logins that a retry got past (reported)
started = []            # Popen objects of processes started here (not the stack)


# ------------------------------------------------------------------ helpers

def log(msg):
    print("bench: " + msg, flush=True)


def call(base, method, path, body=None, token=None, headers=None, timeout=30):
    """One HTTP request; returns (status, headers dict lower-case, parsed JSON or bytes)."""
    status, hdrs, raw = shoplib.http_request(base, method, path, body=body, token=token,
                                             headers=headers, timeout=timeout)
    try:
        val = json.loads(raw) if raw else None
    except ValueError:
        val = raw
    return status, hdrs, val


def median(xs):
    return statistics.median(xs) if xs else None


# ------------------------------------------------------------------ stack

def host_dirs(state):
    return sorted(d for d in glob.glob(os.path.join(state, "host*"))
                  if os.path.isfile(os.path.join(d, "lighttpd.conf")))


def host_port(conf_path):
    with open(conf_path) as f:
        m = re.search(r"^\s*server\.port\s*=\s*(\d+)", f.read(), re.M)
    return int(m.group(1))


def internal_port(conf_path):
    """The host's internal listener (lighttpd.conf.in): the one that serves
    www/ (static/hello.txt); HAProxy's API port serves no files."""
    with open(conf_path) as f:
        m = re.search(r'^\$SERVER\["socket"\]\s*==\s*"[^"]*:(\d+)"', f.read(), re.M)
    return int(m.group(1))


def haproxy_pid(state):
    """The stack's HAProxy (scripts/stack writes its pid file)."""
    try:
        with open(os.path.join(state, "haproxy", "haproxy.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def pool_pids(state):
    """The pool supervisors (pool/shop-pool) of every host: the parents of
    the FastCGI workers."""
    pids = []
    for d in host_dirs(state):
        for f in glob.glob(os.path.join(d, "*.pool.pid")):
            try:
                with open(f) as fh:
                    pids.append(int(fh.read().strip()))
            except (OSError, ValueError):
                pass
    return pids


def worker_procs(parent_pids):
    """{program name: [rss kB, ...]} of the FastCGI workers whose parent is
    one of `parent_pids` (the pool supervisors that spawned them)."""
    out = {}
    for st in glob.glob("/proc/[0-9]*/status"):
        try:
            with open(st) as f:
                text = f.read()
            ppid = int(re.search(r"^PPid:\s*(\d+)", text, re.M).group(1))
            if ppid not in parent_pids:
                continue
            pid = st.split("/")[2]
            # " (deleted)": the binary was rebuilt while the worker runs
            name = os.path.basename(os.readlink("/proc/%s/exe" % pid)).replace(" (deleted)", "")
            m = re.search(r"^VmRSS:\s*(\d+)", text, re.M)
            if name.endswith(".fcgi") and m:
                out.setdefault(name, []).append(int(m.group(1)))
        except (OSError, AttributeError, ValueError):
            continue
    return out


def start_ceiling_haproxy(tmp, hosts, port):
    """A small HAProxy on `port` doing the edge's per-request work, in front
    of the stack's lighttpd hosts, for the static and hello rows."""
    cfg = os.path.join(tmp, "bench-haproxy.cfg")
    servers = "\n".join("    server host%d 127.0.0.1:%d" % (i + 1, p)
                        for i, p in enumerate(hosts))
    with open(cfg, "w") as f:
        f.write("""# generated by bench/run.py: the ceiling rows' HAProxy
global
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    unique-id-format %%[uuid()]
frontend bench
    bind 127.0.0.1:%d
    option forwardfor
    acl rid_valid req.fhdr(X-Request-ID) -m reg ^[A-Za-z0-9._-]{1,128}$
    acl rid_single req.hdr_cnt(X-Request-ID) eq 1
    http-request set-header X-Request-ID %%[unique-id] unless rid_single rid_valid
    http-request set-var(txn.rid) req.fhdr(X-Request-ID)
    http-after-response set-header X-Request-ID %%[var(txn.rid)] if { var(txn.rid) -m found }
    stick-table type ipv6 size 100k expire 60s store http_req_rate(10s)
    http-request track-sc0 src
    http-request return status 429 if { sc_http_req_rate(0) gt 100000000 }
    default_backend hosts
backend hosts
    balance leastconn
%s
""" % (port, servers))
    p = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdin=subprocess.DEVNULL,
                         stdout=open(os.path.join(tmp, "bench-haproxy.log"), "w"),
                         stderr=subprocess.STDOUT, start_new_session=True)
    started.append(p)
    wait_port(port)
    return "http://127.0.0.1:%d" % port


def stop_started():
    for p in started:
        if p.poll() is None:
            p.terminate()
    for p in started:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    started.clear()


# ------------------------------------------------------------------ seeding

def make_user(url, admin_token, role=None):
    email = "bench-%s@example.test" % secrets.token_hex(6)
    st, _, body = call(url, "POST", "/auth/register", {"email": email, "password": PASSWORD})
    if st != 201:
        raise RuntimeError("register: %d %r" % (st, body))
    if role:
        st, _, body2 = call(url, "PATCH", "/auth/users/%d" % body["id"], {"role": role},
                            token=admin_token)
        if st != 200:
            raise RuntimeError("set role: %d %r" % (st, body2))
    return body["id"], email


def login(url, email, password=PASSWORD):
    st, _, body = call(url, "POST", "/auth/login", {"email": email, "password": password})
    if st != 200:
        raise RuntimeError("login %s: %d %r" % (email, st, body))
    return body["access_token"]


def seed_products(sock, n, seller_id):
    """Inserts n active products (stock 10^9) in chunks of CHUNK rows, each
    one statement (one Galera writeset), and renames RARE_COUNT of them, spread
    from the first to the last, to contain RARE_WORD.  Returns (first id, last id)."""
    base = int(sql(sock, "SELECT COALESCE(MAX(id), 0) FROM shop_product.products")[0][0])
    for lo in range(1, n + 1, CHUNK):
        hi = min(n, lo + CHUNK - 1)
        sql(sock, "INSERT INTO shop_product.products (id, sku, name, description,"
                  " price_cents, currency, stock, status, seller_id)"
                  " SELECT %d + seq, CONCAT('bench-', %d + seq), CONCAT('Bench product ', seq),"
                  " 'A product seeded by bench/run.', 100 + seq %% 10000, 'EUR', 1000000000,"
                  " 'active', %d FROM shop_product.seq_%d_to_%d" % (base, base, seller_id, lo, hi))
    rare = [base + 1 + k * (n - 1) // max(1, RARE_COUNT - 1) for k in range(RARE_COUNT)]
    sql(sock, "UPDATE shop_product.products SET name = CONCAT('Bench %s lantern ', id)"
              " WHERE id IN (%s)" % (RARE_WORD.capitalize(), ",".join(map(str, sorted(set(rare))))))
    sql(sock, "ANALYZE TABLE shop_product.products")
    return base + 1, base + n


def wait_login(url, email, secs=60):
    """Waits until a login succeeds again (auth back up after a flood)."""
    end = time.time() + secs
    while True:
        try:
            return login(url, email)
        except (RuntimeError, OSError) as e:
            TRANSIENT.append(str(e)[:160])
            if time.time() > end:
                raise
            time.sleep(1)


def wait_quiet(limit, secs):
    """Waits up to secs for the 1-minute load average to drop below limit
    (other stacks share this machine); returns the load average seen."""
    end = time.time() + secs
    while True:
        load = float(open("/proc/loadavg").read().split()[0])
        if load < limit or time.time() > end:
            return load
        time.sleep(5)


def argon2_params(sock, email):
    """(opslimit, memlimit bytes) of the Argon2id hash the auth service stored."""
    h = sql(sock, "SELECT password_hash FROM shop_auth.users WHERE email = '%s'" % email)[0][0]
    m = re.search(r"\$m=(\d+),t=(\d+),p=(\d+)\$", h)
    return int(m.group(2)), int(m.group(1)) * 1024


# ------------------------------------------------------------------ measuring

def run_wrk(url, script, env, conns, secs):
    e = dict(os.environ, BENCH_DIR=HERE, **env)
    cmd = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % secs, "--timeout", "10s",
           "--latency", "-s", os.path.join(HERE, script), url]
    out = subprocess.run(cmd, env=e, capture_output=True, text=True, check=True).stdout
    m = re.search(r"^BENCH_JSON (.*)$", out, re.M)
    if not m:
        raise RuntimeError("wrk printed no summary:\n" + out)
    r = json.loads(m.group(1))
    ok = r["requests"] - r["status_errors"]
    r["rate"] = ok / (r["duration_us"] / 1e6)
    r["errors"] = r["status_errors"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    return r


def skipped(name):
    return ONLY and not any(o in name for o in ONLY)


def cpu_ticks(pid):
    """utime + stime of `pid` in clock ticks (None when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            # Fields after the ")" that ends comm: state is field 3, utime 14.
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def run_wrk_cpu(url, script, env, conns, secs, cpu_pid):
    """run_wrk, plus r["cpu"]: cpu_pid's CPU over the run in % of one core."""
    t0, c0 = time.time(), cpu_ticks(cpu_pid) if cpu_pid else None
    r = run_wrk(url, script, env, conns, secs)
    t1, c1 = time.time(), cpu_ticks(cpu_pid) if cpu_pid else None
    r["cpu"] = (100.0 * (c1 - c0) / os.sysconf("SC_CLK_TCK") / (t1 - t0)
                if c0 is not None and c1 is not None else None)
    return r


def measure_wrk(args, name, url, script, env=None, conns=None, cpu_pid=None):
    """Rate, latency and errors of one row; with cpu_pid (the HAProxy the
    requests cross) also that process's CPU use during the runs."""
    if skipped(name):
        return None
    env = env or {}
    conns = conns or args.connections
    load = wait_quiet(args.quiet_load, args.quiet_wait)
    run_wrk(url, script, env, conns, 1)        # warm-up: pools, caches, connections
    runs = [run_wrk_cpu(url, script, env, conns, args.seconds, cpu_pid)
            for _ in range(args.runs)]
    cpus = [r["cpu"] for r in runs if r["cpu"] is not None]
    res = {"rate": median([r["rate"] for r in runs]),
           "cpu": median(cpus) if cpus else None,
           "p50": median([r["p50_us"] for r in runs]) / 1000,
           "p99": median([r["p99_us"] for r in runs]) / 1000,
           "errors": sum(r["errors"] for r in runs),
           "requests": sum(r["requests"] for r in runs),
           "runs": [round(r["rate"]) for r in runs], "conns": conns, "load": load}
    log("%-22s %8.0f/s  p50 %6.2f ms  p99 %7.2f ms  errors %d  runs %s  c%d  load %.1f%s"
        % (name, res["rate"], res["p50"], res["p99"], res["errors"], res["runs"], conns, load,
           "" if res["cpu"] is None else "  HAProxy %.0f%% of a core" % res["cpu"]))
    return res


def measure_argon2(args, ops, mem, threads):
    if skipped("argon2id hash"):
        return None
    exe = os.path.join(BUILD, "bench", "argon2_rate")
    rates = []
    for _ in range(args.runs):
        out = subprocess.run([exe, str(ops), str(mem), str(threads), str(args.seconds)],
                             capture_output=True, text=True, check=True).stdout
        rates.append(float(re.search(r"rate=([\d.]+)", out).group(1)))
    res = {"rate": median(rates), "runs": [round(r, 1) for r in rates]}
    log("%-22s %8.1f/s  runs %s (t=%d, m=%d KiB, %d threads)"
        % ("argon2id hash", res["rate"], res["runs"], ops, mem // 1024, threads))
    return res


def copy_routines(sock):
    """Creates schema.sql's reserve_line in shop_bench as the live one is (its
    unqualified table names then name shop_bench's copies)."""
    rows = sql(sock, "SHOW CREATE PROCEDURE shop_product.reserve_line")
    if not rows or len(rows[0]) < 3:
        raise RuntimeError("shop_product.reserve_line is missing (schema.sql not loaded?)")
    create = rows[0][2].replace("\\n", "\n").replace("\\t", "\t")
    text = "USE shop_bench;\nDELIMITER //\n%s //\nDELIMITER ;\n" % create
    subprocess.run(["mariadb", "-uroot", "--socket=" + sock], input=text, text=True,
                   check=True, capture_output=True)


def measure_sysbench(args, name, db_port, pw, rows, threads, shape="shop"):
    if skipped(name):
        return None

    def once(secs):
        cmd = ["sysbench", os.path.join(HERE, "order_tx.lua"), "--shape=" + shape,
               "--db-driver=mysql",
               "--mysql-host=127.0.0.1", "--mysql-port=%d" % db_port,
               "--mysql-user=shop_bench", "--mysql-password=" + pw,
               "--mysql-db=shop_bench", "--threads=%d" % threads,
               "--time=%d" % secs, "--percentile=99", "--rows=%d" % rows,
               "--run-id=%d" % random.randrange(1, 90000), "run"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                             cwd=HERE).stdout
        events = int(re.search(r"total number of events:\s*(\d+)", out).group(1))
        total = float(re.search(r"total time:\s*([\d.]+)s", out).group(1))
        p99 = float(re.search(r"99th percentile:\s*([\d.]+)", out).group(1))
        errs = int(re.search(r"ignored errors:\s*(\d+)", out).group(1))
        return events / total, p99, errs
    once(1)
    runs = [once(args.seconds) for _ in range(args.runs)]
    res = {"rate": median([r[0] for r in runs]), "p99": median([r[1] for r in runs]),
           "retries": sum(r[2] for r in runs), "runs": [round(r[0]) for r in runs]}
    log("%-22s %8.0f/s  p99 %7.2f ms  deadlock retries %d  runs %s (%d threads)"
        % (name, res["rate"], res["p99"], res["retries"], res["runs"], threads))
    return res


# ------------------------------------------------------------------ report

ROWS = [
    # key, row, what, ceiling key, target text
    ("static", "static", "static file, HAProxy -> lighttpd", None, ""),
    ("hello", "hello", "FastCGI no-op, HAProxy -> lighttpd", "static", ""),
    ("get_cached", "product get, cache on", "GET /products/{id}, 100 hot ids, anonymous", "hello", ""),
    ("get_direct", "product get, one host", "GET /products/{id}, random of 1M, straight to "
     "host 1's lighttpd (no HAProxy)", "hello", ""),
    ("get", "product get, cache off", "GET /products/{id}, random of 1M, no-cache", "get_direct",
     ">= 0.8 of one host; p99 < 10 ms; HAProxy < 40% of a core"),
    ("list_first", "product list, first", "GET /products?limit=20, no-cache", "hello", ""),
    ("list_deep", "product list, deep", "GET /products?limit=20&cursor=(row ~999,980), no-cache", "hello",
     ">= first page / 1.2"),
    ("search_rare", "product search, rare word",
     "GET /products?limit=20&q=%s (%d of the 1M names), no-cache" % (RARE_WORD, RARE_COUNT),
     "list_first", ">= 0.5 of the first list page"),
    ("login", "login", "POST /auth/login", "argon2", ""),
    ("token", "token check", "GET /products/{id} + Bearer (ES256 verify)", "get", ""),
    ("order_spread", "order spread", "POST /orders, 1 line, 10,000 products", "tx_min_spread",
     ">= 0.4 of the one-transaction ceiling"),
    ("order_hot", "order hot", "POST /orders, 1 line, one product", "tx_min_hot",
     ">= 0.4 of the one-transaction ceiling"),
]
CEILING_NAMES = {"static": "static", "hello": "hello", "get": "product get (cache off)",
                 "get_direct": "product get, one host",
                 "argon2": "Argon2id alone", "tx_spread": "order DB tx, 10,000 rows",
                 "tx_hot": "order DB tx, one row", "list_first": "product list, first",
                 "tx_min_spread": "one-transaction order, 10,000 rows",
                 "tx_min_hot": "one-transaction order, one row"}


def target_met(key, res):
    r = res.get(key)
    if not r or r.get("rate") is None:
        return None
    if key == "get" and res.get("get_direct"):
        return (r["rate"] >= 0.8 * res["get_direct"]["rate"] and r["p99"] < 10
                and r.get("cpu") is not None and r["cpu"] < 40)
    if key == "list_deep" and res.get("list_first"):
        return r["rate"] >= res["list_first"]["rate"] / 1.2
    if key == "search_rare" and res.get("list_first"):
        return r["rate"] >= 0.5 * res["list_first"]["rate"]
    if key == "order_spread" and res.get("tx_min_spread"):
        return r["rate"] >= 0.4 * res["tx_min_spread"]["rate"]
    if key == "order_hot" and res.get("tx_min_hot"):
        return r["rate"] >= 0.4 * res["tx_min_hot"]["rate"]
    return None


def fmt_rate(x):
    return "—" if x is None else ("%.0f" % x if x >= 100 else "%.1f" % x)


def render_table(res):
    lines = ["| row | what | req/s | ceiling | ceiling req/s | ratio | p50 ms | p99 ms | errors | conns | load | HAProxy CPU % | target |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for key, row, what, ceil, target in ROWS:
        r = res.get(key)
        if not r:
            lines.append("| %s | %s | not measured | | | | | | | | | | %s |" % (row, what, target))
            continue
        c = res.get(ceil) if ceil else None
        ratio = "%.2f" % (r["rate"] / c["rate"]) if c and c.get("rate") else "—"
        met = target_met(key, res)
        tgt = target + ("" if met is None else (" **met**" if met else " **missed**"))
        cpu = "—" if r.get("cpu") is None else "%.0f" % r["cpu"]
        lines.append("| %s | %s | %s | %s | %s | %s | %.2f | %.2f | %d | %d | %.1f | %s | %s |" % (
            row, what, fmt_rate(r["rate"]), CEILING_NAMES.get(ceil, "—") if ceil else "—",
            fmt_rate(c["rate"]) if c else "—", ratio, r["p50"], r["p99"], r["errors"],
            r["conns"], r["load"], cpu, tgt))
    lines.append("")
    lines.append("| ceiling | how | rate/s | p99 ms | runs |")
    lines.append("|---|---|---:|---:|---|")
    if res.get("argon2"):
        a = res["argon2"]
        lines.append("| Argon2id alone | bench/argon2_rate, %s | %s | — | %s |"
                     % (a["how"], fmt_rate(a["rate"]), a["runs"]))
    for k in ("tx_min_spread", "tx_min_hot", "tx_spread", "tx_hot"):
        if res.get(k):
            t = res[k]
            lines.append("| %s | sysbench bench/order_tx.lua --shape=%s, %d threads, %d deadlock retries | %s | %.2f | %s |"
                         % (CEILING_NAMES[k], "min" if "min" in k else "shop", t["threads"],
                            t["retries"], fmt_rate(t["rate"]), t["p99"], t["runs"]))
    if res.get("memory"):
        lines.append("")
        lines.append("| worker | processes | RSS median MiB | RSS max MiB |")
        lines.append("|---|---:|---:|---:|")
        for name, rss in sorted(res["memory"].items()):
            lines.append("| %s | %d | %.1f | %.1f |" % (name, len(rss), median(rss) / 1024,
                                                      max(rss) / 1024))
    return "\n".join(lines)


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
        cpu = m.group(1) if m else cpu
    with open("/proc/meminfo") as f:
        mem = int(re.search(r"MemTotal:\s*(\d+)", f.read()).group(1)) // 1024 // 1024

    def ver(cmd, pat=r"(\d+\.\d+[\w.\-]*)"):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True)
            m = re.search(pat, p.stdout + p.stderr)
            return m.group(1) if m else "?"
        except OSError:
            return "?"
    deb = open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else "?"
    return ("%s, %d CPUs, %d GiB RAM; Linux %s, Debian %s; HAProxy %s, lighttpd %s, "
            "MariaDB %s, wrk %s, sysbench %s" % (
                cpu, os.cpu_count(), mem, platform.release(), deb,
                ver(["haproxy", "-v"]), ver(["lighttpd", "-v"], r"lighttpd/([\d.]+)"),
                ver(["mariadbd", "--version"], r"Ver ([\d.]+-MariaDB)"),
                ver(["wrk", "-v"], r"wrk \S*?(\d+\.\d+\.\d+)"), ver(["sysbench", "--version"])))


BEGIN, END = "<!-- bench:begin (generated by bench/run; edits inside are lost) -->", "<!-- bench:end -->"


def write_results(args, res, table, notes):
    path = os.path.join(HERE, "RESULTS.md")
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    gen = "\n".join([
        BEGIN,
        "Latest run: %s, commit %s." % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), commit),
        "",
        "Command: `make bench` (= `bench/run %s`)." % " ".join(args.argv),
        "",
        "Machine: %s. Load average before the run: %s." % (machine(), res.get("loadavg", "?")),
        "",
        "Each rate is the median of %d runs of %d s (wrk -t2 -c%d --latency, after a 1 s warm-up); "
        "p50/p99 are the medians of the runs' percentiles; errors are non-2xx responses and "
        "socket errors over all runs. Load generator, HAProxy, 3 lighttpd hosts, the "
        "workers and 3 Galera nodes share the same CPUs." % (args.runs, args.seconds, args.connections),
        "",
        table,
        "",
    ] + (["Run notes:", ""] + ["- " + n for n in notes] + [""] if notes else []) + [END])
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + gen + old[old.index(END) + len(END):]
    else:
        new = "# Benchmark results (bench/run)\n\n" + gen + "\n"
    with open(path, "w") as f:
        f.write(new)
    log("wrote " + path)


# ------------------------------------------------------------------ main

def build_helpers():
    os.makedirs(os.path.join(BUILD, "bench"), exist_ok=True)
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-o", os.path.join(BUILD, "hello.fcgi"),
                    os.path.join(HERE, "hello.c"), "-lfcgi"], check=True)
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-pthread", "-o",
                    os.path.join(BUILD, "bench", "argon2_rate"),
                    os.path.join(HERE, "argon2_rate.c"), "-lsodium"], check=True)


def bench(args, env, state, res, notes):
    st = load_env(os.path.join(state, "stack.env"))
    url = st["SHOP_URL"]
    sock = st["SHOP_ROOT_SOCKETS"].split()[0]
    tmp = os.path.join(state, "bench")
    os.makedirs(tmp, exist_ok=True)

    # --- ceilings' front: the edge if it routes /hello and /static/, else our HAProxy
    hosts = [host_port(os.path.join(d, "lighttpd.conf")) for d in host_dirs(state)]
    internal = [internal_port(os.path.join(d, "lighttpd.conf")) for d in host_dirs(state)]
    if call(url, "GET", "/hello")[0] == 200 and call(url, "GET", "/static/hello.txt")[0] == 200:
        front = url
        notes.append("static and hello went through the public edge")
    else:
        front = start_ceiling_haproxy(tmp, internal, shoplib.spare_port(env, 0))
        notes.append("static and hello went through a bench HAProxy (edge-like request-id and "
                     "stick-table work) in front of the stack's %d lighttpd hosts: the edge does "
                     "not route /hello or /static/" % len(hosts))
    hello_ok = call(front, "GET", "/hello")[0] == 200

    # --- users and products
    log("seeding users")
    admin = login(url, env["SHOP_ADMIN_EMAIL"], env["SHOP_ADMIN_PASSWORD"])
    seller_id, _ = make_user(url, admin, "seller")
    users = [make_user(url, admin)[1] for _ in range(4)]
    t0 = time.time()
    first, last = seed_products(sock, args.products, seller_id)
    log("seeded %d products (ids %d..%d) in %.0f s" % (args.products, first, last, time.time() - t0))
    notes.append("seeded %d products by SQL in %.0f s (%d rows per INSERT ... SELECT FROM seq_*)"
                 % (args.products, time.time() - t0, CHUNK))
    ops, mem = argon2_params(sock, users[0])

    pw = secrets.token_hex(12)
    with open(os.path.join(HERE, "schema_bench.sql")) as f:
        sql(sock, f.read(), {"bench_pw": pw})
    copy_routines(sock)

    def write_tokens():
        path = os.path.join(tmp, "tokens")
        with open(path, "w") as f:
            f.write("\n".join(wait_login(url, u) for u in users) + "\n")
        return path

    # --- checks: every scenario answers what it should before wrk hammers it
    tokens = write_tokens()
    tok = open(tokens).read().split()[0]
    deep_after = last - 20 - 1
    cursor = shoplib.product_cursor(deep_after)
    s, _, body = call(url, "GET", "/products?limit=20&cursor=" + cursor)
    if s != 200 or not body["items"] or body["items"][0]["id"] != deep_after + 1:
        raise RuntimeError("deep cursor not accepted: %d %r" % (s, body))
    s, _, body = call(url, "GET", "/products?limit=20&q=" + RARE_WORD)
    if s != 200 or len(body["items"]) != RARE_COUNT or body["next_cursor"] is not None:
        raise RuntimeError("search for %s: %d %r" % (RARE_WORD, s, body))
    call(url, "GET", "/products/%d" % first)
    s, h, _ = call(url, "GET", "/products/%d" % first)
    cache_seen = "age" in h
    notes.append("HAProxy cache %s a repeated anonymous GET /products/{id} (Age header)"
                 % ("answered" if cache_seen else "did NOT answer"))
    s2, h2, _ = call(url, "GET", "/products/%d" % first, headers={"Cache-Control": "no-cache"})
    if "age" in h2:
        notes.append("a request with Cache-Control: no-cache was still served from the cache")
    for what, (s, _, b) in {
        "product get": call(url, "GET", "/products/%d" % first),
        "token check": call(url, "GET", "/products/%d" % first, token=tok),
        "order": call(url, "POST", "/orders", {"items": [{"product_id": first, "quantity": 1}]},
                      token=tok),
    }.items():
        if s not in (200, 201):
            raise RuntimeError("%s answers %d %r" % (what, s, b))

    # --- measurements; "HAProxy CPU" is the HAProxy each row's requests cross
    edge_pid = haproxy_pid(state)
    front_pid = edge_pid if front == url else (started[-1].pid if started else None)
    res["static"] = measure_wrk(args, "static", front + "/static/hello.txt", "plain.lua",
                                cpu_pid=front_pid)
    if hello_ok:
        res["hello"] = measure_wrk(args, "hello", front + "/hello", "plain.lua",
                                   cpu_pid=front_pid)
    else:
        notes.append("no /hello pool (build/hello.fcgi missing when the stack started?)")
    res["get_cached"] = measure_wrk(args, "product get cache on", url, "product_get.lua",
                                    {"BENCH_ID_LO": str(first), "BENCH_ID_HI": str(first + 99)},
                                    cpu_pid=edge_pid)
    # The same uncached GET straight to one host (its lighttpd and product
    # pool, reading from its own Galera node), then through the edge.
    uncached = {"BENCH_ID_LO": str(first), "BENCH_ID_HI": str(last), "BENCH_NOCACHE": "1"}
    res["get_direct"] = measure_wrk(args, "product get one host", "http://127.0.0.1:%d" % hosts[0],
                                    "product_get.lua", uncached, cpu_pid=edge_pid)
    res["get"] = measure_wrk(args, "product get cache off", url, "product_get.lua", uncached,
                             cpu_pid=edge_pid)
    res["list_first"] = measure_wrk(args, "list first page", url, "product_list.lua",
                                    {"BENCH_NOCACHE": "1"}, cpu_pid=edge_pid)
    res["list_deep"] = measure_wrk(args, "list deep page", url, "product_list.lua",
                                   {"BENCH_CURSOR": cursor, "BENCH_NOCACHE": "1"},
                                   cpu_pid=edge_pid)
    res["search_rare"] = measure_wrk(args, "search rare word", url, "product_list.lua",
                                     {"BENCH_Q": RARE_WORD, "BENCH_NOCACHE": "1"}, cpu_pid=edge_pid)
    tokens = write_tokens()
    res["token"] = measure_wrk(args, "token check", url, "product_get.lua",
                               {"BENCH_ID_LO": str(first), "BENCH_ID_HI": str(last),
                                "BENCH_TOKENS": tokens}, cpu_pid=edge_pid)
    # Logins at fewer connections than auth workers: a deeper queue only adds
    # latency, and a health check queued behind more than `timeout check` of
    # Argon2 work marks every auth server down (503s; seen at -c32).
    auth_workers = len(worker_procs(set(pool_pids(state))).get("auth.fcgi", [])) or 9
    res["login"] = measure_wrk(args, "login", url, "login.lua",
                               {"BENCH_EMAIL": users[0], "BENCH_PASSWORD": PASSWORD},
                               conns=min(args.connections, max(2, auth_workers - 1)),
                               cpu_pid=edge_pid)
    wait_login(url, users[0])
    threads = os.cpu_count() or 2
    res["argon2"] = measure_argon2(args, ops, mem, threads)
    if res["argon2"]:
        res["argon2"]["how"] = "t=%d, m=%d KiB, %d threads" % (ops, mem // 1024, threads)

    # Orders: the ceiling runs as many DB clients as there are order workers
    # (each worker has one connection and one order in flight).
    order_workers = len(worker_procs(set(pool_pids(state))).get("order.fcgi", [])) or 9
    tokens = write_tokens()
    db_port = int(st["SHOP_DB_PORT"])
    res["order_spread"] = measure_wrk(args, "order spread", url, "order.lua",
                                      {"BENCH_ID_LO": str(first),
                                       "BENCH_ID_HI": str(first + SPREAD - 1),
                                       "BENCH_TOKENS": tokens}, cpu_pid=edge_pid)
    res["order_hot"] = measure_wrk(args, "order hot", url, "order.lua",
                                   {"BENCH_ID_LO": str(first + SPREAD),
                                    "BENCH_ID_HI": str(first + SPREAD),
                                    "BENCH_TOKENS": tokens}, cpu_pid=edge_pid)
    res["tx_spread"] = measure_sysbench(args, "order tx spread", db_port, pw, SPREAD, order_workers)
    res["tx_hot"] = measure_sysbench(args, "order tx hot", db_port, pw, 1, order_workers)
    res["tx_min_spread"] = measure_sysbench(args, "order 1-tx spread", db_port, pw, SPREAD,
                                            order_workers, "min")
    res["tx_min_hot"] = measure_sysbench(args, "order 1-tx hot", db_port, pw, 1, order_workers, "min")
    for k in ("tx_spread", "tx_hot", "tx_min_spread", "tx_min_hot"):
        if res[k]:
            res[k]["threads"] = order_workers

    res["memory"] = worker_procs(set(pool_pids(state)))
    n_orders = sql(sock, "SELECT COUNT(*) FROM shop_order.orders WHERE status = 'confirmed'")[0][0]
    notes.append("confirmed orders in the shop after the run: %s" % n_orders)
    sql(sock, "DROP DATABASE shop_bench; DROP USER shop_bench@'%'")
    for t in TRANSIENT:
        notes.append("a setup login failed once and was retried: " + t)


def main():
    ap = argparse.ArgumentParser(description="shop benchmark (issue 8)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--products", type=int, default=1000000)
    ap.add_argument("--quiet-load", type=float, default=1.5,
                    help="before each row wait for the 1-min load average to drop below this")
    ap.add_argument("--quiet-wait", type=int, default=10, help="... for at most this many seconds")
    ap.add_argument("--only", default="",
                    help="comma-separated: measure only the rows whose log name contains one "
                         "(e.g. 'list first,search'); for a quick look, not for RESULTS.md")
    ap.add_argument("--keep", action="store_true", help="leave the stack running")
    ap.add_argument("--no-results", action="store_true", help="do not rewrite bench/RESULTS.md")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    if args.products <= SPREAD:
        # The order rows use products 1..SPREAD and the hot one after them.
        ap.error("--products must be over %d (the order rows' spread and hot products)" % SPREAD)
    ONLY.extend(o for o in args.only.split(",") if o)

    for b in ("auth", "product", "order"):
        if not os.access(os.path.join(BUILD, b + ".fcgi"), os.X_OK):
            sys.exit("bench: build/%s.fcgi missing: run `make all` first" % b)
    build_helpers()

    # SIGTERM/SIGHUP unwind like Ctrl-C, so the finally below stops the stack.
    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    settings = dict(SHOP_RATE_LIMIT="1000000000", SHOP_LOGIN_RATE_LIMIT="1000000000",
                    SHOP_ADMIN_EMAIL="admin@bench.test",
                    SHOP_ADMIN_PASSWORD="bench-admin-" + secrets.token_hex(8),
                    SHOP_LOG_LEVEL=os.environ.get("SHOP_LOG_LEVEL", "warn"),
                    # The installed nodes' size (README), not the dev stack's
                    # 64M: the million seeded products are read from memory,
                    # as on a deployment.
                    SHOP_DB_BUFFER_POOL=os.environ.get("SHOP_DB_BUFFER_POOL", "512M"))
    res, notes = {"loadavg": " ".join(open("/proc/loadavg").read().split()[:3])}, []
    notes.append("each Galera node ran with innodb_buffer_pool_size %s (SHOP_DB_BUFFER_POOL); "
                 "HAProxy with %s thread(s) (SHOP_HAPROXY_THREADS)"
                 % (settings["SHOP_DB_BUFFER_POOL"], os.environ.get("SHOP_HAPROXY_THREADS", "1")))
    ok = False
    env = state = lock = None
    t_start = time.time()
    try:
        log("starting the stack")
        # One retry on another block and state dir, whatever failed.
        env, state, lock, up = shoplib.start_stack(settings, prefix="shop-bench-", tries=2,
                                                   retry_any=True, quiet=True, log=log)
        if not up:
            raise RuntimeError("scripts/stack up failed twice")
        bench(args, env, state, res, notes)
        ok = True
    except KeyboardInterrupt:
        log("interrupted")
    except Exception as e:          # still print what was measured
        log("FAILED: %s" % e)
    finally:
        stop_started()
        if env is None:
            pass
        elif not args.keep:
            shoplib.stop_stack(env, state, lock, keep_state=not ok, quiet=True)
            if not ok:
                log("state and logs kept in " + state)
        else:
            log("stack left running; state in " + state)
            lock.close()
    log("total %.0f s" % (time.time() - t_start))
    table = render_table(res)
    print()
    print(table)
    for n in notes:
        print("- " + n)
    if ok and not args.no_results:
        write_results(args, res, table, notes)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
