"""docs/jobs.md's "Job specs" reference, rendered from the spec model so the two cannot drift
apart.

Every key of a job spec, its type, default and description comes from `pipeline/spec/`
(`JobSpec.model_fields`, walked recursively). `python -m pipeline.maintenance.spec_docs`
rewrites the table between the markers in docs/jobs.md; `tests/unit/test_spec_docs.py`
fails when it differs.
"""

import sys
import types
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Literal, TypeGuard, Union, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo

from pipeline.spec import JobSpec, check_identifier

JOBS_DOC = Path(__file__).resolve().parents[2] / "docs" / "jobs.md"
BEGIN, END = "<!-- job-specs -->", "<!-- /job-specs -->"
COMMAND = "python -m pipeline.maintenance.spec_docs"
# Required keys the loader fills in when a file leaves them out (pipeline/spec/files.py: load_spec).
LOADER_DEFAULTS = {"name": "the file's name"}
BOUNDS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))  # pydantic constraints
WORDS = {str: "string", int: "integer", float: "number", bool: "boolean", date: "date (YYYY-MM-DD)"}
PLURALS = {"identifier": "identifiers", "string": "strings", "integer": "integers"}


def fields(model: type[BaseModel] = JobSpec, prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """(dotted key, field) of every key of a spec, each section followed by its keys."""
    for name, field in model.model_fields.items():
        key = prefix + name
        yield key, field
        if section(field.annotation):
            yield from fields(field.annotation, key + ".")


def section(annotation) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def number(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def type_name(annotation, metadata=()) -> str:
    """A type in words: `list of identifiers`, `integer ≥ 1`, one of `a | b`."""
    if get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        metadata = (*metadata, *extra)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        kinds = [arg for arg in args if arg is not type(None)]
        if len(kinds) == 1:  # optional: unset is its default
            return type_name(kinds[0], metadata)
        words = [type_name(arg) for arg in kinds if not (arg is int and float in kinds)]
        words += ["null"] if type(None) in args else []
        return ", ".join(words[:-1]) + " or " + words[-1]
    if origin is Literal:
        return "one of `" + " | ".join(str(arg) for arg in args) + "`"
    if origin is list:
        item = type_name(args[0])
        return "list of " + PLURALS.get(item, item.removeprefix("one of "))
    if origin is dict:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}"
    if section(annotation):
        return "mapping"
    if any(isinstance(m, AfterValidator) and m.func is check_identifier for m in metadata):
        word = "identifier"
    elif annotation in WORDS:
        word = WORDS[annotation]
    else:
        raise TypeError(f"no words for the type {annotation!r}: add them to {__name__}")
    bounds = [
        f"{sign} {number(getattr(m, attr))}"
        for attr, sign in BOUNDS
        for m in metadata
        if getattr(m, attr, None) is not None
    ]
    return " ".join([word, " and ".join(bounds)]) if bounds else word


def default(key: str, field: FieldInfo) -> str:
    if field.is_required():
        return LOADER_DEFAULTS.get(key, "required")
    if field.default is None:
        return "unset"
    if isinstance(field.default, BaseModel):
        return "its keys' defaults"
    text = yaml.safe_dump(field.default, default_flow_style=True, allow_unicode=True)
    return "`" + text.removesuffix("\n").removesuffix("\n...") + "`"


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    """The reference as a Markdown table: one row per key, in the model's order."""
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for key, field in fields():
        row = (
            f"`{key}`",
            type_name(field.annotation, field.metadata),
            default(key, field),
            field.description or "",
        )
        lines.append("| " + " | ".join(cell(text) for text in row) + " |")
    return "\n".join(lines) + "\n"


def documented(text: str) -> str:
    """What a page holds between the markers."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"the page must hold {BEGIN} and {END} once each")
    return text.split(BEGIN)[1].split(END)[0]


def update(path: Path = JOBS_DOC) -> bool:
    """Rewrite the reference between the markers in `path`; whether anything changed."""
    text = path.read_text()
    old = documented(text)
    new = "\n" + render()
    if old == new:
        return False
    path.write_text(text.replace(BEGIN + old + END, BEGIN + new + END))
    return True


def main() -> int:
    changed = update()
    print(f"docs/{JOBS_DOC.name}: 'Job specs' {'rewritten' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
