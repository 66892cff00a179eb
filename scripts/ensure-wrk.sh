#!/usr/bin/env bash
# The benchmark cross-checks /healthz and initiation with wrk (bench/wrk.py): the httpx
# generator tops out near 2k req/s. Install Debian's wrk when a machine lacks it.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
echo "wrk not found; installing with apt-get" >&2
bash "$(dirname "$0")/apt-install.sh" wrk
