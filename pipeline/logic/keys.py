"""Keys: unique keys checked while a snapshot streams (batches sorted by key, one pass, no
sort), and the keys of one set missing from another."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DUPLICATE_SAMPLE = 5  # duplicated keys an error names


class DuplicateKeys:
    """Counts the keys that occur more than once in batches sorted by key (the snapshot's
    ORDER BY): equal keys are then adjacent, so each batch is compared with itself shifted by
    one row, and its first key with the previous batch's last. Vectorised, one pass, no sort."""

    def __init__(self, column: str, shown=repr):
        self.column = column
        self.shown = shown  # how a key is written in the message (a personal key: masked)
        self.count = 0  # distinct keys seen more than once
        self.sample: list = []
        self.previous = None  # the last key of the previous batch
        self.last_repeated = None  # the last key counted

    def add(self, batch: pa.RecordBatch) -> None:
        keys = batch.column(self.column)
        if not len(keys):
            return
        repeated = keys[1:].filter(pc.equal(keys[1:], keys[:-1]))  # nulls compare as null: dropped
        first = keys[0].as_py()
        if first is not None and first == self.previous:
            repeated = pa.concat_arrays([keys[:1], repeated])
        self.previous = keys[-1].as_py()
        if not len(repeated):
            return
        distinct = pc.unique(repeated).to_pylist()  # sorted, so only the first may be counted
        if distinct[0] == self.last_repeated:
            distinct = distinct[1:]
        if distinct:
            self.count += len(distinct)
            self.sample += distinct[: DUPLICATE_SAMPLE - len(self.sample)]
            self.last_repeated = distinct[-1]

    def message(self, job: str, table: str, kind: str, as_of: str) -> str:
        sample = ", ".join(map(self.shown, self.sample))
        return (
            f"job {job}: source {table} has {self.count:,} duplicated "
            f"value(s) of its key column {self.column} in the {kind} snapshot as of "
            f"{as_of}, e.g. [{sample}]: predictions are keyed by it, so it must "
            "be unique per row; fix the source (a view: its joins) or set source.key to a "
            "unique column. No snapshot was written."
        )


def not_in(keys: pa.Array, scope: pa.Array) -> pa.Array:
    """The `keys` missing from `scope`, sorted. Integer keys by binary search in `scope`
    (sorted by the server): a hash set of ten million keys would hold 800 MB."""
    if pa.types.is_integer(scope.type):
        values, ordered = keys.to_numpy(), scope.to_numpy()
        at = np.minimum(np.searchsorted(ordered, values), max(len(ordered) - 1, 0))
        found = ordered[at] == values if len(ordered) else np.zeros(len(values), bool)
        return pa.array(np.sort(values[~found]), keys.type)
    left = keys.filter(pc.invert(pc.is_in(keys, value_set=scope)))
    return pc.take(left, pc.sort_indices(left))
