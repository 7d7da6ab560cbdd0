# Helpers for the setup files that follow (sourced in name order by tests/run-all.sh), and the
# Debian packages every part of the suite uses. Each later file installs only its own needs.
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

# need_packages PKG...: install the Debian packages that are not installed yet.
need_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  if [ -z "${INITBOX_APT_UPDATED:-}" ]; then
    $SUDO apt-get update -qq
    INITBOX_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# need_pip PKG...: install Python packages that are not importable/installed yet.
need_pip() {
  local missing=()
  for p in "$@"; do
    python3 -m pip show -q "${p%%[=<>\[]*}" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "pip installing: ${missing[*]}"
  # Debian 12's python3 is "externally managed" (PEP 668): pip refuses to install into it
  # unless told to; a test machine's python is the tests' to manage.
  local extra=()
  python3 -m pip install --help 2>/dev/null | grep -q -- --break-system-packages && extra+=(--break-system-packages)
  python3 -m pip install -q --disable-pip-version-check "${extra[@]}" "${missing[@]}"
}

# wait_port HOST PORT SECONDS: until something accepts on HOST:PORT.
wait_port() {
  local host=$1 port=$2 secs=${3:-60} i=0
  until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -ge $((secs * 10)) ] && { echo "nothing listens on $host:$port after ${secs}s" >&2; return 1; }
    sleep 0.1
  done
}

need_packages dnsmasq-base iproute2 busybox netcat-openbsd
command -v python3 >/dev/null || need_packages python3 python3-pip
