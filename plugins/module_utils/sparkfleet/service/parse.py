"""The one parser: raw ``llm_serving_services`` (+ the host's profile) -> normalized services, or errors.

Each error names the path (``llm_serving_services[1].port``), the value where it is safe to show, and the fix.
Values that may be secrets (``env`` values, anything that looks like a token) are never echoed. The parser
never raises on bad input; preflight runs it for every host before any host changes (``service/plan.py``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeGuard

from ..contracts import RESERVED_SERVICE_NAMES
from .docker_args import capabilities, check_docker_args
from .model import (
    DYNAMO_DISCOVERY_RE,
    ENGINES,
    ENV_NAME_RE,
    FIELD_BY_NAME,
    FIELDS,
    HEALTH_PATH_RE,
    IMAGE_RE,
    LISTEN_ANYWHERE,
    MAX_ENV_NAME_LEN,
    MAX_NAME_LEN,
    NAME_RE,
    NAME_RULE,
    PATH_COMPONENT,
    RENAMED_KEYS,
    SECRET_ENV_NAMES,
    SECRET_SHAPES,
    SECRET_VARS,
    SERVICE_KEYS,
    SERVICES_VAR,
    SHM_RE,
    STATES,
    VERIFY_KEYS,
    Engine,
    Field,
    ParsedServices,
    engine_flag_keys,
)
from .multihost import check_keys as check_multihost_keys

# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: each can end a line of a unit
# file, an env file, a report or a log, or a line as Python's splitlines() reads it.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
FIELD_DEFAULTS = {f.name: f.default for f in FIELDS}


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_image(ref: Any) -> dict[str, str | None] | None:
    """A docker image reference split into domain, path, tag, digest; None when malformed."""
    if not isinstance(ref, str) or not ref or len(ref) > 255:
        return None
    match = IMAGE_RE.fullmatch(ref)
    if not match:
        return None
    domain = match.group("domain")
    # Docker reads a first component without '.' or ':' as part of the (lower-case) path, not a registry.
    registry = domain and ("." in domain or ":" in domain or domain == "localhost")
    if domain and not registry and not re.fullmatch(PATH_COMPONENT, domain):
        return None
    return {k: match.group(k) for k in ("domain", "path", "tag", "digest")}


def image_registry(ref: str) -> str:
    """The registry an image is pulled from: the first path part when it looks like a host, else docker.io."""
    first = ref.split("/", 1)[0]
    if "/" in ref and ("." in first or ":" in first or first == "localhost"):
        return first.split(":", 1)[0].lower()
    return "docker.io"


def secret_problem(value: Any, var: str) -> str | None:
    """Why a secret variable's value is unusable as it stands (never echoing it), or None when unset or fine."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return f"{var} must be a string, got {type_name(value)}"
    if value != value.strip():
        return (
            f"{var} has leading or trailing whitespace or a newline ({len(value)} characters, "
            f"{len(value.strip())} without it). Fix: store the bare value (printf '%s' KEY | ansible-vault "
            "encrypt_string --stdin-name ...), a copied newline breaks docker login and the server's auth"
        )
    return None


# --------------------------------------------------------------------------------------------- checks


