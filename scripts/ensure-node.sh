#!/usr/bin/env bash
# The webhooks page's Node.js verifier (examples/verify_webhook.js) runs in the suite.
# Install Debian's nodejs when a fresh machine lacks it.
set -euo pipefail
if command -v node >/dev/null 2>&1; then
  exit 0
fi
echo "node not found; installing nodejs with apt-get" >&2
bash "$(dirname "$0")/apt-install.sh" nodejs
