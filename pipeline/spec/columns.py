"""A spec against the source table's columns: each named column exists with a type its role
allows (the types come from the warehouse's catalog)."""

from pipeline.errors import SpecError
from pipeline.spec.job import JobSpec

NUMERIC_TYPES = {"smallint", "integer", "bigint", "real", "double precision", "numeric"}
TIMESTAMP_TYPES = {"timestamp with time zone", "timestamp without time zone", "date"}
# The Postgres types a column may have for the role the spec gives it.
ALLOWED_TYPES = {
    "source.timestamp": TIMESTAMP_TYPES,
    "source.label_timestamp": TIMESTAMP_TYPES,
    "features.numeric": NUMERIC_TYPES,
    "features.boolean": {"boolean"},
}


def check_columns(spec: JobSpec, columns: dict[str, str]) -> None:
    """Fail naming the spec file and key when a column is missing or has the wrong type."""
    where = f"{spec.path}: "
    wanted = [
        ("source.key", spec.source.key),
        ("source.timestamp", spec.source.timestamp),
        ("target", spec.target),
    ]
    if spec.source.label_timestamp:
        wanted.append(("source.label_timestamp", spec.source.label_timestamp))
    for kind in ("numeric", "categorical", "boolean"):
        for i, column in enumerate(getattr(spec.features, kind)):
            wanted.append((f"features.{kind}[{i}]", column))
    for key, column in wanted:
        if column not in columns:
            raise SpecError(
                f"{where}{key}: column {column!r} not found in table {spec.source.table} "
                f"(it has: {', '.join(sorted(columns))})"
            )
        role = key.split("[")[0]
        allowed = ALLOWED_TYPES.get(role)
        if role == "target" and spec.task == "regression":
            allowed = NUMERIC_TYPES
        if allowed and columns[column] not in allowed:
            raise SpecError(
                f"{where}{key}: column {spec.source.table}.{column} has type "
                f"{columns[column]!r}; a {role} column must be one of {sorted(allowed)}"
            )
