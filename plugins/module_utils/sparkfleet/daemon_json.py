"""Merge keys into Docker's daemon.json without dropping keys owned by others.

Logic of the ``docker_daemon_json`` module. Stdlib only, typed, unit-tested in tests/unit/test_daemon_json.py.

The module never writes the file whole from a template: it reads the JSON object that is there, merges
(``state: present``) or removes (``state: absent``) only the keys given in ``settings``, and writes the file
back only when the resulting object differs. Keys it was not given (for example ``runtimes.nvidia`` written
by ``nvidia-ctk``) are kept as they are.

It also knows which dockerd command-line flags correspond to which daemon.json keys, because dockerd refuses
to start when an option is "specified both as a flag and in the configuration file" (DGX OS sets flags in
``/etc/systemd/system/docker.service.d/docker-override.conf``).
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import tempfile
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = [
    "DaemonJsonError",
    "dockerd_flag_keys",
    "find_conflicts",
    "load_config",
    "merge_settings",
    "remove_settings",
    "render_config",
    "run_module",
]

# dockerd flags whose daemon.json key is not the flag's own name (list flags take a plural key; short flags).
_FLAG_TO_KEY: dict[str, str] = {
    "H": "hosts",
    "host": "hosts",
    "label": "labels",
    "dns-opt": "dns-opts",
    "insecure-registry": "insecure-registries",
    "registry-mirror": "registry-mirrors",
    "storage-opt": "storage-opts",
    "exec-opt": "exec-opts",
    "log-opt": "log-opts",
    "default-ulimit": "default-ulimits",
    "add-runtime": "runtimes",
    "authorization-plugin": "authorization-plugins",
    "default-address-pool": "default-address-pools",
    "node-generic-resource": "node-generic-resources",
    "cluster-store-opt": "cluster-store-opts",
    "D": "debug",
    "l": "log-level",
    "G": "group",
    "s": "storage-driver",
    "b": "bridge",
    "g": "graph",
    "p": "pidfile",
}
# Flags that never conflict with a daemon.json key.
_FLAGS_WITHOUT_KEY = frozenset({"config-file", "containerd", "validate", "version", "v", "help"})


class DaemonJsonError(Exception):
    """A problem the user must fix; the message names the file or setting and the fix."""


class ModuleLike(Protocol):
    """The part of AnsibleModule this logic uses (kept as a Protocol so the logic imports no Ansible)."""

    params: dict[str, Any]
    check_mode: bool

    def warn(self, warning: str) -> None: ...

    def backup_local(self, fn: str) -> str: ...

    def atomic_move(self, src: str, dest: str, unsafe_writes: bool = False) -> None: ...

    def run_command(self, args: Any, check_rc: bool = False) -> tuple[int, str, str]: ...

    def set_mode_if_different(self, path: str, mode: Any, changed: bool, diff: Any = None) -> bool: ...


def load_config(text: str, path: str = "daemon.json") -> dict[str, Any]:
    """Parse daemon.json text; an empty file is an empty object. Anything but a JSON object is an error."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DaemonJsonError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix or remove the file by hand, nothing was changed"
        ) from exc
    if not isinstance(data, dict):
        raise DaemonJsonError(f"{path} holds a JSON {type(data).__name__}, not an object; nothing was changed")
    return data


