# Shared by tools/run, tools/test and the benchmarks: install what the build
# needs, then configure and build. Source it; it defines functions only.

OC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Debian packages the build and the tests need.
OC_PACKAGES=(
  build-essential cmake pkg-config
  libevent-dev libwslay-dev libcjson-dev libcriterion-dev
  libsqlite3-dev libssl-dev libhttp-parser-dev
)

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

# oc_build DIR [cmake args...]: configure (once) and build into DIR.
oc_build() {
  local dir=$1
  shift
  cmake -S "$OC_ROOT" -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}
