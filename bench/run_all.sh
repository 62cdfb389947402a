#!/usr/bin/env bash
# Every ebs benchmark, one after the other; JSON lines go to $OUT.
#
#   bench/run_all.sh                 # up to 30,000 packages (about 25 minutes)
#   QUICK=1 bench/run_all.sh         # 1,000 packages only (about 3 minutes)
#   ENGINE=/tmp/ebs-proto bench/run_all.sh   # the worker from a prototype checkout
#
# Each script also prints a human summary; see bench/README.md for what the
# figures mean and the latest results.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-$root/.venv/bin/python}"
out="${OUT:-$here/results.jsonl}"
engine=()
if [[ -n "${ENGINE:-}" ]]; then
    engine=(--engine "$ENGINE")
fi

run() {
    echo "== $*" >&2
    "$python" "$here/$1" "${@:2}" "${engine[@]}" --out "$out" | grep -v '^{' || true
}

run mass_rebuild.py --packages 1000
run components_view.py --components 10000
run koji_load.py --packages 1000 --mode both
run koji_load.py --packages 1000 --mode lost --build-seconds 60
if command -v rabbitmq-server >/dev/null 2>&1 || [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
    run latency.py --packages 1000 --spread 60
    run latency.py --packages 1000 --spread 0
else
    echo "rabbitmq-server not installed: latency through the in-process bridge" >&2
    run latency.py --packages 1000 --spread 60 --path direct
fi
run signal_load.py --packages 2000 --rate 300
if [[ -z "${QUICK:-}" ]]; then
    run mass_rebuild.py --packages 3000
    run mass_rebuild.py --packages 10000
    run mass_rebuild.py --packages 30000 --timeout 3600
fi
echo "results appended to $out" >&2