def merge_settings(current: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``settings`` into ``current``: objects are merged key by key, any other value replaces."""
    result = copy.deepcopy(dict(current))
    for key, value in settings.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = merge_settings(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def remove_settings(current: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Remove the keys named in ``settings``.

    A non-empty object value names keys inside that object (``{"runtimes": {"nvidia": null}}`` removes only
    ``runtimes.nvidia``); an object left empty by the removal is removed too. Any other value removes the key
    whatever it holds.
    """
    result = copy.deepcopy(dict(current))
    for key, value in settings.items():
        if key not in result:
            continue
        if isinstance(value, Mapping) and value and isinstance(result[key], dict):
            inner = remove_settings(result[key], value)
            if inner:
                result[key] = inner
            else:
                del result[key]
        else:
            del result[key]
    return result


def render_config(config: Mapping[str, Any]) -> str:
    """The file content written for ``config`` (2-space indent, key order kept, trailing newline)."""
    return json.dumps(config, indent=2) + "\n"


def _argv_strings(command_line: str) -> list[str]:
    """Command lines from a unit's ExecStart= or from ``systemctl show -p ExecStart`` output."""
    if "argv[]=" not in command_line:
        lines = []
        for raw in command_line.splitlines():
            line = raw.strip()
            if line.startswith("ExecStart="):
                line = line[len("ExecStart=") :]
            if line:
                lines.append(line.lstrip("-@:+!"))
        return lines
    found = []
    for part in command_line.split("argv[]=")[1:]:
        found.append(part.split(" ;", 1)[0])
    return found


def dockerd_flag_keys(command_line: str) -> dict[str, str]:
    """Map each daemon.json key given as a dockerd flag on ``command_line`` to the flag as written.

    Unexpanded environment references (``$DOCKER_OPTS``) are ignored: they cannot be resolved here.
    """
    keys: dict[str, str] = {}
    for argv in _argv_strings(command_line):
        try:
            tokens = shlex.split(argv)
        except ValueError:
            tokens = argv.split()
        for token in tokens:
            if not token.startswith("-") or token in ("-", "--"):
                continue
            name = token.lstrip("-").split("=", 1)[0]
            if not name or name in _FLAGS_WITHOUT_KEY:
                continue
            key = _FLAG_TO_KEY.get(name, name)
            keys.setdefault(key, token.split("=", 1)[0])
    return keys


def find_conflicts(settings: Mapping[str, Any], flag_keys: Mapping[str, str]) -> list[str]:
    """The top-level keys of ``settings`` that dockerd also receives as flags (sorted)."""
    return sorted(k for k in settings if k in flag_keys)


def _config_file_flag(command_line: str) -> str | None:
    for argv in _argv_strings(command_line):
        words = argv.split()
        for i, word in enumerate(words):
            if word.startswith("--config-file="):
                return word.split("=", 1)[1]
            if word == "--config-file" and i + 1 < len(words):
                return words[i + 1]
    return None


def _read(path: str) -> tuple[bool, str]:
    if not os.path.exists(path):
        return False, ""
    if os.path.isdir(path):
        raise DaemonJsonError(f"{path} is a directory; set path to the daemon.json file")
    with open(path, encoding="utf-8") as handle:
        return True, handle.read()


def run_module(module: ModuleLike) -> dict[str, Any]:
    """Apply the module's parameters; return the result for exit_json. Raises DaemonJsonError on bad input."""
    params = module.params
    path: str = params["path"]
    state: str = params["state"]
    settings: dict[str, Any] = dict(params["settings"] or {})
    command_line: str = params.get("dockerd_command_line") or ""
    on_conflict: str = params.get("on_conflict") or "drop"

    try:
        json.dumps(settings)
    except (TypeError, ValueError) as exc:
        raise DaemonJsonError(f"settings cannot be written as JSON: {exc}") from exc

    flag_keys = dockerd_flag_keys(command_line) if command_line else {}
    dropped: list[str] = []
    if state == "present" and flag_keys:
        conflicts = find_conflicts(settings, flag_keys)
        if conflicts and on_conflict == "fail":
            given = ", ".join(f"{k} ({flag_keys[k]})" for k in conflicts)
            raise DaemonJsonError(
                f"settings {given} are also dockerd flags in its systemd unit; dockerd would refuse to start "
                "('specified both as a flag and in the configuration file'). Remove them from the settings or "
                "from the unit's ExecStart (DGX OS: /etc/systemd/system/docker.service.d/docker-override.conf)"
            )
        if conflicts and on_conflict == "drop":
            for key in conflicts:
                module.warn(
                    f"daemon.json key '{key}' not written: dockerd already gets it as flag {flag_keys[key]} "
                    "from its systemd unit, and a key given both ways stops dockerd from starting"
                )
                settings.pop(key)
            dropped = conflicts

    config_flag = _config_file_flag(command_line) if command_line else None
    if config_flag and os.path.normpath(config_flag) != os.path.normpath(path):
        module.warn(f"dockerd is started with --config-file {config_flag}, not {path}: the change may have no effect")

    exists, before_text = _read(path)
    before = load_config(before_text, path)
    after = merge_settings(before, settings) if state == "present" else remove_settings(before, settings)

    # Keys already in the file (not given here) that dockerd also gets as flags: report, never touch.
    unmanaged_conflicts = sorted(k for k in after if k in flag_keys and k not in settings)
    for key in unmanaged_conflicts:
        module.warn(
            f"{path} already holds '{key}', which dockerd also gets as flag {flag_keys[key]}: dockerd will refuse "
            "to start until one of them is removed"
        )

    changed = after != before or (not exists and state == "present")
    after_text = render_config(after) if changed else before_text
    result: dict[str, Any] = {
        "changed": changed,
        "path": path,
        "config": after,
        "dropped_keys": dropped,
        "conflicting_keys": unmanaged_conflicts,
        "diff": {
            "before": before_text if exists else "",
            "after": after_text,
            "before_header": path if exists else f"{path} (absent)",
            "after_header": path,
        },
    }
    if not changed or module.check_mode:
        return result

    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    fd, tmp = tempfile.mkstemp(prefix=".daemon.json.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(after_text)
        validate: str | None = params.get("validate")
        if validate:
            if "%s" not in validate:
                raise DaemonJsonError(f"validate must contain %s (the file to check), got: {validate}")
            rc, out, err = module.run_command(shlex.split(validate.replace("%s", tmp)))
            if rc != 0:
                raise DaemonJsonError(f"validate command rejected the new {path} (rc={rc}): {(err or out).strip()}")
        if exists and params.get("backup"):
            result["backup_file"] = module.backup_local(path)
        module.atomic_move(tmp, path)
        if not exists:
            # atomic_move gives a new file 0666 & ~umask; an existing file keeps its mode and owner.
            module.set_mode_if_different(path, params.get("mode") or "0644", False)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return result
