# Sourced by the scripts that make Python venvs (scripts/bench-venv, scripts/python-test,
# scripts/openai-venv, scripts/s3-venv).

# new_venv DIR: (re)creates an empty venv at DIR with the system python3, first installing
# python3-venv with apt-get when `python3 -m venv` has no ensurepip (a fresh Debian).
new_venv() {
  local venv=$1
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    local pyver SUDO=""
    pyver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "venv: python3 has no ensurepip; installing python3-venv python${pyver}-venv"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv "python${pyver}-venv" >/dev/null
  fi
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
}

# one_at_a_time NAME: holds the lock target/.NAME.lock until the script exits, so that runs
# started together (tests running in parallel, each making sure the venv exists) make it once
# and the others wait, then find it ready.
one_at_a_time() {
  mkdir -p target
  exec 9>"target/.$1.lock"
  flock 9
}
