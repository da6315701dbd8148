"""Personal values out of samples and messages (pipeline.logic.personal)."""

from pipeline.logic.personal import (
    ERASED,
    erase_in_message,
    erase_values,
    mask,
    replace_samples,
)


def test_mask_is_stable_and_hides_the_value():
    assert mask("ann@example.org") == mask("ann@example.org") != mask("bob@example.org")
    assert mask("ann@example.org").startswith("pii:") and "ann" not in mask("ann@example.org")
    assert len(mask(42)) == len("pii:") + 12 and mask(None) is None


def test_replace_samples_touches_only_sampled_values_of_chosen_results():
    result = {
        "results": [
            {
                "expectation_config": {"kwargs": {"column": "email"}},
                "result": {
                    "partial_unexpected_list": ["ann@x.org", 17],
                    "partial_unexpected_counts": [{"value": "ann@x.org", "count": 2}],
                    "unexpected_count": 17,
                },
            }
        ],
        "statistics": {"evaluated_expectations": 17},
    }
    replace_samples(result, erase_values({"ann@x.org", "17"}))
    details = result["results"][0]["result"]
    assert details["partial_unexpected_list"] == [ERASED, ERASED]
    assert details["partial_unexpected_counts"] == [{"value": ERASED, "count": 2}]
    assert (
        details["unexpected_count"] == 17 and result["statistics"]["evaluated_expectations"] == 17
    )


def test_replace_samples_of_findings_with_a_chooser():
    findings = [
        {"column": "email", "samples": ["a", "b"]},
        {"column": "plan", "samples": ["a"]},
    ]
    replace_samples(findings, mask, lambda d: d.get("column") == "email")
    assert findings[0]["samples"] == [mask("a"), mask("b")] and findings[1]["samples"] == ["a"]


def test_erase_in_message_strikes_quoted_samples_only():
    message = "regex; column 'email'; 3 unexpected; e.g. ['ann@x.org', 'bob@x.org']; keys [17, 4]"
    erased = erase_in_message(message, {"ann@x.org", "17"})
    assert erased == (
        f"regex; column 'email'; 3 unexpected; e.g. [{ERASED}, 'bob@x.org']; keys [{ERASED}, 4]"
    )
    assert erase_in_message("17 rows, e.g. [3]", {"17"}) == "17 rows, e.g. [3]"
