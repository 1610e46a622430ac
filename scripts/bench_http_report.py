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
    "wal_syncs", "wal_bytes", "disturbed",
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
    cells = defaultdict(lambda: {"off": [], "on": []})
    order = []
    for r in runs:
        key = (r["query"], r["conc"])
        if key not in cells:
            order.append(key)
        cells[key][r["audit"]].append(r)

    mean = lambda rows, k: statistics.fmean(r[k] for r in rows) if rows else float("nan")
    out = []
    out.append("requests/s = responses with status 200 per second (mean of the rounds); latency in ms")
    out.append("(mean of the rounds' p50 and p99); audit cost = 1 - ON/OFF requests/s, per round in brackets")
    out.append("")
    head = (f"{'query':<8} {'conn':>4} | {'OFF req/s':>9} {'ON req/s':>9} {'audit cost':>10} "
            f"{'(per round)':<15} | {'p50 OFF':>7} {'p50 ON':>7} | {'p99 OFF':>7} {'p99 ON':>7}")
    out.append(head)
    out.append("-" * len(head))
    for key in order:
        off, on = cells[key]["off"], cells[key]["on"]
        rounds = sorted({r["round"] for r in off} & {r["round"] for r in on})
        per_round = []
        for rd in rounds:
            o = next(r for r in off if r["round"] == rd)
            n = next(r for r in on if r["round"] == rd)
            per_round.append(f"{pct(o['rps'], n['rps']):.0f}%")
        flag = " *" if any(r["disturbed"] for r in off + on) else ""
        out.append(
            f"{key[0]:<8} {key[1]:>4} | {mean(off, 'rps'):>9.0f} {mean(on, 'rps'):>9.0f} "
            f"{pct(mean(off, 'rps'), mean(on, 'rps')):>9.1f}% {'(' + ', '.join(per_round) + ')':<15} | "
            f"{mean(off, 'p50_ms'):>7.2f} {mean(on, 'p50_ms'):>7.2f} | "
            f"{mean(off, 'p99_ms'):>7.2f} {mean(on, 'p99_ms'):>7.2f}{flag}"
        )
    out.append("")
    out.append("CPU per request in microseconds (CPU seconds of the run / responses), mean of the rounds;")
    out.append("WAL fsyncs (pg_stat_wal.wal_sync) per 1,000 requests; audit rows per fsync ~ rows per group commit")
    out.append("")
    head = (f"{'query':<8} {'conn':>4} {'audit':<5} | {'dartts':>7} {'Postgres':>8} {'Redis':>6} "
            f"{'hey':>6} {'machine':>8} | {'fsync/1k':>8} {'WAL B/req':>9} {'rows/fsync':>10}")
    out.append(head)
    out.append("-" * len(head))
    for key in order:
        for audit in ("off", "on"):
            rows = cells[key][audit]
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
                f"{rows_per_sync:>10}"
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
