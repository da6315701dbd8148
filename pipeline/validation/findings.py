"""What failed, in words a person can act on: each failed expectation described, the checks
the pipeline makes besides the suites (future timestamps, NaN, rows with no feature), and the
message that stops a run."""

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.contracts import Manifest, Validation, plain_json
from pipeline.logic.personal import mask
from pipeline.spec import JobSpec
from pipeline.validation.gx import SAMPLE_VALUES


def describe_failure(result) -> dict:
    """One failed expectation as a dict a person can read: what, where, observed, samples."""
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "result_format")}
    details = result.result or {}
    observed = details.get("observed_value")
    samples = details.get("partial_unexpected_list") or []
    exception = (
        (result.exception_info or {}).get("exception_message") if result.exception_info else None
    )
    parts = [config.type]
    if "column" in kwargs:
        parts.append(f"column {kwargs['column']!r}")
    if observed is not None:
        parts.append(f"observed {observed!r}")
    if details.get("unexpected_count"):
        parts.append(
            f"{details['unexpected_count']} unexpected"
            f" ({details.get('unexpected_percent', 0):.2f}%)"
        )
    if samples:
        parts.append(f"e.g. {[short(v) for v in samples[:SAMPLE_VALUES]]}")
    if exception:
        parts.append(f"error: {exception}")
    expected = {k: v for k, v in kwargs.items() if k != "column"}
    if expected:
        parts.append(f"expected {expected}")
    meta = config.meta or {}
    return {
        "expectation": config.type,
        "column": kwargs.get("column"),
        "severity": meta.get("severity", "critical"),
        "observed": observed,
        "unexpected_count": details.get("unexpected_count"),
        "samples": [short(v) for v in samples[:SAMPLE_VALUES]],
        "guards": meta.get("notes"),
        "message": "; ".join(parts),
    }


def future_rows_failure(spec: JobSpec, manifest: Manifest) -> list[dict]:
    """A warning for rows dated in the future: the cut-off left them out, a person should know."""
    future = manifest.future_rows or {}
    if not future.get("count"):
        return []
    column = spec.source.timestamp
    return [
        {
            "expectation": "timestamps_not_in_the_future",
            "column": column,
            "severity": "warning",
            "observed": future["count"],
            "unexpected_count": future["count"],
            "samples": future["sample_keys"],
            "guards": "future-dated rows mean a broken clock or load; the snapshot left them out",
            "message": f"timestamps_not_in_the_future; column {column!r}; {future['count']} rows "
            f"dated after the snapshot was taken, e.g. keys {future['sample_keys']}",
        }
    ]


def nan_failures(spec: JobSpec, parquet) -> list[dict]:
    """A warning per numeric feature holding NaN: not a missing value but a broken computation.

    pandas (and so GX) cannot tell NaN from NULL; Arrow can, so this check reads the snapshot,
    one column of one row group at a time.
    """
    out = []
    schema = parquet.schema_arrow
    for column in spec.features.numeric:
        if column not in schema.names or not pa.types.is_floating(schema.field(column).type):
            continue
        count = sum(
            pc.sum(pc.is_nan(parquet.read_row_group(g, columns=[column]).column(0))).as_py() or 0
            for g in range(parquet.metadata.num_row_groups)
        )
        if count:
            out.append(
                {
                    "expectation": "numeric_values_are_numbers",
                    "column": column,
                    "severity": "warning",
                    "observed": count,
                    "unexpected_count": count,
                    "samples": ["NaN"],
                    "guards": "NaN comes from a division by zero or a failed cast upstream; the "
                    "model imputes it like a missing value",
                    "message": f"numeric_values_are_numbers; column {column!r}; {count} NaN values",
                }
            )
    return out


def all_null_features_failure(spec: JobSpec, manifest: Manifest, parquet) -> list[dict]:
    """Rows whose features are all NULL: the model sees nothing of them and scores them all the
    same. Severity `validation.all_null_features` of the spec (warning by default).

    Counted with Arrow, one row group at a time; a feature without any NULL in the file's
    statistics means no such row, without reading anything.
    """
    features = [c for c in spec.features.all if c in parquet.schema_arrow.names]
    rows = parquet.metadata.num_rows
    if not rows or len(features) < len(spec.features.all):
        return []  # a missing feature column is for its suite's expect_column_to_exist to report
    if any(null_count(parquet, column) == 0 for column in features):
        return []
    key = spec.source.key
    count = 0
    sampled: list = []  # the first keys of such rows, in row order
    for group in range(parquet.metadata.num_row_groups):
        table = parquet.read_row_group(group, columns=list(dict.fromkeys([*features, key])))
        all_null = table.column(features[0]).is_null()
        for column in features[1:]:
            all_null = pc.and_(all_null, table.column(column).is_null())
        found = pc.sum(all_null).as_py() or 0
        count += found
        if found and len(sampled) < SAMPLE_VALUES:
            sampled += pc.filter(table.column(key), all_null).to_pylist()[
                : SAMPLE_VALUES - len(sampled)
            ]
    if not count:
        return []
    shown = mask if key in spec.personal else plain_json
    samples = [shown(k) for k in sampled]
    share = count / rows
    return [
        {
            "expectation": "features_not_all_null",
            "column": None,
            "severity": spec.validation.all_null_features,
            "observed": count,
            "unexpected_count": count,
            "samples": samples,
            "guards": "a row with every feature NULL gives the model nothing to go on: it gets "
            "the same score as every other such row (a broken join or load upstream)",
            "message": f"features_not_all_null; job {spec.name}: {count} of {rows} "
            f"{manifest.kind} rows ({share:.2%}) have every feature NULL "
            f"({', '.join(spec.features.all)}), e.g. keys {samples}",
        }
    ]


def null_count(parquet, column: str) -> int | None:
    """NULLs in a column by the file's row-group statistics; None when a group has none."""
    index = parquet.schema_arrow.get_field_index(column)
    total = 0
    for group in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_null_count:
            return None
        total += stats.null_count
    return total


def short(value, limit: int = 60):
    text = value if isinstance(value, str) else None
    if text is not None and len(text) > limit:
        return text[:limit] + f"...({len(text)} chars)"
    return value


def failure_message(spec: JobSpec, manifest: Manifest, summary: Validation, critical) -> str:
    lines = [
        f"job {spec.name}: {manifest.kind} snapshot as of {manifest.as_of} "
        f"(sha256 {manifest.sha256[:12]}, {manifest.row_count} rows) failed "
        f"{len(critical)} critical expectation(s) of suite {summary.suite}; "
        "nothing was trained, scored or published:",
    ]
    lines += [
        f"  - {f['message']}" + (f"  [guards: {f['guards']}]" if f["guards"] else "")
        for f in critical
    ]
    lines.append(f"full result: {summary.result_uri}")
    lines.append(f"Data Docs: {summary.docs_uri}")
    return "\n".join(lines)
