"""The promotion gate: does a candidate beat the champion on the same holdout? Pure."""

from pipeline.spec import LOWER_IS_BETTER, JobSpec


def beats(spec: JobSpec, candidate: dict, champion: dict) -> tuple[bool, str]:
    """Whether the candidate beats the champion on the primary metric by the job's margin: it
    must do strictly better, and by at least `model.promotion_margin`."""
    metric, margin = spec.primary_metric, spec.model.promotion_margin
    new, old = candidate[metric], champion[metric]
    gain = gain_of(spec, candidate, champion)
    direction = "lower" if metric in LOWER_IS_BETTER else "higher"
    verdict = gain >= margin and gain > 0
    if verdict:
        judged = f"gain {gain:+.5f} meets the margin {margin}"
    elif gain <= 0:
        judged = f"gain {gain:+.5f}: not better than the champion"
    else:
        judged = f"gain {gain:+.5f} is below the margin {margin}"
    reason = f"{metric} {new:.5f} vs champion {old:.5f} ({direction} is better): {judged}"
    return verdict, reason


def gain_of(spec: JobSpec, candidate: dict, champion: dict, metric: str | None = None) -> float:
    """How much better the candidate is on `metric` (default: the primary; negative: worse)."""
    metric = metric or spec.primary_metric
    new, old = candidate[metric], champion[metric]
    return (old - new) if metric in LOWER_IS_BETTER else (new - old)
