#!/usr/bin/env bash
# The dashboard's browser tests drive Debian's Chromium through Playwright (never a
# Playwright browser download). Install the package when a fresh machine lacks it.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "chromium not found; installing Debian's package with apt-get" >&2
bash "$(dirname "$0")/apt-install.sh" chromium
