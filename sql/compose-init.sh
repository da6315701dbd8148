#!/usr/bin/env bash
# First start of the compose Postgres (run from /docker-entrypoint-initdb.d while the data
# volume is empty, never again): Airflow's metadata database and the warehouse with the roles
# of docs/operations.md "Roles". Passwords come from .env through the container's environment;
# changing one in .env later does not change it here (ALTER ROLE ... PASSWORD, or a new volume).
#
#   airflow         login owning the `airflow` database (Airflow's metadata)
#   scoring_owner   group that will own the scoring schema and everything in it (deploys)
#   scoring_writer  group the runs use: rows in, no DDL
#   scoring_reader  group for analysts: SELECT only
#   scoring_deploy  login in scoring_owner: the airflow-init service's `python -m pipeline migrate`
#   nightly         login in scoring_writer: Airflow's connection `warehouse` (AIRFLOW_CONN_WAREHOUSE)
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?}" "${SCORING_DEPLOY_PASSWORD:?}" "${SCORING_WRITER_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v airflow_pw="$AIRFLOW_DB_PASSWORD" \
  -v deploy_pw="$SCORING_DEPLOY_PASSWORD" \
  -v writer_pw="$SCORING_WRITER_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
REVOKE CONNECT ON DATABASE airflow FROM PUBLIC;

CREATE DATABASE warehouse;
CREATE ROLE scoring_owner NOLOGIN;
CREATE ROLE scoring_writer NOLOGIN;
CREATE ROLE scoring_reader NOLOGIN;
GRANT CREATE ON DATABASE warehouse TO scoring_owner;
CREATE ROLE scoring_deploy LOGIN PASSWORD :'deploy_pw' IN ROLE scoring_owner;
CREATE ROLE nightly LOGIN PASSWORD :'writer_pw' IN ROLE scoring_writer;
SQL
