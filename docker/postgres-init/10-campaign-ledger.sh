#!/usr/bin/env bash
# The delivery ledger's own PostgreSQL role and database, next to (not inside) Airflow's metadata database.
# The postgres image runs /docker-entrypoint-initdb.d/*.sh once, as POSTGRES_USER, when its data volume is
# empty (docker-compose.yml mounts this folder there; the .psql file beside it is ignored by the image and
# read by this script). On a volume created before this script existed, run it once by hand:
#   docker compose exec postgres /docker-entrypoint-initdb.d/10-campaign-ledger.sh
# No `set -u` and no `exec`: the image sources this file when it is not executable.
set -eo pipefail

psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password \
    --username "${POSTGRES_USER:?}" --dbname "${POSTGRES_DB:?}" \
    --set ledger_role="${CAMPAIGN_LEDGER_USER:?set CAMPAIGN_LEDGER_USER}" \
    --set ledger_db="${CAMPAIGN_LEDGER_DB:?set CAMPAIGN_LEDGER_DB}" \
    --set ledger_password="${CAMPAIGN_LEDGER_PASSWORD:?set CAMPAIGN_LEDGER_PASSWORD}" \
    --set metadata_db="$POSTGRES_DB" \
    --file "$(dirname "${BASH_SOURCE[0]}")/campaign-ledger.psql"
