#!/usr/bin/env bash
# Replaces the text between the FORMATS-TABLE markers in README.md and formats.md with the
# table generated from the format descriptors (`emconv formats --markdown`).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/debug/emconv}"
table=$("$BIN" formats --markdown)
for f in README.md formats.md; do
  python3 - "$f" "$table" <<'PY'
import sys, re
path, table = sys.argv[1], sys.argv[2]
s = open(path).read()
new = re.sub(r"(<!-- FORMATS-TABLE:BEGIN[^>]*-->\n).*?(<!-- FORMATS-TABLE:END -->)", lambda m: m.group(1) + table.strip() + "\n" + m.group(2), s, flags=re.S)
open(path, "w").write(new)
PY
done
