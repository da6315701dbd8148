"""`not_in`: the keys an incremental run finds gone from the source; duplicate keys named."""

import pyarrow as pa
import pytest

from pipeline.logic.keys import DuplicateKeys, not_in
from pipeline.logic.personal import mask


@pytest.mark.parametrize(
    ("keys", "scope", "left"),
    [
        ([5, 1, 9, 3], [1, 2, 3, 4], [5, 9]),  # integers: binary search, sorted result
        ([7], [], [7]),
        (["b", "a", "z"], ["a", "b", "c"], ["z"]),  # text keys: a hash set
    ],
)
def test_not_in_finds_the_keys_missing_from_the_scope_sorted(keys, scope, left):
    type_ = pa.int64() if isinstance(keys[0], int) else pa.string()
    found = not_in(pa.array(keys, type_), pa.array(scope, type_))
    assert found.to_pylist() == left


def test_duplicate_keys_of_a_personal_key_are_masked_in_the_message():
    duplicates = DuplicateKeys("email", mask)
    duplicates.add(pa.record_batch({"email": ["ann@x.org", "ann@x.org", "bob@x.org"]}))
    message = duplicates.message("people", "crm.people", "scoring", "2019-01-01")
    assert duplicates.count == 1 and "ann@x.org" not in message and mask("ann@x.org") in message
