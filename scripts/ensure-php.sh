#!/usr/bin/env bash
# The compat tests run the vendors' PHP examples against the gateway. Install Debian's
# php-cli and php-curl when a fresh machine lacks them.
set -euo pipefail
if command -v php >/dev/null 2>&1 && php -m 2>/dev/null | grep -qi '^curl$'; then
  exit 0
fi
echo "php with the curl extension not found; installing with apt-get" >&2
bash "$(dirname "$0")/apt-install.sh" php-cli php-curl
