"""The project's exceptions: one module, each a ValueError so callers can catch broadly."""


class PipelineError(ValueError):
    """Base class of every error this package raises on purpose."""


class DataValidationError(PipelineError):
    """Input data breaks the OHLCV contract (columns, values, ordering, size)."""


class InsufficientHistoryError(DataValidationError):
    """Too few bars before a point to compute its features or sequence."""


class ConfigError(PipelineError):
    """A configuration value is unknown, empty or inconsistent."""


class NotFittedError(PipelineError):
    """An estimator was used before `fit`."""


class BundleError(PipelineError):
    """A deployment bundle cannot be saved or loaded."""


class BundleIntegrityError(BundleError):
    """A bundle file is changed, missing, extra, or outside the bundle."""


class NotDeployableError(BundleError):
    """A bundle without skill (or of unknown skill) was asked to go live without --force."""


class BundleFormatError(BundleError):
    """A bundle was written by an unknown or newer format version."""


class DriftInputError(PipelineError):
    """A batch given to the drift monitor does not match its reference."""
