"""Snapshot queries: identifiers are quoted pieces, the cut-off is a bound parameter."""

from pathlib import Path

import pyarrow as pa
import pytest
from psycopg2 import sql

from pipeline.datafiles.parquet import arrow_schemas
from pipeline.errors import PipelineError
from pipeline.spec import load_spec
from pipeline.warehouse.sources import build_snapshot_query

SPEC = load_spec(Path(__file__).resolve().parents[2] / "dags" / "jobs" / "customer_churn.yaml")
TYPES = {
    "customer_id": "bigint",
    "updated_at": "timestamp with time zone",
    "tenure_months": "integer",
    "monthly_charges": "double precision",
    "support_calls": "integer",
    "last_login_days": "integer",
    "plan": "text",
    "region": "text",
    "payment_method": "text",
    "is_senior": "boolean",
    "has_partner": "boolean",
    "autopay": "boolean",
    "churned": "boolean",
}


def flatten(node) -> list:
    """The leaves of a psycopg2 Composed: SQL fragments and Identifiers."""
    if isinstance(node, sql.Composed):
        return [leaf for part in node.seq for leaf in flatten(part)]
    return [node]


def parts(kind: str):
    leaves = flatten(build_snapshot_query(SPEC, kind, TYPES))
    text = "".join(leaf.string for leaf in leaves if isinstance(leaf, sql.SQL))
    idents = [leaf.strings for leaf in leaves if isinstance(leaf, sql.Identifier)]
    return text, idents


def test_training_query_selects_target_and_filters_known_labels():
    text, idents = parts("training")
    assert ("demo", "customers") in idents
    assert ("churned",) in idents
    assert text.count("%(as_of)s") == 1
    assert "IS NOT NULL" in text
    assert text.rstrip().endswith("ORDER BY")  # followed by the key identifier
    assert idents[-1] == ("customer_id",)


def test_scoring_query_has_no_target():
    text, idents = parts("scoring")
    assert ("churned",) not in idents
    assert "IS NOT NULL" not in text


def test_no_name_from_the_spec_is_pasted_into_sql_text():
    text, _ = parts("training")
    for column in SPEC.snapshot_columns("training"):
        assert column not in text
    assert "demo" not in text


def test_timestamptz_is_read_as_utc():
    text, _ = parts("scoring")
    assert "AT TIME ZONE 'UTC'" in text
    _, schema = arrow_schemas(SPEC, "scoring", TYPES)
    assert schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("is_senior").type == pa.bool_()
    assert schema.names == SPEC.snapshot_columns("scoring")


def test_unsupported_column_type_names_the_column():
    with pytest.raises(PipelineError, match=r"demo.customers.plan has type 'jsonb'"):
        arrow_schemas(SPEC, "scoring", {**TYPES, "plan": "jsonb"})


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="snapshot kind"):
        build_snapshot_query(SPEC, "everything", TYPES)
