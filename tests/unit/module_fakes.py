"""Fakes for AnsibleModule's exits, shared by the module tests: exit_json and fail_json raise instead."""

from __future__ import annotations

from typing import Any


class ExitJson(Exception):
    """Raised where the module would call exit_json; args[0] is the result."""


class FailJson(Exception):
    """Raised where the module would call fail_json; args[0] is the result."""


def exit_json(self: Any, **kwargs: Any) -> None:
    raise ExitJson(kwargs)


def fail_json(self: Any, **kwargs: Any) -> None:
    raise FailJson(kwargs)