class _Checker:
    """Collects the errors of one service; ``where`` is its path in the inventory."""

    def __init__(
        self, where: str, secrets: Sequence[str], errors: list[str], realpath: Callable[[str], str] | None = None
    ) -> None:
        self.where = where
        self.secrets = [s for s in secrets if isinstance(s, str) and len(s.strip()) >= 8]
        self.errors = errors
        self.realpath = realpath

    def err(self, key: str, text: str) -> None:
        self.errors.append(f"{self.where}.{key} {text}" if key else f"{self.where} {text}")

    # ---- scalar types (one rule: a value of the wrong kind, a string included, is refused)

    def typed(self, f: Field, value: Any) -> Any:
        """The value when it has the field's kind, range and choices, else None (with one error)."""
        if f.kind == "bool":
            if not isinstance(value, bool):
                self.err(f.name, f"must be true or false, got {value!r} ({type_name(value)})")
                return None
            return value
        if f.kind == "str":
            if not isinstance(value, str):
                self.err(f.name, f"must be a string, got {type_name(value)}")
                return None
            if not self.bounded(f.name, value, f.length_bound):
                return None
        elif f.kind in ("int", "float"):
            want = _wanted_number(f)
            ok_type = is_int(value) if f.kind == "int" else is_number(value)
            in_range = ok_type and _in_range(f, value)
            if not in_range:
                hint = " (write it without quotes)" if isinstance(value, str) and _numeric(value) else ""
                self.err(f.name, f"must be {want}, got {value!r} ({type_name(value)}){hint}")
                return None
        if f.choices and value not in f.choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in f.choices], n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.err(f.name, f"{value!r} must be one of {', '.join(map(str, f.choices))}{hint}")
            return None
        return value

    def str_list(self, key: str, value: Any) -> list[str] | None:
        if not isinstance(value, list):
            self.err(key, f"must be a list of strings (e.g. ['--flag', 'value']), got {type_name(value)}")
            return None
        out: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            elif is_number(item):
                out.append(str(item))
            else:
                self.err(f"{key}[{i}]", f"must be a string, got {type_name(item)}")
                return None
        return out

    # ---- what reaches a unit, an env file or a command line

    def bounded(self, key: str, text: str, bound: int) -> bool:
        """A string no longer than its field's bound (the message gives the length, never the text)."""
        if len(text) > bound:
            self.err(key, f"is {len(text)} characters long; the bound is {bound}")
            return False
        return True

    def clean(self, key: str, text: str) -> bool:
        """No control characters and no secret in a string that reaches the host."""
        bad = _CONTROL_RE.search(text)
        if bad:
            char = repr(bad.group(0))
            self.err(
                key,
                f"contains the control character {char} at position {bad.start()}: newlines and control "
                "characters would split the unit file, the env file or the command line; remove them",
            )
            return False
        found = self.secret_in(text)
        if found:
            self.err(
                key,
                f"holds {found} (value not shown). Secrets never go into a service's command, arguments, "
                "docker options or plain env: they would land in the 0644 unit file, in `ps` and in "
                "`docker inspect`. Fix: put it in the vault variable sparkfleet_hf_token or "
                "sparkfleet_ngc_api_key; the serving role writes it to the service's 0600 env file",
            )
            return False
        return True

    def secret_in(self, text: str) -> str | None:
        for secret in self.secrets:
            if secret.strip() in text:
                return "the value of a vault secret (sparkfleet_hf_token or sparkfleet_ngc_api_key)"
        for label, pattern in SECRET_SHAPES:
            if pattern.search(text):
                return f"something shaped like {label}"
        return None


def _wanted_number(f: Field) -> str:
    """'an integer 1-65535', 'a number above 0 and at most 1': the field's kind and range in words."""
    kind = "an integer" if f.kind == "int" else "a number"
    if f.kind == "float" and f.minimum == 0.0:
        low = "above 0"
        return f"{kind} {low} and at most {_num(f.maximum)}" if f.maximum is not None else f"{kind} {low}"
    if f.minimum is not None and f.maximum is not None:
        return f"{kind} {_num(f.minimum)}-{_num(f.maximum)}"
    if f.minimum is not None:
        return f"{kind} >= {_num(f.minimum)}"
    return kind


def _num(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:g}"


