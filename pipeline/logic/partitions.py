"""Scoring partitions: a snapshot's row groups cut into contiguous key ranges. Pure: it reads
only the row groups' row counts and key statistics, given by the caller."""

from collections.abc import Sequence
from typing import Any

from pipeline.contracts import Partition


def partition_ranges(groups: Sequence[tuple[int, Any, Any]], partitions: int) -> list[Partition]:
    """At most `partitions` contiguous ranges of `groups`, each group (rows, key min, key max)
    in key order (None where a group has no statistics)."""
    count = max(1, min(partitions, len(groups)))
    parts = []
    for i in range(count):
        first, last = len(groups) * i // count, len(groups) * (i + 1) // count
        chosen = groups[first:last]
        parts.append(
            Partition(
                index=i,
                row_groups=[first, last],
                rows=sum(rows for rows, _, _ in chosen),
                key_min=chosen[0][1] if chosen else None,
                key_max=chosen[-1][2] if chosen else None,
            )
        )
    return parts
