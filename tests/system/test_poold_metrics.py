"""poold's /metrics read by the real tools: `promtool check metrics` finds
nothing to say, and a real Prometheus (Debian's /usr/bin/prometheus) scrapes
it every second on loopback, with a metrics-role token, and answers queries
with poold's values.

Issue 3, Tests section. Run as root: /usr/bin/python3 -m pytest tests/system/test_poold_metrics.py
"""

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import uuid

import pytest

import wpdaemons
from conftest import execute, metrics_text, session_run, wait_pool

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

METRICS_TOKEN = "prom-" + uuid.uuid4().hex
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
EXEC_TOKEN = "exec-" + uuid.uuid4().hex


def traffic(c):
    """Some of everything, so that every family has samples."""
    a = "m-" + uuid.uuid4().hex[:8]
    assert execute(c, "python", "print(1)", a, [("", "1")]).status == 200
    assert execute(c, "python", "print(2)", a, [("", "1")]).status == 200
    assert execute(c, "python", "raise SystemExit(1)", a, [("", "1")]).status == 200
    assert session_run(c, a, "print(1)", [("", "1")]).status == 200
    assert c.get("/v1/nope").status == 404
    assert c.post("/execute", b"{").status == 400


def test_promtool_check_metrics(make_poold):
    if not os.access(PROMTOOL, os.X_OK):
        pytest.skip("PROMTOOL MISSING (%s): apt-get install prometheus" % PROMTOOL)
    pd = make_poold(pools={"python": {"language": "python", "warm": 2, "max": 8, "idle_timeout": "5m"},
                           "javascript": {"language": "javascript", "warm": 1, "max": 4, "idle_timeout": "5m"}})
    c = pd.client()
    traffic(c)
    wait_pool(c, "python", lambda p: p["ready"] == 2, 10)
    text = metrics_text(c)
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0 and out.strip() == "", "promtool check metrics (exit %d):\n%s\n--- metrics ---\n%s" % (
        r.returncode, out, text[:4000])
    # families the issue asks for, with conventional names and units
    for fam, typ in [("warmpool_pool_ready_slots", "gauge"), ("warmpool_pool_leased_slots", "gauge"),
                     ("warmpool_pool_max_slots", "gauge"), ("warmpool_pool_queued_requests", "gauge"),
                     ("warmpool_lease_wait_seconds", "histogram"),
                     ("warmpool_execution_duration_seconds", "histogram"),
                     ("warmpool_slot_create_failures_total", "counter"), ("warmpool_node_up", "gauge"),
                     ("warmpool_http_requests_total", "counter")]:
        assert "# TYPE %s %s" % (fam, typ) in text, "no %s %s in /metrics" % (typ, fam)
    assert 'warmpool_execution_duration_seconds_count{language="python",verdict="runtime_error"} 1' in text, text
    assert 'warmpool_http_requests_total{route="/execute",status="400"} 1' in text, text
    # a route label is a pattern, never a raw path (bounded cardinality)
    assert "/v1/nope" not in text and "m-" not in text


def prom_query(port, q):
    url = "/api/v1/query?query=" + urllib.parse.quote(q)
    try:
        r = wpdaemons.TCPClient("http://127.0.0.1:%d" % port, timeout=5).get(url)
    except OSError:
        return None  # not listening yet
    if r.status != 200 or not isinstance(r.body, dict) or r.body.get("status") != "success":
        return None
    return r.body["data"]["result"]


def test_prometheus_scrapes_poold(make_poold):
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip("PROMETHEUS MISSING (%s): apt-get install prometheus" % PROMETHEUS)
    pd = make_poold(tokens=[(METRICS_TOKEN, "metrics", "prometheus"), (ADMIN_TOKEN, "admin", "ops"),
                            (EXEC_TOKEN, "executor", "backend")])
    admin = pd.client(ADMIN_TOKEN)
    traffic(pd.client(EXEC_TOKEN))
    wait_pool(admin, "python", lambda p: p["ready"] == 2, 10)
    tmp = wpdaemons.make_tmpdir("wp-prom-")
    port = wpdaemons.free_port()
    conf = os.path.join(tmp, "prometheus.yml")
    with open(conf, "w") as f:
        f.write(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: warmpool\n"
            "    metrics_path: /metrics\n"
            "    authorization:\n      type: Bearer\n      credentials: %s\n"
            "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % (METRICS_TOKEN, pd.port)
        )
    log = open(os.path.join(tmp, "prometheus.log"), "wb")
    proc = subprocess.Popen(
        [PROMETHEUS, "--config.file=" + conf, "--storage.tsdb.path=" + os.path.join(tmp, "data"),
         "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=tmp, preexec_fn=wpdaemons._die_with_parent)
    try:
        def value(q):
            res = prom_query(port, q)
            return float(res[0]["value"][1]) if res else None

        got = wpdaemons.wait_for(lambda: proc.poll() is None and value('up{job="warmpool"}') == 1, 20, 0.2)
        assert got, "Prometheus does not scrape poold: up=%r, targets %r\n%s" % (
            value('up{job="warmpool"}'), prom_query(port, "up"), open(os.path.join(tmp, "prometheus.log")).read()[-3000:])
        q = 'warmpool_pool_ready_slots{pool="python",language="python"}'
        assert wpdaemons.wait_for(lambda: value(q) == 2, 10, 0.2), "%s = %r, want 2" % (q, value(q))
        # a change in poold shows in Prometheus at the next scrapes
        r = admin.patch("/v1/pools/python", {"warm": 3})
        assert r.status == 200, r
        assert wpdaemons.wait_for(lambda: value(q) == 3, 10, 0.2), "%s = %r after warm 3, want 3" % (q, value(q))
        assert value('warmpool_pool_warm_slots{pool="python"}') == 3
        assert value('warmpool_node_up{node="local"}') == 1
        assert value('sum(warmpool_execution_duration_seconds_count{language="python"})') == 4
        assert value('warmpool_pool_leased_slots{pool="python"}') == 1
        # the scrapes were authenticated with the metrics token: none refused
        refused = value('sum(warmpool_http_requests_total{route="/metrics",status=~"4.."})')
        assert refused in (None, 0), refused
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
