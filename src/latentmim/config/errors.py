"""The one exception type for user mistakes; the CLI prints it as one line and exits 2."""


class ConfigError(ValueError):
    """A configuration or input problem the user can fix (names the key, path or value)."""
