"""Errors a user can act on. The CLI prints them without a traceback; Airflow tasks fail fast."""


class PipelineError(Exception):
    """A predictable failure whose message tells the user what to fix."""


class ConfigError(PipelineError):
    """The environment is missing a setting (database URL, data root...)."""


class SpecError(PipelineError):
    """A job spec is invalid; the message names the file and the key."""


class DataValidationError(PipelineError):
    """A critical expectation failed; nothing downstream may run."""


class ModelIntegrityError(PipelineError):
    """A model artifact does not match its recorded checksum or holds untrusted types."""


class StageSkipped(Exception):
    """A stage decided it has nothing to do this run (e.g. no retraining is due)."""
