"""Domain exceptions of ``lutfuse_ros``.

Every error the package raises on bad input derives from :class:`LutfuseError`, so callers
(the ROS node, the CLI) can catch one type at their boundary and report the message, which
always names what was wrong.
"""


class LutfuseError(Exception):
    """Base class of every error raised by ``lutfuse_ros`` on bad input or configuration."""


class InputError(LutfuseError, ValueError):
    """An image handed to the pipeline has the wrong shape, dtype, size or content."""


class ArtifactError(LutfuseError):
    """A model artifact is missing, truncated, corrupt, foreign or inconsistent."""


class ConfigError(LutfuseError, ValueError):
    """A configuration value (parameter, YAML key, CLI option) is invalid."""


class BackendError(LutfuseError, RuntimeError):
    """An inference backend is unavailable or failed while running."""


class ConversionError(LutfuseError, ValueError):
    """A ROS message could not be converted to or from an array."""
