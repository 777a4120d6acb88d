#!/usr/bin/env bash
# Browser tests: JupyterLab and Voila driven by Debian's Chromium through Python Playwright.
#
# Called by `make e2e` (part of `make test`) after the venv is installed. Installs Debian's
# chromium when it is missing and we may (root + apt-get); otherwise skips with a message,
# except under CI, where a missing browser is a failure. Never runs `playwright install`: that
# downloads a browser build, and this machine has no network beyond the package registries.
#
# Extra arguments go to pytest, e.g. `bash tests/e2e/run.sh -k voila -x`.
set -euo pipefail

cd "$(dirname "$0")/../.."
CHROMIUM="${COMPRESSLAB_CHROMIUM:-/usr/bin/chromium}"
PYTHON=".venv/bin/python"
SUITE_TIMEOUT="${E2E_TIMEOUT:-2400}"   # seconds for the whole browser suite

skip_or_fail() {
    if [ -n "${CI:-}" ] && [ "${CI}" != "false" ] && [ "${CI}" != "0" ]; then
        echo "FAIL: browser tests cannot run under CI: $1" >&2
        exit 1
    fi
    echo "skipping browser tests: $1"
    echo "(install Debian's chromium, e.g. 'sudo apt-get install chromium', to run them)"
    exit 0
}

if [ ! -x "$PYTHON" ]; then
    skip_or_fail "$PYTHON is missing (run 'make test', which creates the venv)"
fi

if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's chromium (and fonts for the screenshots) with apt-get ..."
        log="$(mktemp)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends chromium fonts-dejavu-core fonts-liberation fonts-wqy-microhei; } >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            rm -f "$log"
            skip_or_fail "apt-get could not install chromium"
        fi
        rm -f "$log"
    else
        skip_or_fail "$CHROMIUM is missing and this user cannot install it (needs root and apt-get)"
    fi
fi
if [ ! -x "$CHROMIUM" ]; then
    skip_or_fail "$CHROMIUM is still missing after apt-get install chromium"
fi

# A Chinese font, so the zh app's screenshots show characters rather than empty boxes.
if ! fc-list :lang=zh 2>/dev/null | grep -q . && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing a Chinese font (fonts-wqy-microhei) with apt-get ..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-wqy-microhei >/dev/null 2>&1 \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
             fonts-wqy-microhei; } >/dev/null 2>&1 || echo "warning: no Chinese font; zh screenshots will show boxes" >&2
fi

if ! "$PYTHON" -c "import playwright.sync_api" 2>/dev/null; then
    skip_or_fail "Python playwright is not in the venv (it is in the dev extra: pip install -e '.[dev]')"
fi

mkdir -p test-artifacts
start=$(date +%s)
status=0
timeout --kill-after=30 "$SUITE_TIMEOUT" "$PYTHON" -m pytest tests/e2e -q -p no:cacheprovider \
    --timeout=900 "$@" || status=$?
echo "browser suite took $(( $(date +%s) - start )) s (screenshots and server logs in test-artifacts/)"
if [ "$status" = "124" ]; then
    echo "FAIL: the browser suite exceeded ${SUITE_TIMEOUT} s" >&2
fi
exit "$status"
