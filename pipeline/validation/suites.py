"""A job's Great Expectations suites: `expectations/<job>/<kind>.json`, read and checked.

Each expectation's `meta.severity` is `critical` (default: the run stops, nothing is written)
or `warning` (recorded and logged, the run goes on).
"""

import json
from pathlib import Path

from pipeline.config import expectations_dir
from pipeline.errors import PipelineError

SEVERITIES = ("critical", "warning")


def suite_path(job: str, kind: str) -> Path:
    return expectations_dir() / job / f"{kind}.json"


def read_suite(job: str, kind: str) -> dict:
    """A job's suite file for one snapshot kind, as JSON, with every severity known. Great
    Expectations parses it (`build_suite`) where it validates, and `check` does too: importing
    GX takes seconds, which a run's first task does not spend."""
    path = suite_path(job, kind)
    if not path.exists():
        raise PipelineError(
            f"job {job}: no {kind} suite at {path}. Write a starter suite from the current data "
            f"with `python -m pipeline suggest-expectations {job}`, review it and commit it"
        )
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path}: not valid JSON: {exc}") from None
    raw["name"] = raw.get("name") or f"{job}.{kind}"
    check_severities(raw, str(path))
    return raw


def check_severities(raw: dict, where: str) -> None:
    """Every expectation's `meta.severity` is critical (the default) or warning."""
    for i, exp in enumerate(raw.get("expectations") or []):
        severity = (exp.get("meta") or {}).get("severity", "critical")
        if severity not in SEVERITIES:
            raise PipelineError(
                f"{where}: expectations[{i}].meta.severity: {severity!r} must be one of "
                f"{SEVERITIES}"
            )


def build_suite(raw: dict, where: str):
    """The GX ExpectationSuite of a suite's JSON; every expectation must parse."""
    import great_expectations as gx  # seconds to import: only where a suite is used

    check_severities(raw, where)
    expectations = raw.get("expectations") or []
    suite = gx.ExpectationSuite(name=raw["name"], expectations=expectations, meta=raw.get("meta"))
    if len(suite.expectations) != len(expectations):
        raise PipelineError(
            f"{where}: {len(expectations) - len(suite.expectations)} expectation(s) could not be "
            "parsed by Great Expectations (check each 'type' and its 'kwargs')"
        )
    return suite
