#!/usr/bin/env bash
# Install everything voxgate needs on a fresh Debian/Ubuntu machine, then build it.
# Idempotent: apt runs only when a package is missing. Nothing is downloaded except through apt
# and the npm registry (native addons build against /usr/include/node).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # PocketSphinx engine: library, headers and the US English model (acoustic model, 3-gram LM, CMUdict)
  libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us pkg-config
  # TTS engines (flite: English voices; espeak-ng: ~130 languages incl. Hindi) and the mp3/opus encoder
  espeak-ng flite ffmpeg
  # native addon toolchain (node-gyp)
  g++ make python3
  # compressed audio: Ogg/WebM Opus, FLAC, M4A/AAC decoding (one child process per stream) and test fixtures
  ffmpeg
  # setpriv --pdeathsig: engine processes die with the gateway (normally present: util-linux is essential)
  util-linux
  # shared state for scale-out tests (issue 12): Redis and PostgreSQL servers, started by the tests
  redis-server postgresql
  # headless browser for the playground test (test/playground.test.ts, driven by playwright-core)
  chromium
  # compressed audio (Ogg/WebM Opus, FLAC, M4A) decoding, one child process per stream
  ffmpeg
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing apt packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Build native addons (ours and better-sqlite3) against the local Node headers, never downloaded ones.
export npm_config_nodedir=/usr
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ ! -f native/build/Release/psaddon.node ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
echo "setup: done"
