#!/usr/bin/env bash
# Install headless Chromium (Debian's `chromium` package) for the review page's browser test.
# Playwright drives it through executable_path=/usr/bin/chromium; we never run
# `playwright install` (it downloads its own browsers). Does nothing when chromium is present;
# exits 0 without installing when not root (the browser test then skips with a message).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install_browser.sh: /usr/bin/chromium missing and not root; the browser test will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "install_browser.sh: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
