"""docs/jobs.md "Job specs" is what the spec model renders, and every key of a spec is described."""

from pathlib import Path

import yaml

from pipeline.maintenance.spec_docs import BEGIN, COMMAND, END, documented, fields, render, update
from pipeline.spec import JobSpec

PROJECT = Path(__file__).resolve().parents[2]
JOBS_DOC = PROJECT / "docs" / "jobs.md"


def jobs_doc_reference() -> str:
    """The table between the markers of docs/jobs.md's "Job specs" section."""
    text = JOBS_DOC.read_text()
    assert "\n## Job specs\n" in text, "docs/jobs.md has no 'Job specs' section"
    section = text.split("\n## Job specs\n")[1].split("\n## ")[0]
    assert BEGIN in section and END in section, f"docs/jobs.md 'Job specs' lacks {BEGIN} ... {END}"
    return documented(text)


def test_jobs_doc_job_specs_match_the_model():
    assert jobs_doc_reference() == "\n" + render(), (
        f"docs/jobs.md 'Job specs' differs from pipeline/spec/: run `{COMMAND}` and commit it"
    )


def test_every_key_has_a_description():
    missing = [key for key, field in fields() if not (field.description or "").strip()]
    assert missing == [], f"add Field(description=...) in pipeline/spec/ for {missing}"


def test_every_key_is_documented_once():
    keys = [key for key, _ in fields()]
    assert len(keys) == len(set(keys))
    assert {"classes", "positive_class", "validation.all_null_features"} <= set(keys)
    assert "model.promotion_margin" in keys and "retention.keep_days" in keys
    rows = [line for line in render().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == keys


def test_example_specs_use_documented_keys_only():
    keys = {key for key, _ in fields()}

    def used(node: dict, prefix: str = ""):
        for name, value in node.items():
            yield prefix + name
            if isinstance(value, dict) and prefix + name != "model.params":
                yield from used(value, prefix + name + ".")

    for path in sorted((PROJECT / "dags" / "jobs").glob("*.yaml")):
        unknown = set(used(yaml.safe_load(path.read_text()))) - keys
        assert unknown == set(), f"{path.name}: {sorted(unknown)} not in docs/jobs.md 'Job specs'"


def test_types_and_defaults_are_written_plainly():
    rows = {line.split("`")[1]: line for line in render().splitlines() if line.startswith("| `")}
    assert "| list of identifiers | `[]` |" in rows["features.numeric"]
    assert (
        "| one of `always \\| weekdays \\| interval \\| on_drift \\| never` | `always` |"
        in rows["retrain.policy"]
    )
    assert "| integer ≥ 1 and ≤ 1024 | `4` |" in rows["scoring.partitions"]
    assert "| number ≥ 0 | `0.0` |" in rows["model.promotion_margin"]
    assert "| integer ≥ 1 | unset |" in rows["retention.keep_days"]
    assert "| identifier | required |" in rows["target"]
    assert "| string | the file's name |" in rows["name"]  # load_spec fills it in
    assert JobSpec.model_fields["name"].is_required()


def test_update_rewrites_only_the_reference(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{BEGIN}\n| stale |\n{END}\n\nafter\n")
    assert update(readme) is True
    text = readme.read_text()
    assert text == f"# Title\n\nbefore\n\n{BEGIN}\n{render()}{END}\n\nafter\n"
    assert update(readme) is False
    assert readme.read_text() == text
