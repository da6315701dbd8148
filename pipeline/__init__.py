"""Nightly batch scoring of Postgres tables: snapshot, validate, train, gate, score, publish.

Everything here is plain Python; only `pipeline.orchestration` imports Airflow. Great
Expectations' bookkeeping loggers are quieted here, before any module can import GX.
"""

from pipeline.validation.quiet import quiet_gx

__version__ = "0.1.0"

quiet_gx()
