"""Nightly batch scoring of Postgres tables: snapshot, validate, train, gate, score, publish.

Everything here is plain Python; only `pipeline.orchestration` imports Airflow.
"""

__version__ = "0.1.0"
