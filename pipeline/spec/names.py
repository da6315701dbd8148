"""The vocabulary of job specs: identifiers, metric names, class labels. No pydantic models."""

import re
from typing import Annotated

from pydantic import AfterValidator

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
JOB_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

METRICS = {
    "classification": ("roc_auc", "log_loss", "accuracy"),
    "regression": ("rmse", "mae", "r2"),
}
LOWER_IS_BETTER = {"log_loss", "rmse", "mae"}
MAX_CLASSES = 50  # more distinct target values than this is a number or an id, not a class
POSITIVE_NAMES = ("true", "1", "yes")  # a binary target's positive class when none is named


def class_label(value) -> str:
    """A target value as the class name models, specs and predictions use: `str()` of it, with
    integral numbers written as integers (a NULL-able integer column reads as floats)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return class_label(value.item())
    return str(value)


def check_identifier(value: str) -> str:
    """A lower-case SQL identifier: letters, digits and underscores."""
    if not IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a valid identifier (lower-case letters, digits, _; max 63 chars)"
        )
    return value


Identifier = Annotated[str, AfterValidator(check_identifier)]

KINDS = ("training", "scoring")  # a run's two snapshots: the rows to learn from, the rows to score
