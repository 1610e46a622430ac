#!/usr/bin/env python3
"""First requests per query shape: what one analyst waits for, not throughput.

Sends each `tradeRecords` shape (filter + order, 50 records or query 2's 20, 8 fields) a few
times, one request at a time, to each server given, interleaved (which server goes first
alternates), checks they return the same rows, and prints the
latency of the first request, the second, and the median of the rest. The first requests of
a shape are the ones PostgreSQL plans for their parameter values (custom plans: the first
five executions of a prepared statement on each pooled connection), so start the servers
fresh before a run. Used by scripts/bench-peer; for an A/B of two builds, start both on the
same database and name both:

    scripts/bench_shapes.py --token TOKEN old=http://127.0.0.1:18090/graphql \\
        new=http://127.0.0.1:18092/graphql
"""

import argparse
import json
import statistics
import time
import urllib.request

FIELDS = ("declarationId lineNumber declarationDate hsCode importerName countryOfOrigin "
          "partnerCountry declaredValueUsd")
VALUE_DESC = "orderBy: [{field: DECLARED_VALUE_USD, direction: DESC}]"
DATE_DESC = "orderBy: [{field: DECLARATION_DATE, direction: DESC}]"
# (name, arguments): the default order (the id) first, then explicit orders.
SHAPES = [
    ("id | no filter", ""),
    ("id | HS 84 + 2024, first 20 (query 2)",
     'first: 20, filter: {hsCodePrefix: "84", declarationDateFrom: "2024-01-01", '
     'declarationDateTo: "2024-12-31"}'),
    ("id | HS 84 + 2024, first 50",
     'filter: {hsCodePrefix: "84", declarationDateFrom: "2024-01-01", declarationDateTo: "2024-12-31"}'),
    ("id | one month", 'filter: {declarationDateFrom: "2023-03-01", declarationDateTo: "2023-03-31"}'),
    ("id | year 2024", 'filter: {declarationDateFrom: "2024-01-01", declarationDateTo: "2024-12-31"}'),
    ("id | HS 84", 'filter: {hsCodePrefix: "84"}'),
    ("id | partner DE", 'filter: {partnerCountry: ["DE"]}'),
    ("id | origin CN", 'filter: {countryOfOrigin: ["CN"]}'),
    ("id | value >= 1M", "filter: {declaredValueUsdMin: 1000000}"),
    # No index serves a port: its matches are found only by reading the table.
    ("id | port 0401", 'filter: {port: "0401"}'),
    ("id | origin CN + port 0401", 'filter: {countryOfOrigin: ["CN"], port: "0401"}'),
    ("id | origin CN + 2024",
     'filter: {countryOfOrigin: ["CN"], declarationDateFrom: "2024-01-01", '
     'declarationDateTo: "2024-12-31"}'),
    # One declaration by its id (@DECLARATION@: looked up from the data before the run).
    ("id | one declaration", 'filter: {declarationId: "@DECLARATION@"}'),
    # Records whose importer FinCEN reports name; with no reports loaded, none: every row read.
    ("id | linked to FinCEN reports", "filter: {linkedFinancialActivity: true}"),
    ("value | origin CN (query 1)", f'filter: {{countryOfOrigin: ["CN"]}}, {VALUE_DESC}'),
    ("value | origin CN + 2024",
     'filter: {countryOfOrigin: ["CN"], declarationDateFrom: "2024-01-01", '
     f'declarationDateTo: "2024-12-31"}}, {VALUE_DESC}'),
    ("value | origin CN + HS 84",
     f'filter: {{countryOfOrigin: ["CN"], hsCodePrefix: "84"}}, {VALUE_DESC}'),
    ("value | partner DE", f'filter: {{partnerCountry: ["DE"]}}, {VALUE_DESC}'),
    ("value | no filter", VALUE_DESC),
    ("value | HS 84 + 2024",
     'filter: {hsCodePrefix: "84", declarationDateFrom: "2024-01-01", '
     f'declarationDateTo: "2024-12-31"}}, {VALUE_DESC}'),
    ("value | one month",
     f'filter: {{declarationDateFrom: "2023-03-01", declarationDateTo: "2023-03-31"}}, {VALUE_DESC}'),
    ("date | partner DE", f'filter: {{partnerCountry: ["DE"]}}, {DATE_DESC}'),
    ("date | origin CN", f'filter: {{countryOfOrigin: ["CN"]}}, {DATE_DESC}'),
    ("date | no filter", DATE_DESC),
]


def post(url, token, query):
    body = json.dumps({"query": query}).encode()
    request = urllib.request.Request(url, body, {
        "content-type": "application/json",
        "authorization": "Bearer " + token,
    })
    started = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        answer = json.load(response)
    took = (time.perf_counter() - started) * 1000
    if "errors" in answer:
        raise SystemExit(f"{url}: {json.dumps(answer['errors'])[:300]}")
    return took, answer["data"]["tradeRecords"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--token", required=True, help="bearer token of an analyst")
    parser.add_argument("--requests", type=int, default=5, help="per shape and server")
    parser.add_argument("servers", nargs="+", help="NAME=URL of /graphql")
    args = parser.parse_args()
    if args.requests < 2:
        parser.error("--requests must be at least 2 (the first and the second are shown apart)")
    servers = [s.split("=", 1) for s in args.servers]
    names = "  ".join(f"{name:>28}" for name, _ in servers)
    _, sample = post(servers[0][1], args.token,
                     "{ tradeRecords(first: 1) { edges { node { declarationId } } } }")
    declaration = sample["edges"][0]["node"]["declarationId"]
    print(f"{'order | filter':40} {names}")
    print(f"{'':40} " + "  ".join(f"{'1st / 2nd / median rest ms':>28}" for _ in servers))
    for index, (name, arguments) in enumerate(SHAPES):
        if not arguments.startswith("first:"):
            arguments = "first: 50" + (", " + arguments if arguments else "")
        arguments = arguments.replace("@DECLARATION@", declaration)
        query = "{ tradeRecords(%s) { edges { node { %s } } } }" % (arguments, FIELDS)
        times = {server: [] for server, _ in servers}
        rows = {}
        for k in range(args.requests):
            # Who goes first alternates, so no server always meets the cold pages.
            order = servers if (index + k) % 2 == 0 else servers[::-1]
            for server, url in order:
                took, connection = post(url, args.token, query)
                times[server].append(took)
                rows.setdefault(server, json.dumps(connection["edges"]))
        if len(set(rows.values())) > 1:
            raise SystemExit(f"{name}: the servers returned different rows")
        cells = []
        for server, _ in servers:
            t = times[server]
            rest = statistics.median(t[2:]) if len(t) > 2 else float("nan")
            cells.append(f"{t[0]:8.1f} / {t[1]:7.1f} / {rest:7.1f}")
        print(f"{name:40} " + "  ".join(f"{c:>28}" for c in cells))


if __name__ == "__main__":
    main()
