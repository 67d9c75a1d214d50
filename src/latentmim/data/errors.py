"""The one exception type the data package raises for bad user input."""

from __future__ import annotations


class DataError(ValueError):
    """Bad dataset name, path, split or file contents.

    The message is a single line that names the offending path, name or value,
    so it can be shown to the user as-is (e.g. by the CLI).
    """
