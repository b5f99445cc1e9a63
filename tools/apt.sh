# Sourced by tools/dev.sh and tools/ci/stage-*.sh: installs Debian packages
# only when missing (root, or sudo). The caller defines log().

# need_apt PKG...: installs the packages not yet installed.
need_apt() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing system packages: ${missing[*]}"
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# need_apt_lists PKG...: refreshes the package lists unless apt already knows
# every PKG (for `apt-get download`, which needs no install).
need_apt_lists() {
  local p
  for p in "$@"; do
    apt-cache show "$p" >/dev/null 2>&1 && continue
    log "refreshing the package lists (apt does not know $p)"
    apt_get update -qq
    return
  done
}

apt_get() {
  if [ "$(id -u)" -eq 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi
}
