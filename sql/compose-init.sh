#!/usr/bin/env bash
# First start of the compose Postgres: Airflow's metadata DB and the warehouse, each with its
# own login role. The group roles are made here (the scoring login has no CREATEROLE), so the
# roles migration finds them and only grants.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username postgres \
  -v airflow_pw="$AIRFLOW_DB_PASSWORD" -v scoring_pw="$SCORING_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE scoring LOGIN PASSWORD :'scoring_pw';
CREATE DATABASE warehouse OWNER scoring;
CREATE ROLE scoring_writer NOLOGIN;
CREATE ROLE scoring_reader NOLOGIN;
GRANT scoring_writer TO scoring;
SQL
