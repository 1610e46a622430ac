#!/usr/bin/env python3
"""Deterministic synthetic trade declarations for scripts/bench.

Writes the same rows twice:

* --canonical: the DARTTS canonical trade CSV (profiles/canonical.toml, docs/formats.md),
  what `dartts load trade FILE --provider US` reads;
* --table: the columns of `trade_records` minus `id`, in table order (batch_id 1,
  provider_country US, declared_currency and declared_value_usd filled), what
  `psql \\copy trade_records(...) FROM FILE WITH (FORMAT csv, HEADER true)` reads.

With --mirror FILE it also writes, in the --table layout (batch_id 2), what the partners
report for the same trade: for about half of the US import lines, the exporting nation's
export line (provider and reporting country = that nation, partner US) valued FOB, i.e. the
US CIF value divided by 1.03-1.12, and for 2 % of them at a third of it (under-reported
exports, the discrepancy mirrorDiscrepancies exists to find). scripts/bench-totals loads it.

Every row is valid for the canonical profile, so a load accepts all of them. The output
depends only on --rows and --seed (Python's `random.Random` is stable across versions for
the calls used here), so every run of the benchmark loads byte-identical files.
"""

import argparse
import csv
import datetime
import random
import string

# The columns `BoundProfile::map` produces, i.e. `trade_records` minus `id` (TRADE_COLUMNS).
TABLE_COLUMNS = [
    "batch_id", "provider_country", "declaration_id", "line_number", "declaration_date",
    "direction", "hs_code", "commodity_description", "importer_name", "importer_id",
    "importer_address", "exporter_name", "manufacturer_name", "manufacturer_id",
    "country_of_origin", "country_of_export", "country_of_destination", "reporting_country",
    "partner_country", "port", "transport_mode", "quantity", "quantity_unit", "net_weight_kg",
    "declared_value", "declared_currency", "declared_value_usd",
]
CANONICAL_COLUMNS = TABLE_COLUMNS[2:]

