# The image every Airflow process of docker-compose.yaml runs: Airflow plus this package.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.txt /opt/scoring/requirements.txt
RUN pip install --no-cache-dir -r /opt/scoring/requirements.txt

COPY --chown=airflow:root pyproject.toml /opt/scoring/
COPY --chown=airflow:root pipeline /opt/scoring/pipeline
COPY --chown=airflow:root sql /opt/scoring/sql
COPY --chown=airflow:root expectations /opt/scoring/expectations
COPY --chown=airflow:root dags /opt/scoring/dags
# Without the build's egg-info: on PYTHONPATH it would be a second copy of the package's
# metadata, and Airflow skips the plugins after a plugin it sees twice (OpenLineage's among them).
RUN pip install --no-cache-dir --no-deps -e /opt/scoring && rm -rf /opt/scoring/*.egg-info

# The project root first on the path: `pipeline` is this project's, whatever else is installed.
ENV PYTHONPATH=/opt/scoring \
    SCORING_JOBS_DIR=/opt/scoring/dags/jobs \
    SCORING_EXPECTATIONS_DIR=/opt/scoring/expectations \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/scoring/dags
