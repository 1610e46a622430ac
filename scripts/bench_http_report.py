#!/usr/bin/env python3
"""Helper of scripts/bench-http (not meant to be run by hand).

  bench_http_report.py hey SUMMARY_FILE
      prints "requests_ok total_s rps_ok p50_ms p99_ms non200 errors" from hey's text summary
      (responses with status 200, wall time of the whole hey run including in-flight requests
      it waits for at the end, requests/s counting only status 200, latency percentiles).

  bench_http_report.py table RUNS_TSV
      prints the side-by-side table (audit OFF vs ON) and the CPU breakdown from the runs file
      scripts/bench-http writes (one line per measured run, columns in FIELDS).
"""

import re
import statistics
import sys
from collections import defaultdict

FIELDS = [
    "query", "conc", "audit", "round", "ok", "total_s", "rps", "p50_ms", "p99_ms", "non200",
    "errors", "audit_rows", "cpu_dartts", "cpu_pg", "cpu_redis", "cpu_hey", "cpu_machine",
    "wal_syncs", "wal_bytes", "fsync_ms", "disturbed",
]


def parse_hey(path):
    text = open(path, encoding="utf-8").read()

    def num(pattern, default=None):
        m = re.search(pattern, text, re.M)
        if m is None:
            if default is None:
                sys.exit(f"bench_http_report: {pattern!r} not in hey output {path}")
            return default
        return float(m.group(1))

    total = num(r"^\s*Total:\s+([0-9.]+) secs")
    p50 = num(r"^\s*50%+ in ([0-9.]+) secs")
    p99 = num(r"^\s*99%+ in ([0-9.]+) secs")
    codes = {int(c): int(n) for c, n in re.findall(r"^\s*\[(\d+)\]\s+(\d+) responses", text, re.M)}
    ok = codes.get(200, 0)
    non200 = sum(n for c, n in codes.items() if c != 200)
    # "Error distribution:" lists "[count]	message" lines (connection errors, timeouts).
    errors = 0
    if "Error distribution:" in text:
        tail = text.split("Error distribution:", 1)[1]
        errors = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]\s", tail, re.M))
    rps = ok / total if total > 0 else 0.0
    print(f"{ok} {total:.4f} {rps:.1f} {p50 * 1000:.2f} {p99 * 1000:.2f} {non200} {errors}")


def pct(off, on):
    return (1.0 - on / off) * 100.0 if off else float("nan")


def table(path):
    runs = []
    for line in open(path, encoding="utf-8"):
        if not line.strip():
            continue
        values = line.rstrip("\n").split("\t")
        row = dict(zip(FIELDS, values))
        for key in FIELDS[4:-1]:
            row[key] = float(row[key])
        row["conc"] = int(row["conc"])
        runs.append(row)
    # cell (query, connections) -> attempt -> {"off": run, "on": run}
    cells = defaultdict(lambda: defaultdict(dict))
    order = []
    for r in runs:
        key = (r["query"], r["conc"])
        if key not in cells:
            order.append(key)
        cells[key][r["round"]][r["audit"]] = r

    def pairs_used(key):
        """The complete OFF/ON pairs without disturbance; all complete pairs if none is."""
        pairs = [p for p in cells[key].values() if "off" in p and "on" in p]
        clean = [p for p in pairs if not p["off"]["disturbed"] and not p["on"]["disturbed"]]
        return (clean, False) if clean else (pairs, True)

    def mean(rows, k):
        return statistics.fmean(r[k] for r in rows) if rows else float("nan")

    out = []
    out.append("requests/s = responses with status 200 per second, mean over the undisturbed OFF/ON pairs")
    out.append("(n); latency p50/p99 in ms, mean over the same runs; audit cost = 1 - ON/OFF requests/s,")
    out.append("each pair's in brackets; * = no undisturbed pair, all pairs used")
    out.append("")
    head = (f"{'query':<8} {'conn':>4} {'n':>2} | {'OFF req/s':>9} {'ON req/s':>9} {'audit cost':>10} "
            f"{'(per pair)':<16} | {'p50 OFF':>7} {'p50 ON':>7} | {'p99 OFF':>7} {'p99 ON':>7}")
    out.append(head)
    out.append("-" * len(head))
    for key in order:
        pairs, flagged = pairs_used(key)
        off = [p["off"] for p in pairs]
        on = [p["on"] for p in pairs]
        per_pair = ", ".join(f"{pct(p['off']['rps'], p['on']['rps']):.0f}%" for p in pairs)
        out.append(
            f"{key[0]:<8} {key[1]:>4} {len(pairs):>2} | {mean(off, 'rps'):>9.0f} {mean(on, 'rps'):>9.0f} "
            f"{pct(mean(off, 'rps'), mean(on, 'rps')):>9.1f}% {'(' + per_pair + ')':<16} | "
            f"{mean(off, 'p50_ms'):>7.2f} {mean(on, 'p50_ms'):>7.2f} | "
            f"{mean(off, 'p99_ms'):>7.2f} {mean(on, 'p99_ms'):>7.2f}{' *' if flagged else ''}"
        )
    out.append("")
    out.append("CPU per request in microseconds (CPU seconds of the run / responses; machine = all CPU")
    out.append("used on the machine, kernel included), same runs; WAL fsyncs (pg_stat_wal.wal_sync) per")
    out.append("1,000 requests; audit rows per WAL fsync ~ events per group commit; fsync ms = median")
    out.append("fdatasync of an 8 kB write measured just before each run")
    out.append("")
    head = (f"{'query':<8} {'conn':>4} {'audit':<5} | {'dartts':>7} {'Postgres':>8} {'Redis':>6} "
            f"{'hey':>6} {'machine':>8} | {'fsync/1k':>8} {'WAL B/req':>9} {'rows/fsync':>10} {'fsync ms':>8}")
    out.append(head)
    out.append("-" * len(head))
    for key in order:
        pairs, _ = pairs_used(key)
        for audit in ("off", "on"):
            rows = [p[audit] for p in pairs]
            per = lambda k: statistics.fmean(r[k] / r["ok"] * 1e6 for r in rows if r["ok"])
            syncs = sum(r["wal_syncs"] for r in rows)
            audited = sum(r["audit_rows"] for r in rows)
            rows_per_sync = f"{audited / syncs:.1f}" if syncs and audited else "-"
            out.append(
                f"{key[0]:<8} {key[1]:>4} {audit.upper():<5} | {per('cpu_dartts'):>7.0f} "
                f"{per('cpu_pg'):>8.0f} {per('cpu_redis'):>6.0f} {per('cpu_hey'):>6.0f} "
                f"{per('cpu_machine'):>8.0f} | "
                f"{statistics.fmean(r['wal_syncs'] / r['ok'] * 1000 for r in rows if r['ok']):>8.1f} "
                f"{statistics.fmean(r['wal_bytes'] / r['ok'] for r in rows if r['ok']):>9.0f} "
                f"{rows_per_sync:>10} {statistics.median(r['fsync_ms'] for r in rows):>8.2f}"
            )
    print("\n".join(out))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "hey":
        parse_hey(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
