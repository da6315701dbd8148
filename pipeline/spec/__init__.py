"""Job specs: one YAML file per scoring job, parsed into typed, validated pydantic models.

Imports only pydantic and yaml, so DAG files can load specs at parse time cheaply. The
package's modules: `names` (identifiers, metrics, class labels), `sections` and `job` (the
models), `estimators` (the estimators a spec may name), `files` (loading spec files) and
`columns` (a spec against the source table's column types).
"""

from pipeline.spec.columns import NUMERIC_TYPES, TIMESTAMP_TYPES, check_columns
from pipeline.spec.files import (
    find_spec,
    load_spec,
    load_specs,
    scan_specs,
    spec_from_record,
    spec_paths,
)
from pipeline.spec.job import JobSpec
from pipeline.spec.names import (
    LOWER_IS_BETTER,
    MAX_CLASSES,
    METRICS,
    POSITIVE_NAMES,
    check_identifier,
    class_label,
)
from pipeline.spec.sections import (
    ALERT_KINDS,
    Alerts,
    EmailAlerts,
    Monitoring,
    Retrain,
    WebhookAlerts,
)

__all__ = [
    "ALERT_KINDS",
    "LOWER_IS_BETTER",
    "MAX_CLASSES",
    "METRICS",
    "NUMERIC_TYPES",
    "POSITIVE_NAMES",
    "TIMESTAMP_TYPES",
    "Alerts",
    "EmailAlerts",
    "JobSpec",
    "Monitoring",
    "Retrain",
    "WebhookAlerts",
    "check_columns",
    "check_identifier",
    "class_label",
    "find_spec",
    "load_spec",
    "load_specs",
    "scan_specs",
    "spec_from_record",
    "spec_paths",
]
