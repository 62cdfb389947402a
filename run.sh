#!/usr/bin/env bash
# ebs: set up what is missing, then run.
#   ./run.sh dev [ebs dev options]   the embedded default: dev server, worker, bridge, API, simulator
#   ./run.sh test [pytest options]   the test suite (what CI runs)
# Idempotent: system packages and the venv are installed only when missing or stale.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

log() { printf '[ebs setup] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root or sudo to install: $*"; exit 1; fi
}

install_system_packages() {
    # gssapi (for koji's Kerberos login) needs the krb5 headers; tests and `ebs dev`
    # need a RabbitMQ server; git for config-from-git. The real-stack tests
    # (tests/realstack/) need PostgreSQL, rpm/rpmbuild and python3-rpm (the Koji hub),
    # and python3-librepo, python3-createrepo-c, libpq-dev (the Bodhi server).
    if command -v apt-get >/dev/null; then
        local want=(libkrb5-dev rabbitmq-server gcc python3-dev python3-venv git)
        [ "$cmd" = test ] && want+=(chromium chromium-driver)  # the status page's browser test
        want+=(postgresql rpm python3-rpm python3-librepo python3-createrepo-c libpq-dev)
        local missing=()
        for p in "${want[@]}"; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        # A Python built outside Debian (pyenv) needs neither python3-dev nor -venv.
        if python3 -c 'import venv, sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' 2>/dev/null; then
            missing=("${missing[@]/python3-dev}"); missing=("${missing[@]/python3-venv}")
        fi
        local todo=()
        for p in "${missing[@]}"; do [ -n "$p" ] && todo+=("$p"); done
        if [ ${#todo[@]} -gt 0 ]; then
            log "installing ${todo[*]}"
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${todo[@]}" >/dev/null
        fi
    elif command -v dnf >/dev/null; then
        local want=(krb5-devel rabbitmq-server gcc python3-devel git)
        [ "$cmd" = test ] && want+=(chromium chromedriver)
        want+=(postgresql-server rpm-build python3-rpm python3-librepo python3-createrepo_c
               libpq-devel)
        local todo=()
        for p in "${want[@]}"; do rpm -q "$p" >/dev/null 2>&1 || todo+=("$p"); done
        if [ ${#todo[@]} -gt 0 ]; then
            log "installing ${todo[*]}"
            as_root dnf install -y -q "${todo[@]}"
        fi
    else
        log "neither apt-get nor dnf found: install krb5 headers, rabbitmq-server, gcc, git," \
            "postgresql, rpmbuild, python3-rpm, python3-librepo, python3-createrepo-c," \
            "libpq headers yourself"
    fi
}

setup_venv() {
    local stamp=.venv/.ebs-installed
    local want
    want=$(cat pyproject.toml messages/pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    log "creating .venv and installing ebs with its test extras"
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    # The message schema package first: ebs depends on it, and it is not on PyPI.
    .venv/bin/python -m pip install -q -e ./messages
    .venv/bin/python -m pip install -q -e '.[test]'
    echo "$want" > "$stamp"
}

setup_realstack() {
    # The real Koji hub's own venv (.realstack/hub-venv), when its source is here
    # (../shared/vendor/koji-hub-*.tar.gz or $EBS_KOJI_HUB_SRC), and the real Bodhi
    # server's (.realstack/bodhi-venv); idempotent.
    if .venv/bin/python -c 'import sys; from tests.realstack.hubenv import hub_source; sys.exit(0 if hub_source() else 1)' 2>/dev/null; then
        .venv/bin/python -m tests.realstack.hubenv >/dev/null
        .venv/bin/python -m tests.realstack.bodhi_stack >/dev/null
    else
        log "no Koji hub source: the realstack tests will be skipped (set EBS_KOJI_HUB_SRC)"
    fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    dev)
        install_system_packages
        setup_venv
        exec .venv/bin/ebs dev "$@"
        ;;
    test)
        install_system_packages
        setup_venv
        setup_realstack
        .venv/bin/ruff check ebs tests bench
        .venv/bin/mypy
        exec .venv/bin/pytest "$@"
        ;;
    setup)
        install_system_packages
        setup_venv
        setup_realstack
        ;;
    *)
        echo "usage: ./run.sh dev|test|setup [options]" >&2
        exit 2
        ;;
esac
