"""test_openapi.py: api/openapi.yaml and the running services agree on which
paths exist and which methods each accepts.  Every documented path is asked
with a method no route has (OPTIONS): the route table answers 405 and its
Allow header must list exactly the documented methods."""
import json
import os
import subprocess

import shop
from shop import assert_problem, call

METHODS = {"get", "post", "put", "patch", "delete"}


def _spec():
    # Debian's python3-yaml (scripts/deps), whatever python runs the tests.
    out = subprocess.run(
        ["/usr/bin/python3", "-c",
         "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
         os.path.join(shop.REPO, "api", "openapi.yaml")],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_every_documented_path_has_exactly_the_documented_methods():
    spec = _spec()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    assert len(paths) >= 16, sorted(paths)
    for path, item in paths.items():
        url = path.replace("{id}", "1")
        documented = {m.upper() for m in item if m in METHODS}
        r = call("OPTIONS", url)
        assert_problem(r, 405, "method_not_allowed")
        allow = {m.strip() for m in r.header("allow").split(",")}
        assert allow == documented, (path, sorted(allow), sorted(documented))


def test_internal_paths_are_not_documented_as_public():
    assert not [p for p in _spec()["paths"] if p.startswith("/internal")]
