#!/usr/bin/env python3
"""One analyst's burst of analyses and another analyst's one analysis, on the embedded default.

Two builds of `dartts` alternate (`OLD` and `NEW`, paths to release binaries), each serving
the same embedded database (started in `DATA_DIR`, whose `dartts-data/` holds trade rows and
the accounts `alice` and `bob`, both HSI_ANALYST, whose tokens are in `TOKENS/tok.a` and
`TOKENS/tok.b`): analyst A sends N (default 12) anomaly requests at once, analyst B one totals
request a second later (with `ALIASES=k`, each of A's requests asks for the anomalies k times
under k aliases). Prints, per round and build, when B's answer came and A's first and
last. Recorded in BENCHMARKS.md ("A burst of analyses").
Usage: OLD=… NEW=… DATA_DIR=… TOKENS=… scripts/bench-turns.py [ROUNDS]
"""
import json, os, signal, subprocess, sys, threading, time, urllib.error, urllib.request
ALIASES = int(os.environ.get("ALIASES", "1"))
A_Q = "{ " + " ".join(
    f'a{i}: priceAnomalies(first: 5, filter: {{countryOfOrigin: "CN"}}) {{ totalCount }}'
    for i in range(ALIASES)
) + " }"
B_Q = '{ tradeTotals(groupBy: [YEAR]) { totalCount edges { node { year recordCount } } } }'
N = int(os.environ.get("N", "12"))
tok = {k: open(os.path.join(os.environ["TOKENS"], f"tok.{k}")).read().strip() for k in "ab"}
def post(port, who, q, out, i, t0):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": q}).encode(),
        headers={"authorization": "Bearer " + tok[who], "content-type": "application/json"})
    s = time.time()
    try:
        with urllib.request.urlopen(req, timeout=120) as r: code = r.status; body = r.read()
    except urllib.error.HTTPError as e: code = e.code; body = e.read()
    out[i] = (code, s - t0, time.time() - t0, json.loads(body).get("data"))
def burst(port):
    out = {}; t0 = time.time()
    ths = [threading.Thread(target=post, args=(port, "a", A_Q, out, i, t0)) for i in range(N)]
    for t in ths: t.start()
    time.sleep(1.0)
    tb = threading.Thread(target=post, args=(port, "b", B_Q, out, "b", t0)); tb.start()
    for t in ths + [tb]: t.join()
    a = sorted(v[2] for k, v in out.items() if k != "b")
    codes = sorted(set(v[0] for v in out.values()))
    b = out["b"]
    return dict(b_wait=round(b[2] - b[1], 2), a_first=round(a[0], 2), a_last=round(a[-1], 2), codes=codes,
                same=len(set(json.dumps(v[3], sort_keys=True) for k, v in out.items() if k != "b")) == 1)
def serve(binary, port):
    env = dict(os.environ, DARTTS_LISTEN=f"127.0.0.1:{port}")
    p = subprocess.Popen([binary, "serve"], cwd=os.environ["DATA_DIR"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1); break
        except Exception: time.sleep(0.2)
    # One request first, so that neither build pays for a cold page cache in the burst.
    post(port, "a", A_Q, {}, 0, time.time())
    return p
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
for r in range(rounds):
    for name in ["OLD", "NEW"]:
        p = serve(os.environ[name], 8095)
        res = burst(8095)
        p.send_signal(signal.SIGTERM); p.wait()
        print(f"round {r+1} {name}: analyst B's totals answered after {res['b_wait']} s; "
              f"A's {N} requests of {ALIASES} anomaly queries: first {res['a_first']} s, last {res['a_last']} s; statuses {res['codes']}; A answers identical {res['same']}", flush=True)
