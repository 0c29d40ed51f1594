# Shared by tools/run, tools/test and the benchmarks: install what the build
# needs, then configure and build. Source it; it defines functions only.

OC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Debian packages the build and the tests need (liblua5.1-0-dev: the
# interpreter Redis embeds, for the Redis model in sim/; libjsmn-dev: the
# bots' JSON reader in sim/). The live tests run
# /usr/bin/python3 with python3-websockets; tools/bench-net pins with
# taskset (util-linux).
OC_PACKAGES=(
  build-essential cmake pkg-config
  libevent-dev libwslay-dev libcjson-dev libcriterion-dev
  libsqlite3-dev libssl-dev libhttp-parser-dev
  libpq-dev postgresql
  libhiredis-dev redis-server liblua5.1-0-dev libjsmn-dev
  python3 python3-websockets util-linux
)
# What tools/test adds for the browser tests (tests/browser): Debian's
# chromium, driven headless by the npm package playwright-core (never a
# downloaded browser), and a font for its pages. node comes from
# oc_ensure_node, node_modules from oc_ensure_node_modules.
OC_BROWSER_PACKAGES=(chromium fonts-dejavu-core)

oc_missing_packages() {
  local p missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  echo "${missing[@]}"
}

# oc_ensure_packages PKG...: install missing packages when root; otherwise
# print the exact command to run and fail.
oc_ensure_packages() {
  local missing
  missing=$(oc_missing_packages "$@")
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: $missing" >&2
    echo "run: sudo apt-get update && sudo apt-get install -y $missing" >&2
    exit 1
  fi
  echo "installing: $missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >&2
}

# oc_ensure_node: node and npm for the browser tests. Debian's nodejs and
# npm are installed only when node is missing: a machine may carry its own
# node (NodeSource's nodejs package bundles npm, and Debian's npm would
# conflict with it).
oc_ensure_node() {
  if ! command -v node >/dev/null 2>&1; then
    oc_ensure_packages nodejs npm
  elif ! command -v npm >/dev/null 2>&1; then
    oc_ensure_packages npm
  fi
}

# oc_ensure_node_modules: node_modules from the committed package-lock.json,
# with npm ci, when it is missing or was installed from another lock file.
# --ignore-scripts: no install script runs (none may download a browser).
oc_ensure_node_modules() {
  local lock="$OC_ROOT/package-lock.json"
  local stamp="$OC_ROOT/node_modules/.oc-lock-sha256"
  [ -f "$lock" ] || return 0
  local want
  want=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "installing node_modules (npm ci)" >&2
  (cd "$OC_ROOT" && npm ci --ignore-scripts --no-audit --no-fund >&2)
  echo "$want" >"$stamp"
}

# oc_build DIR [cmake args...]: configure (once) and build into DIR.
oc_build() {
  local dir=$1
  shift
  cmake -S "$OC_ROOT" -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}