# Trading partners of the US with rough weights (share of declaration lines).
PARTNERS = [
    ("CN", 30), ("MX", 12), ("CA", 9), ("DE", 5), ("JP", 5), ("VN", 5), ("KR", 4), ("IN", 4),
    ("TW", 3), ("IT", 3), ("GB", 3), ("IE", 2), ("FR", 2), ("TH", 2), ("MY", 2), ("CH", 2),
    ("BR", 1), ("ID", 1), ("NL", 1), ("SG", 1), ("IL", 1), ("ES", 1), ("BD", 1), ("TR", 1),
    ("PH", 1), ("KH", 1), ("PK", 1), ("CL", 1), ("CO", 1), ("PE", 1), ("AE", 1), ("SA", 1),
    ("AU", 1), ("BE", 1), ("SE", 1), ("AT", 1), ("PL", 1), ("DK", 1), ("NO", 1), ("FI", 1),
    ("ZA", 1), ("EG", 1), ("NG", 1), ("MA", 1), ("AR", 1), ("EC", 1), ("GT", 1), ("HN", 1),
    ("SV", 1), ("DO", 1), ("CR", 1), ("NZ", 1), ("LK", 1), ("HK", 1), ("CZ", 1), ("HU", 1),
    ("PT", 1), ("RO", 1), ("UA", 1), ("KZ", 1),
]
CITIES = [
    "Shenzhen", "Shanghai", "Ningbo", "Guangzhou", "Tianjin", "Xiamen", "Monterrey", "Tijuana",
    "Toronto", "Hamburg", "Osaka", "Hanoi", "Busan", "Mumbai", "Taipei", "Milan", "Leeds",
    "Cork", "Lyon", "Bangkok", "Penang", "Basel", "Santos", "Jakarta", "Rotterdam", "Dhaka",
    "Izmir", "Manila", "Karachi", "Lima", "Dubai", "Jeddah", "Melbourne", "Antwerp", "Gdansk",
]
ADJECTIVES = [
    "Blue", "Golden", "Pacific", "Atlantic", "Northern", "Summit", "Eagle", "Harbor", "Prime",
    "United", "Global", "Silver", "Red", "Green", "Star", "Liberty", "Pioneer", "Coastal",
    "Great", "Royal", "Apex", "Metro", "Delta", "Keystone", "Lone", "Evergreen", "Bright",
]
NOUNS = [
    "Harbor", "Bridge", "River", "Mountain", "Gate", "Ridge", "Bay", "Valley", "Point", "Crest",
    "Field", "Lake", "Rock", "Oak", "Pine", "Stone", "Wave", "Peak", "Trail", "Forge",
]
TRADES = [
    "Trading", "Imports", "Supply", "Distribution", "Logistics", "Industries", "Electronics",
    "Textiles", "Metals", "Foods", "Apparel", "Home Goods", "Auto Parts", "Chemicals",
]
US_SUFFIXES = ["LLC", "Inc", "Corp", "Co", "LP", "Group Inc"]
FOREIGN_SUFFIXES = ["Co Ltd", "Ltd", "GmbH", "SA de CV", "SRL", "Pvt Ltd", "Co", "BV", "AG"]
STREETS = [
    "Main St", "Dock Rd", "Harbor Blvd", "Industrial Pkwy", "Commerce Dr", "Port Ave",
    "Warehouse Way", "Market St", "Bullion Ave", "Freight Ln", "Terminal Rd", "Elm St",
]
US_PLACES = [
    "Newark NJ", "Miami FL", "Los Angeles CA", "Long Beach CA", "Houston TX", "Seattle WA",
    "Savannah GA", "Chicago IL", "Laredo TX", "Detroit MI", "New York NY", "Oakland CA",
    "Charleston SC", "Norfolk VA", "Baltimore MD", "Atlanta GA", "Dallas TX", "Memphis TN",
]
GOODS = [
    "computers", "t-shirts", "bolts", "screws", "valves", "pumps", "tires", "toys", "footwear",
    "furniture", "lamps", "cables", "batteries", "solar cells", "bicycles", "handbags",
    "ceramic tiles", "glassware", "steel pipes", "aluminium sheets", "copper wire", "shrimp",
    "coffee", "olive oil", "wine", "plastic bags", "polyester yarn", "cotton fabric", "jeans",
    "smartphones", "monitors", "printers", "engines", "brake pads", "gold", "silver", "paper",
]
QUALIFIERS = [
    "", "", "", "parts of ", "refurbished ", "women's ", "men's ", "industrial ", "frozen ",
    "stainless ", "knitted ", "electric ", "non-alloy ", "unwrought ", "printed ", "other ",
]
UNITS = [("NO", 40), ("KG", 25), ("DOZ", 8), ("PCS", 8), ("M2", 5), ("L", 4), ("PRS", 4),
         ("T", 2), ("M", 2), ("X", 2)]
MODES = [("SEA", 60), ("AIR", 25), ("ROAD", 10), ("RAIL", 4), ("MAIL", 1)]


