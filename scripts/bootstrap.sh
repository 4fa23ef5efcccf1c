#!/usr/bin/env bash
# Installs what the gateway (and, with "test", the test suite) needs: a virtualenv in .venv with the
# package and its Python dependencies, and for tests the Debian packages the suite drives for real
# (redis-server, chromium + chromium-driver, sip-tester, tshark, faketime, kamailio). Idempotent and quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."
want="${1:-run}"

if [ "$want" = test ]; then
  missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  command -v sipp >/dev/null || missing+=(sip-tester)
  command -v tshark >/dev/null || missing+=(tshark)
  command -v faketime >/dev/null || missing+=(faketime)
  command -v kamailio >/dev/null || [ -x /usr/sbin/kamailio ] || missing+=(kamailio)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "bootstrap: installing ${missing[*]}" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "bootstrap: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}); the tests that need them will be skipped" >&2
    fi
  fi
fi

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "bootstrap: Python 3.11 or newer is needed ($PY is $("$PY" -V 2>&1))" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
extras="fast"
[ "$want" = test ] && extras="fast,test"
stamp=".venv/.installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
  touch "$stamp"
fi
