"""The model card: what a person reads beside a model file before trusting its scores.

Markdown, also shown as HTML: text from the spec is escaped, so a description cannot carry
markup into the page.
"""

import re
from html import escape

from pipeline.logic.targets import positive_class
from pipeline.spec import JobSpec


def output(spec: JobSpec, classes: list[str]) -> str:
    """What `score` and `label` mean for this model, in words."""
    if spec.task == "regression":
        return f"`score` is the predicted `{spec.target}`"
    if len(classes) == 2:
        positive = positive_class(spec, classes)
        return (
            f"classes {classes}; `score` is the probability that `{spec.target}` is "
            f"`{positive}`, `label` is `{positive}` when it is at least 0.5"
        )
    return f"classes {classes}; `label` is the most likely class and `score` its probability"


def model_card(spec: JobSpec, metadata: dict) -> str:
    """A short human-readable card: data, features, metrics, intended use, caveats."""
    snap = metadata["training_snapshot"]
    metrics = "\n".join(f"| {k} | {v:.5g} |" for k, v in metadata["metrics"].items())
    return f"""# Model card: {spec.name}

{escape(spec.description) or "No description in the job spec."}

## Data
- Source table: `{spec.source.table}`, rows with `{spec.source.timestamp}` < {snap["as_of"]}
  and a known `{spec.target}`.
- Training snapshot: {snap["uri"]} ({snap["row_count"]} rows, sha256 `{snap["sha256"]}`).
- Holdout: {spec.model.holdout_fraction:.0%} of keys, by a stable hash of `{spec.source.key}`.

## Model
- Task: {spec.task}; estimator `{spec.model.estimator}` ({spec.estimator.card}),
  seed {spec.model.seed}.
- Features in order: {", ".join(spec.features.all)}.
- Output: {output(spec, metadata["classes"])}.
- Preprocessing: median imputation with missing indicators for numbers, one-hot encoding for
  categories (unseen ones map to "infrequent"), most-frequent imputation for flags.

## Holdout metrics
| metric | value |
| --- | --- |
{metrics}

## Intended use
Nightly scoring of every row of `{spec.source.table}` into `scoring.{spec.latest_view}`.

## Caveats
- Trained on a snapshot: rows changed after {snap["as_of"]} were not seen.
- Scores are only as good as the inputs; check `scoring.validation_results` and
  `scoring.drift_reports` for the run before acting on them.
- Code {metadata["code_version"]}, scikit-learn {metadata["library_versions"].get("scikit-learn")}.
"""


ERASURE_HEADING = "## Erasure"
APPROVAL_HEADING = "## Approval"


def with_section(card: str, heading: str, body: str) -> str:
    """The card with its `heading` section (a `## ` line) replaced by `body`, or added last."""
    sections = re.split(r"(?m)^(?=## )", card)
    kept = "".join(part for part in sections if not part.startswith(f"{heading}\n"))
    return f"{kept.rstrip()}\n\n{heading}\n{body}"


def with_erasure(card: str, rows: int, when) -> str:
    """The card with its erasure section: the model learned from `rows` rows that have since
    been erased."""
    return with_section(
        card,
        ERASURE_HEADING,
        f"**Trained on {rows} row(s) since erased** (flagged {when:%Y-%m-%d %H:%M} UTC): its "
        "training snapshot was rewritten without them, so this model cannot be rebuilt from "
        "it bit for bit, and it may still reflect what it learned from them. "
        "`governance.on_erasure: retrain` makes the next run fit a candidate without them.\n",
    )


def with_approval(card: str, approval: dict) -> str:
    """The card with its approval section: who answered the request to promote it, when, why,
    and what they were shown."""
    evidence = approval.get("evidence") or {}
    metric = evidence.get("primary_metric")
    shown = ""
    if metric:
        new = (evidence.get("candidate_metrics") or {}).get(metric)
        old = (evidence.get("champion_metrics") or {}).get(metric)
        champion = f"champion v{evidence.get('champion_version')}"
        against = f" vs {champion} {old:.5f} on the same holdout" if old is not None else ""
        shown = f" Shown: holdout {metric} {new:.5f}{against}."
    by = approval.get("answered_by") or {}
    who = f" by {escape(str(by.get('name') or by.get('id')))}" if by else ""
    verdict = approval.get("verdict", "").replace("_", " ")
    return with_section(
        card,
        APPROVAL_HEADING,
        f"**{verdict.capitalize()}**{who} ({escape(str(approval.get('answered_at', ''))[:16])} "
        f"UTC): {escape(approval.get('reason') or '')}. Asked because: "
        f"{escape('; '.join(approval.get('conditions') or []))}.{shown}\n",
    )
