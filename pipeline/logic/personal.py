"""Personal values out of what the product shows: the sampled values of stored results, pages,
alerts and messages. Pure.

Two cases share one walk over the places a value can be sampled (`SAMPLE_FIELDS`):
- a `pii` column's values are never shown: each becomes `pii:` and 12 hex digits of its
  sha256 (the same value always the same token, so pages can still be compared);
- erased rows' values (keys, and their `pii` columns' values) are replaced by `[erased]` in
  what was stored before the erasure.
"""

import hashlib
import re
from collections.abc import Callable

ERASED = "[erased]"
# where GX results, findings and alerts hold sampled values: lists of values, or of
# {"value": ..., "count": ...} (GX's index lists are row positions, not values)
SAMPLE_FIELDS = ("partial_unexpected_list", "unexpected_list", "samples", "sample_keys")
COUNT_FIELDS = ("partial_unexpected_counts",)
# a Python list as our messages quote samples: "e.g. ['a', 'b']", "e.g. keys [1, 2]"
_QUOTED_LIST = re.compile(r"\[([^\[\]]*)\]")


def mask(value) -> str | None:
    """A personal value as shown: `pii:` and the first 12 hex digits of its sha256."""
    if value is None:
        return None
    return "pii:" + hashlib.sha256(str(value).encode()).hexdigest()[:12]


def replace_samples(node, replace: Callable, columns: Callable[[dict], bool] = lambda _: True):
    """`node` (a JSON-like structure) with every sampled value passed through `replace`, in
    place; `columns(d)` chooses which dicts holding samples are touched (e.g. a GX result of a
    `pii` column). Returns `node`."""
    if isinstance(node, list):
        for item in node:
            replace_samples(item, replace, columns)
        return node
    if not isinstance(node, dict):
        return node
    for name, value in node.items():
        if name in SAMPLE_FIELDS and isinstance(value, list) and columns(node):
            node[name] = [replace(v) for v in value]
        elif name in COUNT_FIELDS and isinstance(value, list) and columns(node):
            for entry in value:
                if isinstance(entry, dict) and "value" in entry:
                    entry["value"] = replace(entry["value"])
        else:
            replace_samples(value, replace, columns)
    return node


def erase_values(erased: set[str]) -> Callable:
    """A `replace` for `replace_samples`: values whose text is in `erased` become `[erased]`."""

    def replace(value):
        return ERASED if value is not None and str(value) in erased else value

    return replace


def erase_in_message(message: str, erased: set[str]) -> str:
    """A message with erased values struck from the sample lists it quotes (`e.g. [...]`)."""

    def strike(match: re.Match) -> str:
        items = [item.strip() for item in match.group(1).split(",")]
        kept = [ERASED if item.strip("'\"") in erased else item for item in items]
        return "[" + ", ".join(kept) + "]"

    return _QUOTED_LIST.sub(strike, message)
