"""test_docs.py: the repository stands on its own and its docs stay true.

- docs/API.md describes every operation of api/openapi.yaml under a heading
  "### METHOD /path" whose "Statuses:" line lists exactly the operation's
  documented statuses, and its error table lists exactly the spec's error
  codes, each with the status the spec gives it;
- no tracked file points outside the repository (a sibling directory of the
  clone, or an absolute path of the machine it was written on) or names a
  document or repository file that does not exist;
- the README's curl walk-through ("Using it with curl") runs as written against
  the test stack (only its URL and the admin's credentials swapped) and does
  what it says: the order is placed, then cancelled, and its stock comes back."""
import json
import os
import re
import subprocess
import tempfile

import shop
from shop import call

REPO = shop.REPO
METHODS = ("get", "post", "put", "patch", "delete")


def _read(rel):
    with open(os.path.join(REPO, rel), encoding="utf-8") as f:
        return f.read()


def _spec():
    # Debian's python3-yaml (scripts/deps), whatever python runs the tests.
    out = subprocess.run(
        ["/usr/bin/python3", "-c",
         "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
         os.path.join(REPO, "api", "openapi.yaml")],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def _sections(md):
    """{heading text: body} for every '### ' heading of a markdown text."""
    parts = re.split(r"^### (.+)$", md, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_api_md_describes_every_operation_with_its_statuses():
    spec, md = _spec(), _read("docs/API.md")
    sections = _sections(md)
    missing, wrong = [], []
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            op = "%s %s" % (method.upper(), path)
            found = [body for head, body in sections.items()
                     if re.search(r"(^|[ ,])%s($|[ ,])" % re.escape(op), head)]
            if not found:
                missing.append(op)
                continue
            m = re.search(r"^Statuses: ([0-9, ]+)\.$", found[0], flags=re.M)
            documented = set(m.group(1).replace(" ", "").split(",")) if m else set()
            want = set(item[method]["responses"])
            if documented != want:
                wrong.append((op, sorted(documented), sorted(want)))
    assert not missing, ("operations of openapi.yaml with no '### METHOD /path' "
                         "section in docs/API.md", missing)
    assert not wrong, ("docs/API.md 'Statuses:' differ from openapi.yaml "
                       "(op, API.md, openapi.yaml)", wrong)
    # And nothing described that the spec does not have.
    ops = {"%s %s" % (m.upper(), p) for p, it in spec["paths"].items() for m in METHODS if m in it}
    extra = [head for head in sections
             if re.match(r"(GET|POST|PUT|PATCH|DELETE) /", head)
             and not all(o.strip() in ops for o in head.split(","))]
    assert not extra, ("docs/API.md describes operations openapi.yaml lacks", extra)


def test_api_md_lists_every_error_code_with_its_status():
    spec, md = _spec(), _read("docs/API.md")
    problem = spec["components"]["schemas"]["Problem"]
    codes = set(problem["properties"]["code"]["enum"])
    # The spec's "Codes and their statuses: 400 `a`, `b`; 401 `c` ..." line.
    spec_status = {}
    for status, names in re.findall(r"(\d{3}) ((?:`\w+`(?:,\s*|;|\.|\s)*)+)",
                                    " ".join(problem["description"].split())):
        for name in re.findall(r"`(\w+)`", names):
            spec_status[name] = status
    assert set(spec_status) == codes, ("Problem description vs enum", set(spec_status) ^ codes)
    table = dict(re.findall(r"^\| `(\w+)` \| (\d{3}) \|", md, flags=re.M))
    assert set(table) == codes, ("docs/API.md error table vs openapi.yaml codes: "
                                 "missing %s, extra %s" % (sorted(codes - set(table)),
                                                           sorted(set(table) - codes)))
    differ = {c: (table[c], spec_status[c]) for c in codes if table[c] != spec_status[c]}
    assert not differ, ("error code statuses differ (API.md, openapi.yaml)", differ)


# Files a reference may point at although they are not in the repository:
# they are made at run time or by the install.
def _tracked():
    out = subprocess.run(["git", "-C", REPO, "ls-files", "-z"], check=True,
                         capture_output=True, text=True).stdout
    return [f for f in out.split("\0") if f]


REF = re.compile(r"(?<![\w./$@{<-])((?:\.\./)*(?:tests|docs|scripts|cgi|lib|galera|haproxy|"
                 r"lighttpd|monitoring|bench|api)/[A-Za-z0-9_./-]*[A-Za-z0-9_-]"
                 r"\.(?:c|h|py|md|sql|ya?ml|in|cfg|json|sh|txt))\b")
MD_NAME = re.compile(r"(?<![\w./-])([A-Za-z0-9_-]+\.md)\b")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


# Paths outside any clone that notes were once written against; assembled so
# that this file does not contain them itself.
OUTSIDE = ("../" + "shared", "/" + "work/")


def test_no_file_references_outside_the_repo_or_a_missing_file():
    files = _tracked()
    names = {os.path.basename(f) for f in files}
    bad = []
    for f in files:
        try:
            text = _read(f)
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
        for needle in OUTSIDE:
            if needle in text:
                bad.append((f, needle))
        here = os.path.dirname(f)
        for m in REF.finditer(text):
            p = m.group(1)
            if not (os.path.exists(os.path.join(REPO, p))
                    or os.path.exists(os.path.join(REPO, here, p))):
                bad.append((f, p))
        for m in MD_NAME.finditer(text):
            if m.group(1) not in names:
                bad.append((f, m.group(1)))
        if f.endswith(".md"):
            for m in LINK.finditer(text):
                target = m.group(1)
                if re.match(r"[a-z]+:", target):
                    continue        # http:, mailto:
                if not os.path.exists(os.path.join(REPO, here, target)):
                    bad.append((f, target))
    assert not bad, ("references to files that are not in the repository", bad)


def _walkthrough():
    readme = _read("README.md")
    m = re.search(r"^## Using it with curl\n.*?^```sh\n(.*?)^```", readme, flags=re.M | re.S)
    assert m, "README.md has no ```sh block under '## Using it with curl'"
    return m.group(1)


def test_readme_curl_walkthrough_runs_as_written():
    script = _walkthrough()
    # The README is written for `make up`; the test stack has its own port and
    # admin.  Each swap must hit, or the README changed under the test.
    swaps = [("URL=http://127.0.0.1:8080", "URL=" + shop.STACK["SHOP_URL"]),
             ('\\"email\\":\\"admin@shop.local\\"', '\\"email\\":\\"%s\\"' % shop.STACK["SHOP_ADMIN_EMAIL"]),
]
    for old, new in swaps:
        assert script.count(old) == 1, ("README walk-through no longer contains", old)
        script = script.replace(old, new)
    script += '\nprintf "\\nWALKTHROUGH ANN=%s P=%s O=%s\\n" "$ANN" "$P" "$O"\n'
    # Run where `.state` is the test stack's state directory, as in a clone
    # after `make up`: the admin's password is read from its secrets.
    with tempfile.TemporaryDirectory() as cwd:
        os.symlink(shop.STACK["SHOP_STATE_DIR"], os.path.join(cwd, ".state"))
        r = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True,
                           timeout=120, cwd=cwd)
    assert r.returncode == 0, ("walk-through failed", r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    m = re.search(r"^WALKTHROUGH ANN=(\d+) P=(\d+) O=(\d+)$", r.stdout, flags=re.M)
    assert m, ("walk-through did not yield ids", r.stdout[-2000:], r.stderr[-2000:])
    ann, product, order = (int(x) for x in m.groups())
    # What the walk-through says it did, seen through the API.
    admin = shop.admin_token()
    u = call("GET", "/auth/users/%d" % ann, token=admin)
    assert u.status == 200 and u.json["role"] == "seller", u
    p = call("GET", "/products/%d" % product, token=admin)
    assert p.status == 200, p
    assert p.json["price_cents"] == 1100 and p.json["seller_id"] == ann, p.json
    # Cancel gives the 2 mugs back (at once, or by the sweep if product was busy).
    shop.wait_for("the cancelled order's stock back", lambda: call(
        "GET", "/products/%d" % product, token=admin).json["stock"] == 10, timeout=20)
    o = call("GET", "/orders/%d" % order, token=admin)
    assert o.status == 200, o
    assert o.json["user_id"] == ann and o.json["status"] == "cancelled", o.json
    assert [(i["product_id"], i["quantity"], i["unit_price_cents"]) for i in o.json["items"]] \
        == [(product, 2, 1100)], o.json
    assert re.search(r'"status":\s*"confirmed"', r.stdout), \
        ("the order list did not show the order confirmed", r.stdout)


def test_make_targets_that_install_packages_build_in_a_second_make():
    """The README's `make up` on a fresh machine: the Makefile reads
    pkg-config when it is parsed, before `deps` has installed the headers,
    so a target that installs them must build through a second $(MAKE)
    (which parses again), never list a build target beside `deps`."""
    text = open(os.path.join(REPO, "Makefile")).read()
    bad = []
    for target, prereqs in re.findall(r"^([A-Za-z][\w-]*):([^=\n]*)$", text, re.M):
        words = prereqs.split()
        if "deps" in words and [w for w in words if w != "deps"]:
            bad.append("%s: %s" % (target, prereqs.strip()))
    assert not bad, bad
    rules = dict(re.findall(r"^([A-Za-z][\w-]*):[^=\n]*\n((?:\t.*\n)+)", text, re.M))
    for target in ("up", "check", "bench"):
        assert "$(MAKE)" in rules[target], (target, rules[target])