def _in_range(f: Field, value: float) -> bool:
    if f.kind == "float" and f.minimum == 0.0 and value <= 0:
        return False
    if f.minimum is not None and value < f.minimum:
        return False
    return f.maximum is None or value <= f.maximum


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _option_groups(args: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """The engine's own options (extra_args, command) as (name, value): ``--opt=v``, ``--opt v``; flags have value
    None. Not docker's grammar: docker_args are read by service/docker_args.py as docker's CLI reads them."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            name, eq, inline = arg.partition("=")
            if eq:
                yield name, inline
            elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                yield name, args[i + 1]
                i += 1
            else:
                yield name, None
        i += 1


def _check_docker_args(c: _Checker, svc: Mapping[str, Any], profile: Mapping[str, Any], engine: Engine) -> None:
    """docker_args against service/docker_args.py's table (the profile's capabilities are not an escalation); host
    paths' links resolved with the host's realpath when the parser runs on the host (preflight)."""
    problems = check_docker_args(
        svc["docker_args"],
        profile_capabilities=capabilities(profile.get("docker_args") or []),
        host_network=engine.host_network,
        allow_host_access=bool(svc["allow_host_access"]),
        realpath=c.realpath,
    )
    for problem in problems:
        c.err("docker_args" if problem.index is None else f"docker_args[{problem.index}]", problem.text)


def _check_engine_flags(c: _Checker, engine: Engine, key: str, args: list[str], container_port: int) -> None:
    """Flags that contradict the plan: the unit publishes container_port and the server must listen on it."""
    owned = engine_flag_keys(engine)
    for option, value in _option_groups(args):
        if option in owned:
            c.err(key, f"sets {option}: use the service key {owned[option]} instead (preflight plans with it)")
        elif option in ("--port", engine.flags.port) and value is not None and value != str(container_port):
            c.err(
                key,
                f"sets {option} {value}, but the unit publishes container port {container_port}: the server would "
                f"listen where nothing is published. Fix: drop {option} (sparkfleet sets it) or set container_port",
            )
        elif option in ("--host", engine.flags.host) and value is not None and value not in LISTEN_ANYWHERE:
            c.err(
                key,
                f"sets {option} {value}: inside the container the server must listen on 0.0.0.0 for the "
                "published port to reach it. Fix: drop it; the host side is llm_serving_bind_address",
            )


# --------------------------------------------------------------------------------------------- one service


def _shown_key(key: Any) -> str:
    """A key as a message may show it: as written when short and printable, else quoted and cut."""
    text = str(key)
    if len(text) <= 64 and not _CONTROL_RE.search(text):
        return text
    return repr(text[:64]) + (f"... ({len(text)} characters)" if len(text) > 64 else "")


def _known_keys(c: _Checker, raw: Mapping[str, Any]) -> None:
    for key in raw:
        if key in SERVICE_KEYS:
            continue
        if key in RENAMED_KEYS:
            c.err(str(key), f"is not a service key: use {RENAMED_KEYS[key]} instead")
            continue
        close = difflib.get_close_matches(str(key), SERVICE_KEYS, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(SERVICE_KEYS)}"
        c.err(_shown_key(key), f"is not a service key ({hint}); remove or rename it")


def _check_gpu(c: _Checker, value: Any) -> Any:
    if is_int(value) and value >= 0:
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if not c.bounded("gpu", text, FIELD_BY_NAME["gpu"].length_bound):
            return None
        if text.isdigit():
            c.err("gpu", f"is the string {value!r}: write the GPU index as an integer (gpu: {text})")
            return None
        if _CONTROL_RE.search(text) or not re.fullmatch(r"[A-Za-z0-9 ._-]+", text):
            c.err("gpu", "must be auto, none, all, a GPU index or a word of a GPU name (letters, digits, . _ -)")
            return None
        return text
    c.err("gpu", f"must be auto, none, all, a GPU index (0, 1, ...) or a word of a GPU name, got {value!r}")
    return None


def _check_env(c: _Checker, value: Any) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        c.err("env", f"must be a dict of NAME: value, got {type_name(value)}")
        return None
    out: dict[str, str] = {}
    ok = True
    for key, val in value.items():
        if isinstance(key, str) and len(key) > MAX_ENV_NAME_LEN:
            c.err("env", f"has a key of {len(key)} characters; the bound is {MAX_ENV_NAME_LEN}")
            ok = False
            continue
        if not isinstance(key, str) or not ENV_NAME_RE.fullmatch(key):
            c.err("env", f"key {key!r} is not a valid environment variable name (letters, digits, _)")
            ok = False
            continue
        if key in SECRET_ENV_NAMES:
            var = SECRET_VARS.get(key, "sparkfleet_hf_token" if "HUG" in key else "sparkfleet_ngc_api_key")
            c.err(
                f"env.{key}",
                f"is a secret set in plain env (value not shown): put it in the vault variable {var}; the serving "
                f"role writes {key} to the service's 0600 env file",
            )
            ok = False
            continue
        if isinstance(val, bool) or val is None or not isinstance(val, (str, int, float)):
            c.err(f"env.{key}", f"must be a string or a number, got {type_name(val)} (quote true/false)")
            ok = False
            continue
        text = str(val)
        if not c.bounded(f"env.{key}", text, FIELD_BY_NAME["env"].length_bound) or not c.clean(f"env.{key}", text):
            ok = False
            continue
        out[key] = text
    return out if ok else None


def _clean_tree(c: _Checker, where: str, value: Any) -> bool:
    """Every string key and value inside a verify setting: bounded and free of control characters (they reach
    the benchmark's reports)."""
    if isinstance(value, str):
        return c.bounded(where, value, MAX_NAME_LEN) and c.clean(where, value)
    items: list[tuple[str, Any]] = []
    ok = True
    if isinstance(value, Mapping):
        for key, val in value.items():
            if isinstance(key, str):
                ok = _clean_tree(c, f"{where} key", key) and ok
            items.append((f"{where}.{key}", val))
    elif isinstance(value, list):
        items = [(f"{where}[{i}]", item) for i, item in enumerate(value)]
    for path, item in items:
        ok = _clean_tree(c, path, item) and ok
    return ok


def _check_verify(c: _Checker, value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        c.err("verify", f"must be a dict ({', '.join(VERIFY_KEYS)}), got {type_name(value)}")
        return None
    out: dict[str, Any] = {}
    ok = True
    for key, val in value.items():
        kind = VERIFY_KEYS.get(str(key))
        if kind is None:
            c.err(f"verify.{_shown_key(key)}", f"is not a verify setting: use {', '.join(VERIFY_KEYS)}")
            ok = False
        elif not _clean_tree(c, f"verify.{key}", val):
            ok = False
        elif kind == "bool" and not isinstance(val, bool):
            c.err(f"verify.{key}", f"must be true or false, got {val!r}")
            ok = False
        elif kind == "dict" and not isinstance(val, Mapping):
            c.err(f"verify.{key}", f"must be a dict, got {type_name(val)}")
            ok = False
        elif kind == "list" and (
            not isinstance(val, list)
            or not all(is_int(v) and v > 0 if key == "concurrency" else isinstance(v, str) for v in val)
        ):
            what = "positive integers" if key == "concurrency" else "strings"
            c.err(f"verify.{key}", f"must be a list of {what}, got {val!r}")
            ok = False
        else:
            out[str(key)] = dict(val) if isinstance(val, Mapping) else list(val) if isinstance(val, list) else val
    if not ok:
        return None
    out.setdefault("enabled", True)
    return out


def parse_service(
    where: str,
    raw: Any,
    *,
    profile: Mapping[str, Any],
    secrets: Sequence[str],
    errors: list[str],
    realpath: Callable[[str], str] | None = None,
) -> dict[str, Any] | None:
    """One service -> its normalized dict (every key present, defaults filled), or None with errors."""
    if not isinstance(raw, Mapping):
        errors.append(
            f"{where} must be a dict with at least {', '.join(f.name for f in FIELDS if f.required)}, "
            f"got {type_name(raw)}"
        )
        return None
    before = len(errors)
    c = _Checker(where, secrets, errors, realpath)
    _known_keys(c, raw)
    out: dict[str, Any] = {}
    for f in FIELDS:
        value = raw.get(f.name)
        if value is None or (f.required and value == ""):
            if f.required:
                c.err(f.name, "is required (see the service table in docs/development.md)")
            out[f.name] = list(f.default) if isinstance(f.default, list) else f.default
            if isinstance(f.default, dict):
                out[f.name] = dict(f.default)
            continue
        if f.name == "gpu":
            out[f.name] = _check_gpu(c, value)
        elif f.name == "env":
            out[f.name] = _check_env(c, value)
        elif f.name == "verify":
            out[f.name] = _check_verify(c, value)
        elif f.kind == "list":
            items = c.str_list(f.name, value)
            if items is not None:
                for i, item in enumerate(items):
                    if c.bounded(f"{f.name}[{i}]", item, f.length_bound):
                        c.clean(f"{f.name}[{i}]", item)
            out[f.name] = items
        else:
            typed = c.typed(f, value)
            if typed is not None and f.kind == "str" and f.reaches_host:
                c.clean(f.name, typed)
            out[f.name] = typed
    if len(errors) > before:
        return None
    out["verify"].setdefault("enabled", True)
    given = frozenset(str(k) for k, v in raw.items() if v is not None)
    _check_service(c, out, profile, gpu_given=raw.get("gpu") is not None, given=given)
    if len(errors) > before:
        return None
    return out


_DYNAMO_DEPLOYMENT_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}\Z")


def _check_dynamo(c: _Checker, svc: dict[str, Any], engine: Engine, gpu_given: bool) -> None:
    """The keys of Dynamo engines (service/model.py's ENGINES: dynamo_role, uses_gpu, benchmarked)."""
    if not engine.dynamo_role:
        for key in ("dynamo_deployment", "dynamo_discovery"):
            default = FIELD_DEFAULTS[key]
            if svc[key] != default:
                c.err(key, f"is set, but engine {engine.name} is not a Dynamo engine: remove it")
        return
    if not _DYNAMO_DEPLOYMENT_RE.fullmatch(svc["dynamo_deployment"]):
        c.err(
            "dynamo_deployment",
            f"{svc['dynamo_deployment']!r} must be 1-63 lower-case letters, digits, '_' or '-' (it becomes the "
            "Dynamo namespace, DYN_NAMESPACE, shared by the deployment's frontend and workers)",
        )
    if not DYNAMO_DISCOVERY_RE.fullmatch(svc["dynamo_discovery"]):
        c.err(
            "dynamo_discovery",
            f"{svc['dynamo_discovery']!r} must be file (all components on one host) or the etcd client URL of the "
            "deployment's dynamo-etcd service, e.g. http://spark-01:2379 (docs/dynamo.md)",
        )
    elif engine.dynamo_role == "discovery" and svc["dynamo_discovery"] == "file":
        c.err(
            "dynamo_discovery",
            "is file, but a dynamo-etcd service is the discovery of a deployment that spans hosts: set it to the "
            f"URL the other hosts reach it at (http://<this host>:{svc['port']})",
        )
    if not engine.uses_gpu:
        if gpu_given and svc["gpu"] != "none":
            c.err("gpu", f"is {svc['gpu']!r}, but {engine.name} runs on the CPU: remove gpu or set gpu: none")
        svc["gpu"] = "none"
    elif svc["gpu"] == "none":
        c.err("gpu", f"is none, but {engine.name} needs a GPU (use dynamo-mocker for a CPU stand-in worker)")
    if not engine.benchmarked:
        # The frontend is the OpenAI endpoint llm_verify benchmarks; a worker or etcd serves none.
        svc["verify"]["enabled"] = False


def _check_service(
    c: _Checker,
    svc: dict[str, Any],
    profile: Mapping[str, Any],
    gpu_given: bool = True,
    given: frozenset[str] = frozenset(),
) -> None:
    """Rules across keys, once each key has its type; fills the computed defaults."""
    engine = ENGINES[svc["engine"]]
    _check_dynamo(c, svc, engine, gpu_given)
    check_multihost_keys(svc, engine, given, c.err)
    if not NAME_RE.fullmatch(svc["name"]):
        c.err("name", f"{svc['name']!r} must be {NAME_RULE} (it names the systemd unit and the container)")
    elif svc["name"] in RESERVED_SERVICE_NAMES:
        name = svc["name"]
        c.err(
            "name",
            f"{name!r} is reserved: sparkfleet-{name}.service is {RESERVED_SERVICE_NAMES[name]}, which this service's "
            f"unit would overwrite. Fix: choose another name (for example {name}-1 or the model's name)",
        )
    parsed = parse_image(svc["image"])
    if parsed is None:
        c.err(
            "image",
            f"{svc['image']!r} is not a docker image reference: write [registry[:port]/]path:tag or "
            "path@sha256:<64 hex> (lower-case path, e.g. lmsysorg/sglang:latest-cu130)",
        )
    elif not parsed["tag"] and not parsed["digest"]:
        c.err(
            "image",
            f"{svc['image']!r} has no tag or digest: pin one (e.g. {svc['image']}:<tag> or @sha256:<digest>); "
            "tags like latest move under you",
        )
    svc["port"] = svc["port"] if svc["port"] is not None else engine.default_port
    if svc["container_port"] is None:
        svc["container_port"] = engine.container_port or svc["port"]
    if svc["command"] and not engine.allows_command:
        c.err("command", f"is set, but a {engine.name} image runs its own server: configure it with env")
    for key in ("extra_args", "command"):
        _check_engine_flags(c, engine, key, svc[key], svc["container_port"])
    _check_docker_args(c, svc, profile, engine)
    if svc["shm_size"] is not None and not SHM_RE.fullmatch(svc["shm_size"]):
        c.err("shm_size", f"is {svc['shm_size']!r}: use a docker size such as 16g or 16GB")
    for key in ("api_key_var", "api_key_env"):
        if svc[key] and not ENV_NAME_RE.fullmatch(svc[key]):
            c.err(key, f"{svc[key]!r} must be a variable name (letters, digits, _), not the key itself")
    if svc["api_key_env"] and not svc["api_key_var"]:
        c.err("api_key_env", "is set but api_key_var is not: name the vault variable that holds the key")
    paths = svc["health_paths"] or list(engine.health_paths)
    for i, path in enumerate(paths):
        if not HEALTH_PATH_RE.fullmatch(path):
            c.err(f"health_paths[{i}]", f"{path!r} must be a URL path starting with / (e.g. /v1/models)")
    svc["health_paths"] = paths
    fraction = svc["mem_fraction"]
    max_fraction = profile.get("max_mem_fraction")
    if fraction is not None and is_number(max_fraction) and fraction > float(max_fraction) + 1e-9:
        c.err(
            "mem_fraction",
            f"is {fraction:g}, above {float(max_fraction):g} (the profile's max_mem_fraction). Fix: lower it, or "
            "leave it unset for the profile's default",
        )


# --------------------------------------------------------------------------------------------- the list


def _check_unique(where: str, item: Any, names: dict[str, str], ports: dict[int, str], errors: list[str]) -> bool:
    if not isinstance(item, Mapping):
        return True
    ok = True
    name = item.get("name")
    if isinstance(name, str) and name:
        if name in names:
            errors.append(f"{where}.name {name!r} is also used by {names[name]}: service names must be unique")
            ok = False
        else:
            names[name] = where
    engine_name = item.get("engine")
    engine = ENGINES.get(engine_name) if isinstance(engine_name, str) else None
    port = item.get("port", engine.default_port if engine else None)
    if is_int(port) and item.get("state", "present") == "present":
        if port in ports:
            errors.append(
                f"{where}.port {port} is also used by {ports[port]} on this host: give each present service its "
                "own port"
            )
            ok = False
        else:
            ports[port] = where
    return ok


def parse_services(
    raw: Any,
    *,
    profile: Mapping[str, Any] | None = None,
    secrets: Sequence[str] = (),
    var: str = SERVICES_VAR,
    realpath: Callable[[str], str] | None = None,
    keep: Callable[[Any], bool] | None = None,
) -> ParsedServices:
    """Every service of a host -> normalized services and every error (names and ports unique per host).

    ``keep``: whether this host plans an entry (a service across hosts is planned on its hosts only; the others
    skip it, unchecked, and its port is not theirs).

    ``realpath``: where the parser runs on the host itself (preflight), the host's own os.path.realpath, so a
    docker_args mount through a symbolic link is judged by where the link leads."""
    result = ParsedServices()
    if raw is None:
        return result
    if not isinstance(raw, list):
        result.errors.append(f"{var} must be a list of service dicts (see docs/development.md), got {type_name(raw)}")
        return result
    names: dict[str, str] = {}
    ports: dict[int, str] = {}
    for i, item in enumerate(raw):
        if keep is not None and not keep(item):
            continue
        label = item.get("name") if isinstance(item, Mapping) and isinstance(item.get("name"), str) else ""
        where = f"{var}[{i}]" + (f" ({label})" if label and NAME_RE.fullmatch(label) else "")
        svc = parse_service(
            where, item, profile=profile or {}, secrets=secrets, errors=result.errors, realpath=realpath
        )
        # Names and ports are unique per host; checked on every entry that has them, even one with other
        # problems, so that one run lists them all.
        unique = _check_unique(where, item, names, ports, result.errors)
        if svc is not None and unique:
            svc["where"] = where
            result.services.append(svc)
    return result


__all__ = ["STATES", "image_registry", "parse_image", "parse_service", "parse_services", "secret_problem"]
