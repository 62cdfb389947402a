#!/usr/bin/env bash
# One-off install of the real Bodhi server for the realstack tests, in its own
# venv (never ebs's .venv): .realstack/bodhi-venv under the project root.
# Idempotent: a stamp naming the versions makes a second run a no-op.
#   usage: tests/realstack/install_bodhi.sh [VENV_DIR]
# Needs Debian packages (installed here when missing, as root):
#   python3-rpm python3-librepo python3-createrepo-c libpq-dev libkrb5-dev python3-venv python3-dev gcc
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${1:-$root/.realstack/bodhi-venv}"
BODHI_VERSION=26.4.0
stamp="$venv/.bodhi-installed"
want="bodhi-server==$BODHI_VERSION bodhi-client==$BODHI_VERSION waitress"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

debs=(python3-rpm python3-librepo python3-createrepo-c libpq-dev libkrb5-dev python3-venv python3-dev gcc)
missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install_bodhi.sh: missing Debian packages: ${missing[*]} (run as root or apt-get install them)" >&2
        exit 1
    fi
    apt-get -o DPkg::Lock::Timeout=600 update -q
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}"
fi

rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv "$venv"
# rpm, librepo, createrepo_c come from Debian: expose just those modules
# through a directory of symlinks named by a .pth file.
links="$venv/debian-modules"
mkdir -p "$links"
for mod in rpm librepo createrepo_c; do
    src=$(/usr/bin/python3 -c "import $mod, os; print(os.path.dirname($mod.__file__))")
    ln -sfn "$src" "$links/$mod"
done
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$links" > "$site/debian-modules.pth"
"$venv/bin/pip" install -q $want
"$venv/bin/python" -c 'import rpm, librepo, createrepo_c, bodhi.server, waitress, psycopg2'
echo "$want" > "$stamp"
