"""A target's classes against its task and spec: the class set, the positive class of a binary
target, and a one-line description for `check`. Pure."""

import pandas as pd

from pipeline.errors import DataValidationError
from pipeline.spec import MAX_CLASSES, POSITIVE_NAMES, JobSpec, class_label


def resolve_classes(spec: JobSpec, observed) -> tuple[list[str], str | None]:
    """The target's classes (sorted, as `class_label`s) and, for a binary one, its positive class.

    `observed` are the distinct target values of the training data. Any mismatch with the task
    or the spec is a DataValidationError naming the job, the column and the classes.
    """
    where = f"job {spec.name}: target {spec.target!r}"
    found = sorted({class_label(v) for v in observed})
    if len(found) > MAX_CLASSES:
        raise DataValidationError(
            f"{where} has {len(found)} distinct values (e.g. {found[:5]}); a classification "
            f"target has 2 to {MAX_CLASSES} classes. Is it a number to predict (task: "
            "regression) or an id?"
        )
    if spec.classes is not None:
        unknown = sorted(set(found) - set(spec.classes))
        absent = sorted(set(spec.classes) - set(found))
        if unknown or absent:
            raise DataValidationError(
                f"{where}: the training data's classes {found} differ from `classes` in "
                f"{spec.path} ({spec.classes}): "
                + "; ".join(
                    text
                    for text in (
                        f"not listed: {unknown}" if unknown else "",
                        f"no training rows: {absent}" if absent else "",
                    )
                    if text
                )
            )
    if len(found) < 2:
        raise DataValidationError(
            f"{where} has {len(found)} class(es) {found} in the training data; a classifier "
            "needs at least 2"
        )
    if len(found) > 2:
        if spec.positive_class is not None:
            raise DataValidationError(
                f"{where} has {len(found)} classes {found}: positive_class is only for a binary "
                f"target; remove it from {spec.path}"
            )
        return found, None
    return found, positive_class(spec, found)


def positive_class(spec: JobSpec, classes: list[str]) -> str:
    """The binary target's class whose probability is the score: the spec's, else true/1/yes."""
    if spec.positive_class is not None:
        if spec.positive_class not in classes:
            raise DataValidationError(
                f"job {spec.name}: positive_class {spec.positive_class!r} is not a class of "
                f"target {spec.target!r}; its classes are {classes}"
            )
        return spec.positive_class
    named = [c for c in classes if c.lower() in POSITIVE_NAMES]
    if len(named) != 1:
        raise DataValidationError(
            f"job {spec.name}: target {spec.target!r} has classes {classes}; say which one "
            f"`score` is the probability of with `positive_class:` in {spec.path}"
        )
    return named[0]


def check_target(spec: JobSpec, observed) -> str:
    """Whether the target's distinct values fit the task; a one-line description if they do.

    Used before any run (`check`, `suggest-expectations`) and by every training run.
    """
    if spec.task == "classification":
        classes, positive = resolve_classes(spec, observed)
        kind = "binary" if positive else f"{len(classes)}-class"
        return f"{kind} target {classes}" + (f", positive class {positive!r}" if positive else "")
    values = pd.unique(pd.Series(list(observed)).dropna())
    if len(values) <= 2:
        raise DataValidationError(
            f"job {spec.name}: target {spec.target!r} has {len(values)} distinct value(s) "
            f"{sorted(map(class_label, values))}; that is a class, not a number to predict: "
            "use task: classification"
        )
    return f"numeric target, {len(values)} distinct values"
