"""The one error type of the serving package."""

from __future__ import annotations


class ServingError(ValueError):
    """Bad input or a host state that stops a service; the message names the variable and the fix."""