def cumulative(weights):
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def zipf(n, s=0.9):
    """Cumulative weights of a Zipf-like popularity over n items: a few are very common."""
    return cumulative(1.0 / (rank ** s) for rank in range(1, n + 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--canonical", required=True, help="canonical trade CSV to write")
    parser.add_argument("--table", help="trade_records-ordered CSV to write (the COPY peer)")
    parser.add_argument("--mirror", help="partner-reported export rows to write (table layout)")
    parser.add_argument("--start", default="2021-01-01", help="first declaration date")
    parser.add_argument("--years", type=int, default=4, help="years the dates span")
    parser.add_argument("--first-declaration", type=int, default=1,
                        help="sequence number of the first declaration id; a second file for "
                        "the same database starts past the first's, since a load rejects a "
                        "declaration line another batch holds")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    letters = string.ascii_uppercase
    digits = string.digits

    partner_codes = [c for c, _ in PARTNERS]
    partner_cum = cumulative(w for _, w in PARTNERS)

    # HS/HTS codes: 6,000 ten-digit lines from every chapter, each with a description.
    chapters = [c for c in range(1, 98) if c != 77]
    hs_pool = set()
    while len(hs_pool) < 6000:
        hs_pool.add(f"{rng.choice(chapters):02d}{rng.randrange(1, 100):02d}"
                    f"{rng.randrange(0, 100):02d}{rng.randrange(0, 10000):04d}")
    hs_codes = sorted(hs_pool)
    rng.shuffle(hs_codes)
    hs_desc = {}
    for code in hs_codes:
        q = rng.choice(QUALIFIERS)
        text = f"{q}{rng.choice(GOODS)}"
        hs_desc[code] = text[0].upper() + text[1:]
    hs_cum = zipf(len(hs_codes), 0.8)

    # US firms (importers, or exporters for EXPORT lines).
    us_firms = []
    for i in range(40_000):
        name = (f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(TRADES)} "
                f"{rng.choice(US_SUFFIXES)}")
        if i % 7 == 0:
            name = f"{name} #{i}"
        ein = f"{rng.randrange(10, 99)}-{rng.randrange(0, 10_000_000):07d}"
        address = f"{rng.randrange(1, 9999)} {rng.choice(STREETS)}, {rng.choice(US_PLACES)}"
        us_firms.append((name, ein, address))
    us_cum = zipf(len(us_firms), 0.7)

    # Foreign firms with the manufacturer id (MID) CBP builds from country, name and city.
    foreign = []
    for _ in range(25_000):
        country = partner_codes[rng.choices(range(len(partner_codes)), cum_weights=partner_cum)[0]]
        city = rng.choice(CITIES)
        word = rng.choice(NOUNS + ADJECTIVES)
        name = f"{city} {word} {rng.choice(TRADES)} {rng.choice(FOREIGN_SUFFIXES)}"
        mid = (f"{country}{city[:3].upper()}{word[:3].upper()}{rng.randrange(1, 9999)}"
               f"{city[:3].upper()}")
        foreign.append((name, mid, country))
    foreign_cum = zipf(len(foreign), 0.7)

    ports = sorted({f"{rng.randrange(1, 60):02d}{rng.randrange(1, 40):02d}" for _ in range(200)})
    port_cum = zipf(len(ports), 1.0)
    unit_codes = [u for u, _ in UNITS]
    unit_cum = cumulative(w for _, w in UNITS)
    mode_codes = [m for m, _ in MODES]
    mode_cum = cumulative(w for _, w in MODES)
    line_counts = [1, 2, 3, 4, 5, 6, 8, 12]
    line_cum = cumulative([50, 20, 12, 7, 5, 3, 2, 1])

    start = datetime.date.fromisoformat(args.start)
    span_days = 365 * args.years
    dates = [(start + datetime.timedelta(days=d)).isoformat() for d in range(span_days)]

    rnd = rng.random
    pick = rng.choices
    canon_f = open(args.canonical, "w", newline="", encoding="utf-8")
    table_f = open(args.table, "w", newline="", encoding="utf-8") if args.table else None
    canon = csv.writer(canon_f, lineterminator="\n")
    canon.writerow(CANONICAL_COLUMNS)
    table = None
    mirror_f = open(args.mirror, "w", newline="", encoding="utf-8") if args.mirror else None
    mirror = None
    if mirror_f:
        mirror = csv.writer(mirror_f, lineterminator="\n")
        mirror.writerow(TABLE_COLUMNS)
    # Its own generator: the main rows stay byte-identical with or without --mirror.
    mirror_rng = random.Random(args.seed + 1)
    if table_f:
        table = csv.writer(table_f, lineterminator="\n")
        table.writerow(TABLE_COLUMNS)

    written = 0
    seq = args.first_declaration - 1
    filers = ["".join(rng.choice(letters + digits) for _ in range(3)) for _ in range(300)]
    while written < args.rows:
        seq += 1
        # Declarations arrive roughly in date order, a few days out of order.
        day = int(written * span_days / args.rows) + rng.randrange(-3, 4)
        date = dates[min(max(day, 0), span_days - 1)]
        declaration_id = f"{rng.choice(filers)}-{seq:08d}"
        export = rnd() < 0.15
        us_name, us_id, us_address = us_firms[pick(range(len(us_firms)), cum_weights=us_cum)[0]]
        f_name, f_mid, f_country = foreign[pick(range(len(foreign)), cum_weights=foreign_cum)[0]]
        port = ports[pick(range(len(ports)), cum_weights=port_cum)[0]]
        mode = mode_codes[pick(range(len(mode_codes)), cum_weights=mode_cum)[0]]
        if f_country in ("CA", "MX") and rnd() < 0.7:
            mode = "ROAD" if rnd() < 0.8 else "RAIL"
        if export:
            direction = "EXPORT"
            origin, from_country, destination = "US", "US", f_country
            partner = destination
            importer = (f_name, "", "")  # the foreign consignee
            exporter, manufacturer, mid = us_name, us_name, ""
        else:
            direction = "IMPORT"
            from_country = f_country
            # Some goods are shipped from a third country (transshipment, regional hubs).
            origin = (partner_codes[pick(range(len(partner_codes)), cum_weights=partner_cum)[0]]
                      if rnd() < 0.08 else f_country)
            destination = "US"
            partner = from_country
            importer = (us_name, us_id, us_address if rnd() > 0.04 else "")
            exporter = f_name if rnd() > 0.02 else ""
            manufacturer, mid = f_name, (f_mid if rnd() > 0.08 else "")
        lines = line_counts[pick(range(len(line_counts)), cum_weights=line_cum)[0]]
        for line in range(1, lines + 1):
            if written == args.rows:
                break
            hs = hs_codes[pick(range(len(hs_codes)), cum_weights=hs_cum)[0]]
            description = hs_desc[hs] if rnd() > 0.02 else ""
            unit = unit_codes[pick(range(len(unit_codes)), cum_weights=unit_cum)[0]]
            if unit == "X" or rnd() < 0.03:
                quantity, unit = "", ""
            else:
                quantity = str(max(1, int(rng.lognormvariate(4.0, 1.8))))
            weight = "" if rnd() < 0.03 else f"{rng.lognormvariate(5.0, 2.0):.1f}"
            value = f"{max(1.0, rng.lognormvariate(9.0, 1.7)):.2f}"
            # USD needs no separate USD value; half the rows repeat it anyway.
            value_usd = value if rnd() < 0.5 else ""
            row = [
                declaration_id, line, date, direction, hs, description,
                importer[0], importer[1], importer[2], exporter, manufacturer, mid,
                origin, from_country, destination, "US", partner, port, mode,
                quantity, unit, weight, value, "USD", value_usd,
            ]
            canon.writerow(row)
            if table:
                row[-1] = value
                table.writerow([1, "US", *row])
            if mirror and direction == "IMPORT" and mirror_rng.random() < 0.5:
                fob = float(value) / mirror_rng.uniform(1.03, 1.12)
                if mirror_rng.random() < 0.02:
                    fob /= 3.0
                mirror.writerow([
                    2, from_country, f"M{declaration_id}", line, date, "EXPORT", hs,
                    description, us_name, "", "", f_name, manufacturer, mid, origin,
                    from_country, "US", from_country, "US", "", mode, quantity, unit, weight,
                    f"{fob:.2f}", "USD", f"{fob:.2f}",
                ])
            written += 1

    canon_f.close()
    if table_f:
        table_f.close()
    if mirror_f:
        mirror_f.close()


if __name__ == "__main__":
    main()
