#!/usr/bin/env python3
"""End-to-end latency and throughput of faasd: submit -> result over REST.

Starts `faasd frontend`, `faasd worker` (WORKERS of them) and `faasd observer` as
separate processes on the real Kafka and Keycloak of test/services/services.sh
(reads .state/services/services.env), or `faasd dev` with --dev. Submits JOBS jobs
of the echo-sh example with CONCURRENCY clients, reads every result (long-poll),
and prints numbers: client-side latency percentiles, throughput, and the
server-side timing breakdown (queue wait, prepare, run, total) from the results.

  bench/e2e_latency.py --faasd build/release/roles/faasd --jobs 200 --concurrency 8
  bench/e2e_latency.py --faasd build/release/roles/faasd --dev
"""
import argparse
import concurrent.futures as cf
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                if k.startswith("export "):
                    k = k[len("export "):]
                env[k] = v.strip("'\"")
    return env


def request(method, url, token=None, body=None, timeout=90):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def bare_repo(src, dest):
    work = dest + ".work"
    shutil.copytree(src, work)
    git = ["git", "-C", work, "-c", "user.name=bench", "-c", "user.email=bench@faasd.invalid"]
    subprocess.run(git + ["init", "-q", "-b", "main"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "bench"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", work, dest], check=True)
    return "file://" + dest


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faasd", default=os.path.join(ROOT, "build/release/roles/faasd"))
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--slots", type=int, default=2)
    ap.add_argument("--sandbox", default="bwrap")
    ap.add_argument("--delivery", default="at-least-once")
    ap.add_argument("--keep", action="store_true", help="keep the logs")
    ap.add_argument("--dev", action="store_true", help="use faasd dev (mock cluster) instead of real services")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="faasd-bench-")
    os.chmod(tmp, 0o711)  # sandboxed functions run as other uids and must reach their workspace
    procs = []
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        if a.dev:
            state = os.path.join(tmp, "state")
            procs.append(subprocess.Popen([a.faasd, "dev", "--state-dir", state, "--listen", f"127.0.0.1:{port}",
                                           "--min-workers", str(a.workers), "--max-workers", str(a.workers),
                                           "--slots", str(a.slots), "--sandbox", a.sandbox, "--log-level", "warn"],
                                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "dev.log"), "w")))
            repo = None
        else:
            env = load_env(os.path.join(ROOT, ".state/services/services.env"))
            prefix = f"bench{int(time.time())}."
            common = dict(os.environ,
                          FAASD_CREDENTIALS_KEYS="b1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                          FAASD_KAFKA_BROKERS=env["FAASD_TEST_KAFKA"], FAASD_TOPIC_PREFIX=prefix,
                          FAASD_TOPIC_REPLICATION="1", FAASD_TOPIC_PARTITIONS="6", FAASD_LOG_LEVEL="warn")
            log = lambda n: open(os.path.join(tmp, n + ".log"), "w")
            procs.append(subprocess.Popen([a.faasd, "frontend", "--listen", f"127.0.0.1:{port}",
                                           "--oidc-issuer", env["FAASD_TEST_OIDC_ISSUER"],
                                           "--oidc-audience", env["FAASD_TEST_OIDC_AUDIENCE"],
                                           "--allow-file-repos", "true", "--rate-limit", "0",
                                           "--max-unfinished", "100000"],
                                          env=common, stdout=subprocess.DEVNULL, stderr=log("frontend")))
            for i in range(a.workers):
                procs.append(subprocess.Popen([a.faasd, "worker", "--slots", str(a.slots), "--sandbox", a.sandbox,
                                               "--cache-dir", os.path.join(tmp, "cache"),
                                               "--jobs-dir", os.path.join(tmp, f"jobs{i}"),
                                               "--allowed-schemes", "file"],
                                              env=common, stdout=subprocess.DEVNULL, stderr=log(f"worker{i}")))
            procs.append(subprocess.Popen([a.faasd, "observer"], env=common, stdout=subprocess.DEVNULL,
                                          stderr=log("observer")))
            repo = bare_repo(os.path.join(ROOT, "examples/functions/echo-sh"), os.path.join(tmp, "echo-sh.git"))
            tok = urllib.parse.urlencode({"grant_type": "password", "client_id": "faas-cli",
                                          "username": "alice", "password": "alice-pw"}).encode()
            with urllib.request.urlopen(env["FAASD_TEST_OIDC_TOKEN_URL"], data=tok, timeout=60) as r:
                token = json.loads(r.read())["access_token"]

        deadline = time.time() + 120
        while True:
            try:
                if request("GET", base + "/readyz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit("faasd did not become ready; logs in " + tmp)
            time.sleep(0.2)
        if a.dev:
            token = subprocess.run([a.faasd, "dev", "token", "--state-dir", state, "--user", "alice"],
                                   check=True, capture_output=True, text=True).stdout.strip()
            repo = "file://" + os.path.join(state, "examples", "echo-sh.git")
        # The observer's supervisor is not used here: the worker count is fixed.

        def one(i):
            t0 = time.monotonic()
            st, body = request("POST", base + "/v1/jobs", token,
                               {"repo": {"url": repo, "ref": "main"}, "data": {"i": i}, "delivery": a.delivery})
            if st != 202:
                raise RuntimeError(f"submit: {st} {body[:200]!r}")
            t_ack = time.monotonic()
            jid = json.loads(body)["id"]
            while True:
                st, body = request("GET", f"{base}/v1/jobs/{jid}/result?wait=30", token)
                if st == 200:
                    break
                if st != 409:
                    raise RuntimeError(f"result: {st} {body[:200]!r}")
            r = json.loads(body)
            return (t_ack - t0) * 1000, (time.monotonic() - t0) * 1000, r

        one(-1)  # warm the repository cache and the connections
        t0 = time.monotonic()
        with cf.ThreadPoolExecutor(a.concurrency) as ex:
            out = list(ex.map(one, range(a.jobs)))
        wall = time.monotonic() - t0
        ack = [o[0] for o in out]
        lat = [o[1] for o in out]
        ok = sum(1 for o in out if o[2].get("state") == "succeeded")
        if ok < a.jobs:
            bad = next(o[2] for o in out if o[2].get("state") != "succeeded")
            print("  first failure:", json.dumps(bad)[:600])
        tim = [o[2].get("timing", {}) for o in out]
        mode = "faasd dev (mock cluster)" if a.dev else "real Kafka + Keycloak, separate processes"
        print(f"e2e_latency: {mode}; jobs={a.jobs} concurrency={a.concurrency} workers={a.workers} "
              f"slots={a.slots} sandbox={a.sandbox} delivery={a.delivery}")
        print(f"  succeeded            {ok}/{a.jobs}")
        print(f"  throughput           {a.jobs / wall:.1f} jobs/s ({wall:.2f} s)")
        for name, xs in (("202 (acks=all)", ack), ("submit->result", lat)):
            print(f"  {name:<20} p50 {pct(xs, 50):7.1f} ms  p95 {pct(xs, 95):7.1f} ms  "
                  f"p99 {pct(xs, 99):7.1f} ms  mean {statistics.mean(xs):7.1f} ms")
        for k in ("queue_wait_ms", "prepare_ms", "run_ms", "total_ms"):
            xs = [t[k] for t in tim if k in t]
            if xs:
                print(f"  server {k:<13} p50 {pct(xs, 50):7.1f} ms  p95 {pct(xs, 95):7.1f} ms  "
                      f"p99 {pct(xs, 99):7.1f} ms")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if a.keep:
            print("logs in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
