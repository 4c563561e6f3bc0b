#!/usr/bin/env bash
# The subscribers table the shipped weekly_newsletter campaign reads (Connection subscribers_db), in a database
# of its own with a read-only login role. The postgres image runs /docker-entrypoint-initdb.d/*.sh once, as
# POSTGRES_USER, when its data volume is empty (after 10-campaign-ledger.sh; the .psql file beside it is ignored
# by the image and read by this script). The rows are those of scripts/seed_subscribers.py (make run's SQLite
# copy). On a volume created before this script existed, run it once by hand:
#   docker compose exec postgres /docker-entrypoint-initdb.d/20-subscribers.sh
# No `set -u` and no `exec`: the image sources this file when it is not executable.
set -eo pipefail

psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password \
    --username "${POSTGRES_USER:?}" --dbname "${POSTGRES_DB:?}" \
    --set audience_role="${SUBSCRIBERS_DB_USER:?set SUBSCRIBERS_DB_USER}" \
    --set audience_db="${SUBSCRIBERS_DB:?set SUBSCRIBERS_DB}" \
    --set audience_password="${SUBSCRIBERS_DB_PASSWORD:?set SUBSCRIBERS_DB_PASSWORD}" \
    --file "$(dirname "${BASH_SOURCE[0]}")/subscribers.psql"
