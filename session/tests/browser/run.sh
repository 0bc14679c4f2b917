#!/bin/sh
# The browser client's tests: the codec and client in Node, then the demo page
# in Debian's chromium against the `session` example server.
#   WEFT_SESSION_SERVER  path of a built `session` example binary (required)
#   WEFT_CHROMIUM        chromium binary (default /usr/bin/chromium)
set -eu
cd "$(dirname "$0")"
chromium_bin="${WEFT_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium_bin" ]; then
  echo "run.sh: $chromium_bin not found (apt-get install -y chromium)" >&2
  exit 1
fi
if [ -z "${WEFT_SESSION_SERVER:-}" ] || [ ! -x "$WEFT_SESSION_SERVER" ]; then
  echo "run.sh: set WEFT_SESSION_SERVER to a built session example binary" >&2
  exit 1
fi
npm ci --no-audit --no-fund
node --test codec.test.mjs client.test.mjs browser.test.mjs
