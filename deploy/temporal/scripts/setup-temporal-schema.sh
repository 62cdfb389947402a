#!/bin/sh
# Create or upgrade Temporal's PostgreSQL schemas (persistence + visibility).
# Runs in temporalio/admin-tools (it ships temporal-sql-tool and the versioned
# schema files); safe to run on every start: a database is created and given
# its version tables once, and update-schema only applies missing versions.
#
# Environment:
#   POSTGRES_SEEDS          database host                       (default postgresql)
#   DB_PORT                 database port                       (default 5432)
#   POSTGRES_USER           database user                       (default temporal)
#   POSTGRES_PWD_FILE       file holding the database password  (required)
#   TEMPORAL_DB             persistence database name           (default temporal)
#   TEMPORAL_VISIBILITY_DB  visibility database name            (default temporal_visibility)
set -eu

host=${POSTGRES_SEEDS:-postgresql}
port=${DB_PORT:-5432}
user=${POSTGRES_USER:-temporal}
SQL_PASSWORD=$(cat "${POSTGRES_PWD_FILE:?POSTGRES_PWD_FILE must name the password file}")
export SQL_PASSWORD
schema_dir=/etc/temporal/schema/postgresql/v12

sql() {
    temporal-sql-tool --plugin postgres12 --ep "$host" -p "$port" -u "$user" "$@"
}

for pair in "${TEMPORAL_DB:-temporal}:temporal" \
            "${TEMPORAL_VISIBILITY_DB:-temporal_visibility}:visibility"; do
    db=${pair%%:*}
    kind=${pair#*:}
    if sql --db "$db" create; then
        # A brand-new database: add the schema version tables at version 0.0.
        # Never on an existing one (that would record version 0.0 again).
        echo "Created database $db"
        sql --db "$db" setup-schema -v 0.0
    else
        echo "Database $db exists (or could not be created); upgrading it in place"
    fi
    # Applies only the versions newer than the recorded one.
    if ! sql --db "$db" update-schema -d "$schema_dir/$kind/versioned"; then
        echo "update-schema failed for $db. If the database exists without Temporal's" >&2
        echo "schema_version table (an interrupted first run), drop it and start again." >&2
        exit 1
    fi
done
echo "Temporal schemas are up to date"
