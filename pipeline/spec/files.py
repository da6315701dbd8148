"""Job spec files: one YAML file per job in the jobs folder, loaded into `JobSpec`s; every
problem is a SpecError naming the file and the key."""

from pathlib import Path

import yaml
from pydantic import ValidationError

from pipeline.errors import SpecError
from pipeline.spec.job import JobSpec


def load_spec(path: Path | str) -> JobSpec:
    """Parse one job spec; any problem is a SpecError naming the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: job spec not found") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a job spec must be a YAML mapping")
    raw.setdefault("name", path.stem)
    try:
        spec = JobSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(describe_validation_error(path, exc)) from None
    spec._path = str(path)
    return spec


def spec_from_record(data: dict, path: str = "") -> JobSpec:
    """A spec frozen into a run or a model's metadata, as the typed model again."""
    spec = JobSpec.model_validate(data)
    spec._path = path
    return spec


def describe_validation_error(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid job spec"]
    for err in exc.errors():
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        key = key.lstrip(".") or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see docs/jobs.md 'Job specs')"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def spec_paths(directory: Path | str) -> list[Path]:
    return sorted(Path(directory).glob("*.yaml"))


def scan_specs(directory: Path | str) -> tuple[list[JobSpec], dict[Path, SpecError]]:
    """Every spec in a folder that loads, and the SpecError of each file that does not.

    One broken file never hides the others; a second file for a job name is an error of its own.
    """
    specs: dict[str, JobSpec] = {}
    problems: dict[Path, SpecError] = {}
    for path in spec_paths(directory):
        try:
            spec = load_spec(path)
        except SpecError as exc:
            problems[path] = exc
            continue
        first = specs.get(spec.name)
        if first:
            problems[path] = SpecError(
                f"{path}: name: job {spec.name!r} is defined twice (also in {first.path})"
            )
            continue
        specs[spec.name] = spec
    return list(specs.values()), problems


def load_specs(directory: Path | str) -> list[JobSpec]:
    """All job specs in a folder, or one SpecError listing every broken file."""
    specs, problems = scan_specs(directory)
    if problems:
        raise SpecError("\n".join(str(exc) for exc in problems.values()))
    return specs


def declared_name(path: Path) -> str | None:
    """The `name:` a spec file declares, if the file reads as a YAML mapping."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return raw.get("name") if isinstance(raw, dict) else None


def find_spec(job: str, directory: Path | str) -> JobSpec:
    """The spec named `job` in a folder; other broken files do not matter, its own one does."""
    specs, problems = scan_specs(directory)
    for path, exc in problems.items():
        if job in (path.stem, declared_name(path)):
            raise exc
    found = {s.name: s for s in specs}
    if job in found:
        return found[job]
    message = f"no job named {job!r} in {directory}; known jobs: {sorted(found)}"
    if problems:
        broken = ", ".join(path.name for path in problems)
        message += f"; broken spec files (see `python -m pipeline check`): {broken}"
    raise SpecError(message)
