#!/usr/bin/env python3
"""Driver of scripts/bench-totals: the same two questions asked of DARTTS over HTTP and of DuckDB
(in-process, the same rows from the same CSV files), interleaved round by round.

1. tradeTotals by importer for one year (top 20 by value, with the number of groups);
2. mirrorDiscrepancies for one partner (top 50 by unexplained gap, with the number of pairs).

Before timing, each answer is checked against DuckDB's: the same group count and the same top
rows, so the two sides do the same work. Prints median and p99 per question and side.
"""

import argparse
import http.client
import json
import statistics
import time
import urllib.parse

import duckdb

TOTALS_GQL = """query($from: Date, $to: Date) {
  tradeTotals(groupBy: [IMPORTER_ID], filter: {declarationDateFrom: $from, declarationDateTo: $to}, first: 20) {
    totalCount edges { node { importerId valueUsd quantity quantityUnit netWeightKg recordCount } } } }"""

MIRROR_GQL = """query($nation: [String!]) {
  mirrorDiscrepancies(filter: {nation: $nation}, first: 50) {
    totalCount edges { node { exporterCountry importerCountry hsCode period unexplainedUsd
      exports { valueUsd recordCount } imports { valueUsd recordCount } } } } }"""

SINGLE = "min(quantity_unit) = max(quantity_unit)"
TOTALS_SQL = f"""
SELECT importer_id, sum(declared_value_usd) AS v,
       CASE WHEN {SINGLE} THEN sum(CASE WHEN quantity_unit IS NOT NULL THEN quantity END) END AS q,
       CASE WHEN {SINGLE} THEN min(quantity_unit) END AS u,
       sum(net_weight_kg) AS w, count(*) AS n, count(*) OVER () AS groups
FROM trade WHERE declaration_date BETWEEN ? AND ?
GROUP BY importer_id
ORDER BY v DESC NULLS LAST, importer_id ASC NULLS LAST LIMIT 21"""

MIRROR_SQL = """
WITH s AS (
  SELECT direction, reporting_country AS r, partner_country AS p, substr(hs_code, 1, 6) AS hs,
         strftime(declaration_date, '%Y') AS y, sum(declared_value_usd) AS v, count(*) AS n
  FROM trade
  WHERE (reporting_country = ? OR partner_country = ?) AND partner_country IS NOT NULL
  GROUP BY ALL),
e AS (SELECT r AS ex, p AS im, hs, y, v, n FROM s WHERE direction = 'EXPORT'),
i AS (SELECT p AS ex, r AS im, hs, y, v, n FROM s WHERE direction = 'IMPORT'),
j AS (
  SELECT coalesce(e.ex, i.ex) AS ex, coalesce(e.im, i.im) AS im, coalesce(e.hs, i.hs) AS hs,
         coalesce(e.y, i.y) AS y, e.v AS ev, i.v AS iv
  FROM e FULL OUTER JOIN i ON e.ex = i.ex AND e.im = i.im AND e.hs = i.hs AND e.y = i.y),
k AS (
  SELECT *, CASE WHEN coalesce(iv, 0) > coalesce(ev, 0) * 1.1 THEN coalesce(iv, 0) - coalesce(ev, 0) * 1.1
                 WHEN coalesce(iv, 0) < coalesce(ev, 0) THEN coalesce(iv, 0) - coalesce(ev, 0)
                 ELSE 0 END AS u
  FROM j)
SELECT ex, im, hs, y, u, count(*) OVER () AS pairs FROM k
WHERE u <> 0 OR ev IS NULL OR iv IS NULL
ORDER BY abs(u) DESC, ex, im, hs, y LIMIT 50"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="http://host:port")
    ap.add_argument("--token", required=True)
    ap.add_argument("--csv", nargs="+", required=True, help="table-layout CSV files")
    ap.add_argument("--year", default="2023")
    ap.add_argument("--partner", default="MX")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    u = urllib.parse.urlparse(args.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)

    def gql(query, variables):
        body = json.dumps({"query": query, "variables": variables})
        conn.request("POST", "/graphql", body, {
            "content-type": "application/json", "authorization": f"Bearer {args.token}"})
        resp = conn.getresponse()
        data = json.loads(resp.read())
        if resp.status != 200 or data.get("errors"):
            raise SystemExit(f"GraphQL error: {resp.status} {data}")
        return data["data"]

    duck = duckdb.connect()
    t0 = time.perf_counter()
    files = ", ".join(f"'{f}'" for f in args.csv)
    duck.execute(f"CREATE TABLE trade AS SELECT * FROM read_csv([{files}], header = true)")
    rows = duck.execute("SELECT count(*) FROM trade").fetchone()[0]
    print(f"duckdb: {rows:,} rows loaded in {time.perf_counter() - t0:.1f}s")

    day_from, day_to = f"{args.year}-01-01", f"{args.year}-12-31"
    questions = {
        "totals": (
            lambda: gql(TOTALS_GQL, {"from": day_from, "to": day_to})["tradeTotals"],
            lambda: duck.execute(TOTALS_SQL, [day_from, day_to]).fetchall(),
        ),
        "mirror": (
            lambda: gql(MIRROR_GQL, {"nation": [args.partner]})["mirrorDiscrepancies"],
            lambda: duck.execute(MIRROR_SQL, [args.partner, args.partner]).fetchall(),
        ),
    }

    # Same answers first: otherwise the timings compare different work.
    t = questions["totals"][0]()
    d = questions["totals"][1]()
    assert t["totalCount"] == d[0][6], (t["totalCount"], d[0][6])
    for edge, row in zip(t["edges"], d):
        n = edge["node"]
        assert n["importerId"] == row[0] and abs(n["valueUsd"] - row[1]) < 0.01, (n, row)
    m = questions["mirror"][0]()
    d = questions["mirror"][1]()
    assert m["totalCount"] == d[0][5], (m["totalCount"], d[0][5])
    for edge, row in zip(m["edges"], d):
        n = edge["node"]
        got = (n["exporterCountry"], n["importerCountry"], n["hsCode"], n["period"])
        assert got == row[:4] and abs(n["unexplainedUsd"] - row[4]) < 0.01, (n, row)
    print(f"answers agree: totals {t['totalCount']:,} importers, mirror {m['totalCount']:,} "
          f"pairs for {args.partner}")

    times = {(q, side): [] for q in questions for side in ("dartts", "duckdb")}
    for r in range(args.warmup + args.rounds):
        for q, (http_call, duck_call) in questions.items():
            for side, call in (("dartts", http_call), ("duckdb", duck_call)):
                t0 = time.perf_counter()
                call()
                ms = (time.perf_counter() - t0) * 1000
                if r >= args.warmup:
                    times[(q, side)].append(ms)

    def p99(xs):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]

    print(f"{args.rounds} rounds after {args.warmup} warm-up, interleaved; ms")
    print(f"{'question':<44} {'dartts med':>10} {'p99':>8} {'duckdb med':>10} {'p99':>8} {'ratio':>6}")
    for q, label in (("totals", f"tradeTotals by importer, {args.year}"),
                     ("mirror", f"mirrorDiscrepancies, partner {args.partner}")):
        a, b = times[(q, "dartts")], times[(q, "duckdb")]
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{label:<44} {ma:>10.1f} {p99(a):>8.1f} {mb:>10.1f} {p99(b):>8.1f} {ma / mb:>6.1f}")


if __name__ == "__main__":
    main()
