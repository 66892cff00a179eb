#!/usr/bin/env bash
# The test suite starts its own throwaway PostgreSQL cluster; it needs the server
# binaries (initdb, pg_ctl). Install them from Debian when a fresh machine lacks them.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
echo "PostgreSQL server binaries not found; installing with apt-get" >&2
bash "$(dirname "$0")/apt-install.sh" postgresql
