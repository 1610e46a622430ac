"""Copies the policies for a benchmark with the HSI_ANALYST quota raised to 10^12.

A benchmark delivers far more records than the analyst's daily quota, which would lock the
account mid-run; raised, the quota is still reserved on every request, it just never trips.

    python3 scripts/bench_policy.py SOURCE_POLICY_DIR DEST_DIR
"""
import re
import shutil
import sys
from pathlib import Path

source, dest = Path(sys.argv[1]), Path(sys.argv[2])
dest.mkdir(parents=True, exist_ok=True)
for name in ("roles.toml", "fields.toml"):
    shutil.copy(source / name, dest / name)
roles = dest / "roles.toml"
text = roles.read_text()
start = text.index("[roles.HSI_ANALYST]")
end = text.find("\n[", start + 1)
end = len(text) if end < 0 else end
section, n = re.subn(r"(?m)^quota = \{ *records = \d+", "quota = { records = 1000000000000", text[start:end])
if n != 1:
    sys.exit(f"bench_policy.py: no HSI_ANALYST quota line in {source / 'roles.toml'}")
roles.write_text(text[:start] + section + text[end:])
