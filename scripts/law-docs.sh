#!/bin/sh
# Regenerate the docs' law pages from the packs (tests/policy/test_law.py checks they match).
set -e
cd "$(dirname "$0")/.."
DNC="${DNC_GATEWAY:-.venv/bin/dnc-gateway}"
"$DNC" law --format md > docs/law/index.md
for c in fr us ca gb; do
    "$DNC" law "$c" --format md > "docs/law/$c.md"
done
