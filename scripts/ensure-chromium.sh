#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests when it is missing and we are root.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "chromium is missing and this is not root: install it with" >&2
  echo "  sudo apt-get install -y --no-install-recommends chromium fonts-liberation" >&2
  echo "(the browser tests will fail without it)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
chromium --version
