#!/bin/sh
# Register ebs's custom search attributes on a Temporal namespace (idempotent).
#
# Runs with only the `temporal` CLI: in temporalio/admin-tools (compose) or in the
# ebs image itself (Helm pre-install/pre-upgrade hook, /usr/local/libexec/ebs/).
# Creating an attribute that already exists with the same type is a no-op; one
# that exists with another type fails loudly (fix it by hand, never silently).
#
# Environment (the TEMPORAL_* names are the CLI's own):
#   TEMPORAL_ADDRESS        host:port of the frontend          (default localhost:7233)
#   TEMPORAL_NAMESPACE      namespace to register on           (default default)
#   TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH,
#   TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME   TLS, read by the CLI
#   TEMPORAL_API_KEY_FILE   file holding an API key (exported as TEMPORAL_API_KEY)
#   EBS_CREATE_NAMESPACE    "true": create the namespace first if missing (own cluster only)
#   EBS_NAMESPACE_RETENTION retention for a namespace this script creates (default 30d)
#   EBS_WAIT_SECONDS        how long to wait for the cluster and namespace (default 300)
set -eu

# name:type pairs; must match ebs.temporal_client.SEARCH_ATTRIBUTES (checked by
# tests/deploy/test_deploy_scripts.py).
ATTRIBUTES="EbsPackages:KeywordList EbsPhase:Keyword EbsOutcome:Keyword EbsConfigVersion:Keyword"

ns=${TEMPORAL_NAMESPACE:-default}
wait_seconds=${EBS_WAIT_SECONDS:-300}
retention=${EBS_NAMESPACE_RETENTION:-30d}

if [ -n "${TEMPORAL_API_KEY_FILE:-}" ]; then
    TEMPORAL_API_KEY=$(cat "$TEMPORAL_API_KEY_FILE")
    export TEMPORAL_API_KEY
fi

deadline=$(( $(date +%s) + wait_seconds ))

# retry DESCRIPTION COMMAND...: run COMMAND until it succeeds or the deadline passes.
retry() {
    what=$1
    shift
    while ! "$@"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "register-search-attributes: gave up after ${wait_seconds}s: $what" >&2
            return 1
        fi
        sleep 2
    done
}

echo "Waiting for Temporal at ${TEMPORAL_ADDRESS:-localhost:7233}"
retry "cluster health" temporal operator cluster health >/dev/null

if [ "${EBS_CREATE_NAMESPACE:-false}" = "true" ]; then
    if temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1; then
        echo "Namespace $ns exists"
    else
        echo "Creating namespace $ns (retention $retention)"
        temporal operator namespace create --namespace "$ns" --retention "$retention"
    fi
fi

# create_attribute NAME TYPE: succeed when it exists with TYPE, fail at once when it
# exists with another type, retry anything else (a namespace created a moment ago
# takes a few seconds to reach every service's cache).
create_attribute() {
    while :; do
        if out=$(temporal operator search-attribute create --namespace "$ns" \
                --name "$1" --type "$2" 2>&1); then
            echo "$out"
            return 0
        fi
        case $out in
            *"different type"*)
                echo "register-search-attributes: $out" >&2
                return 1
                ;;
        esac
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "register-search-attributes: gave up after ${wait_seconds}s on $1: $out" >&2
            return 1
        fi
        sleep 2
    done
}

for pair in $ATTRIBUTES; do
    name=${pair%%:*}
    type=${pair#*:}
    echo "Search attribute $name ($type) on $ns"
    create_attribute "$name" "$type"
done

echo "Search attributes registered on $ns"
