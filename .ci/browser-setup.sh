#!/usr/bin/env bash
# Installs what the report and its browser tests (tests/browser_env.py) need, from Debian's packages only:
#   chromium         the headless browser the tests load the report in (driven by selenium, a pip package)
#   chromium-driver  chromedriver, at /usr/bin/chromedriver
#   graphviz         dot, which lays out the report's pictures (atmos_tasks/report.py)
#   npm              fetches axe-core, the accessibility checker, from the npm registry; only when no npm is found
# Idempotent, non-interactive; starts nothing.
set -euo pipefail

packages=(chromium chromium-driver graphviz)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "browser-setup: all present (${packages[*]} npm)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "browser-setup: need root to install: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: chromium recommends desktop pieces (upower, notification daemons) a headless run never uses.
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "browser-setup: installed ${missing[*]}"
