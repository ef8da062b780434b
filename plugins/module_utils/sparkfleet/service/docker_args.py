"""A service's ``docker_args``, read the way docker's own CLI reads them, and checked against one table.

**Grammar.** ``docker run`` parses its options with pflag, and so does ``read_args`` here: ``--opt=value``,
``--opt value`` (the next item is the value even when it starts with ``-``), ``-o value``, ``-ovalue``,
``-o=value``, clustered boolean short flags that may end in one taking a value (``-itv /:/x`` is ``-i -t -v /:/x``),
a boolean as ``--rm`` or ``--rm=false`` (never ``--rm false``: ``false`` would be the image). docker run stops
reading options at the first item that is not one (the image) and at ``--``; in ``docker_args``, which come right
before the image, either is refused, as is a last option that would take the image as its value.

**Policy: an allowlist.** Every option of ``docker run`` (Docker 28, ``docker run --help``, hidden aliases
included) is in ``OPTIONS`` with one class:

- ``allowed``: accepted as written (resource limits, names, health checks, the container's own settings);
- ``checked``: accepted when its value passes the option's check in ``CHECKS`` (mounts by host path, namespaces,
  capabilities, security options, labels, env, runtime, GPUs, sysctls); a value that breaks isolation needs
  ``allow_host_access``, one that breaks what sparkfleet relies on is refused;
- ``host``: needs ``allow_host_access: true`` on the service (``--privileged``, devices, other containers'
  volumes, env and namespaces, published host ports, host files the CLI reads or writes);
- ``sparkfleet``: refused: sparkfleet sets it itself and the unit depends on it (``--name``, ``--rm``, ...).

An option that is not in the table is refused (unless the service sets ``allow_host_access``). This is the
choice a reviewer can prove complete: the table has one line per line of ``docker run --help`` and a unit test
asserts each has a class and each checked option its check; a list of bad options is only as complete as the
list of every bad spelling, and a hostile review found many that the old one missed. Host paths are the one
denylist: which host directories hold models differs per lab (``/raid``, ``/home``, ``/mnt``), so a bind mount is
refused when its normalised path is, is under, or holds a system directory or sparkfleet's own.

Links: a path is checked as written, normalised (``//``, ``.``, ``..``, a trailing ``/``), and where it leads:
preflight's plan module runs on the host and passes ``realpath=os.path.realpath`` (the hook is pure: it only calls
the function it is given).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Optional

from ..paths import CONFIG_DIR, ENV_DIR, LKG_DIR, OPT_DIR, STATE_DIR
from .model import SECRET_ENV_NAMES, SECRET_VARS

ALLOWED = "allowed"
CHECKED = "checked"
HOST = "host"
SPARKFLEET = "sparkfleet"
CLASSES: dict[str, str] = {
    ALLOWED: "allowed as written",
    CHECKED: "allowed when its value passes the check; otherwise needs allow_host_access (or is refused)",
    HOST: "needs allow_host_access: true on the service",
    SPARKFLEET: "refused: sparkfleet sets it, and the unit depends on it",
}

# A finding's kind: HOST (allow_host_access lets it through) or REFUSED (never: it breaks the unit or a secret).
REFUSED = "refused"

HOST_FIX = (
    "Fix: remove it, or set allow_host_access: true on this service if its image's documentation requires it "
    "(docs/serving.md)"
)


@dataclass(frozen=True)
class Option:
    """One ``docker run`` option: its long name, short letter, whether it takes a value, its class, why."""

    name: str
    takes_value: bool
    cls: str
    why: str
    short: str = ""
    aliases: tuple[str, ...] = ()


def _o(name: str, cls: str, why: str, short: str = "", aliases: tuple[str, ...] = ()) -> Option:
    return Option(name, True, cls, why, short, aliases)


def _b(name: str, cls: str, why: str, short: str = "") -> Option:
    return Option(name, False, cls, why, short)


# Every option of `docker run` (Docker 28), in the order of `docker run --help`; hidden aliases with their option.
OPTIONS: tuple[Option, ...] = (
    _o("add-host", ALLOWED, "adds a line to the container's own /etc/hosts"),
    _o("annotation", HOST, "passes an annotation to the OCI runtime (the NVIDIA runtime injects devices by them)"),
    _o("attach", ALLOWED, "attaches the container's stdin, stdout or stderr", "a"),
    _o("blkio-weight", ALLOWED, "weighs the container's block IO (a limit)"),
    _o("blkio-weight-device", ALLOWED, "weighs the container's block IO per device (a limit)"),
    _o("cap-add", CHECKED, "adds a Linux capability: only those the profile's docker_args add"),
    _o("cap-drop", ALLOWED, "drops a Linux capability (less privilege)"),
    _o("cgroup-parent", HOST, "puts the container in another cgroup, outside docker's limits"),
    _o("cgroupns", CHECKED, "chooses the cgroup namespace: host shares the host's"),
    _o("cidfile", HOST, "makes the docker CLI write a file on the host"),
    _o("cpu-count", ALLOWED, "limits CPUs (Windows)"),
    _o("cpu-percent", ALLOWED, "limits CPU (Windows)"),
    _o("cpu-period", ALLOWED, "limits CPU (CFS period)"),
    _o("cpu-quota", ALLOWED, "limits CPU (CFS quota)"),
    _o("cpu-rt-period", HOST, "gives the container a real-time scheduling budget that can starve the host"),
    _o("cpu-rt-runtime", HOST, "gives the container a real-time scheduling budget that can starve the host"),
    _o("cpu-shares", ALLOWED, "weighs the container's CPU (a limit)", "c"),
    _o("cpus", ALLOWED, "limits CPUs"),
    _o("cpuset-cpus", ALLOWED, "pins the container to CPUs"),
    _o("cpuset-mems", ALLOWED, "pins the container to memory nodes"),
    _o("credentialspec", HOST, "passes a Windows credential spec (hidden, Windows only)"),
    _b("detach", SPARKFLEET, "the unit runs the container in the foreground (docker run would end at once)", "d"),
    _o("detach-keys", ALLOWED, "sets the key sequence that detaches"),
    _o("device", HOST, "gives the container a host device"),
    _o("device-cgroup-rule", HOST, "lets the container use host devices by number"),
    _o("device-read-bps", ALLOWED, "limits the container's reads from a device (a limit)"),
    _o("device-read-iops", ALLOWED, "limits the container's reads from a device (a limit)"),
    _o("device-write-bps", ALLOWED, "limits the container's writes to a device (a limit)"),
    _o("device-write-iops", ALLOWED, "limits the container's writes to a device (a limit)"),
    _b("disable-content-trust", ALLOWED, "skips image verification (the unit never pulls: --pull never)"),
    _o("dns", ALLOWED, "sets the container's DNS servers"),
    _o("dns-option", ALLOWED, "sets the container's DNS options", aliases=("dns-opt",)),
    _o("dns-search", ALLOWED, "sets the container's DNS search domains"),
    _o("domainname", ALLOWED, "sets the container's NIS domain name"),
    _o("entrypoint", ALLOWED, "replaces the image's entry point"),
    _o("env", CHECKED, "sets an environment variable: not a secret's (those come from the vault)", "e"),
    _o("env-file", CHECKED, "reads env from a host file: not one under a system directory or sparkfleet's"),
    _o("expose", ALLOWED, "marks a container port as exposed (publishes nothing)"),
    _o("gpus", CHECKED, "requests GPUs: all, a count, or devices"),
    _o("group-add", ALLOWED, "adds groups to the container's user"),
    _o("health-cmd", ALLOWED, "sets the container's health check"),
    _o("health-interval", ALLOWED, "sets the container's health check"),
    _o("health-retries", ALLOWED, "sets the container's health check"),
    _o("health-start-interval", ALLOWED, "sets the container's health check"),
    _o("health-start-period", ALLOWED, "sets the container's health check"),
    _o("health-timeout", ALLOWED, "sets the container's health check"),
    _b("help", SPARKFLEET, "docker would print its help instead of running the container"),
    _o("hostname", ALLOWED, "sets the container's host name", "h"),
    _b("init", ALLOWED, "runs an init process in the container"),
    _b("interactive", ALLOWED, "keeps the container's stdin open", "i"),
    _o("io-maxbandwidth", ALLOWED, "limits IO (Windows)"),
    _o("io-maxiops", ALLOWED, "limits IO (Windows)"),
    _o("ip", ALLOWED, "sets the container's IPv4 address on its network"),
    _o("ip6", ALLOWED, "sets the container's IPv6 address on its network"),
    _o("ipc", CHECKED, "chooses the IPC namespace: host (what SGLang and vLLM document) or private; not another "
       "container's"),
    _o("isolation", ALLOWED, "chooses the isolation technology (Windows; default on Linux)"),
    _o("kernel-memory", ALLOWED, "limits kernel memory (deprecated; a limit)"),
    _o("label", CHECKED, "sets a label: not sparkfleet's own org.sparkfleet.*", "l"),
    _o("label-file", HOST, "reads labels from a host file (they could set sparkfleet's own)"),
    _o("link", HOST, "links another container, whose environment (secrets included) it then sees"),
    _o("link-local-ip", ALLOWED, "sets the container's link-local addresses"),
    _o("log-driver", ALLOWED, "chooses the container's log driver"),
    _o("log-opt", CHECKED, "sets log driver options: not env or env-regex (they copy the container's environment, "
       "secrets included, into every log entry)"),
    _o("mac-address", ALLOWED, "sets the container's MAC address"),
    _o("memory", ALLOWED, "limits memory", "m"),
    _o("memory-reservation", ALLOWED, "sets a soft memory limit"),
    _o("memory-swap", ALLOWED, "limits memory plus swap"),
    _o("memory-swappiness", ALLOWED, "tunes the container's swapping"),
    _o("mount", CHECKED, "mounts a volume, tmpfs or host path: not a system directory or sparkfleet's"),
    _o("name", SPARKFLEET, "sparkfleet names the container sparkfleet-<name> (ExecStop, the health gate and "
       "teardown find it by that name)"),
    _o("network", CHECKED, "chooses the network: host only for engines that run on it; not another container's",
       aliases=("net",)),
    _o("network-alias", ALLOWED, "adds a name on the container's network", aliases=("net-alias",)),
    _b("no-healthcheck", ALLOWED, "turns off the image's health check"),
    _b("oom-kill-disable", HOST, "stops the kernel from killing the container: it kills host processes instead"),
    _o("oom-score-adj", CHECKED, "tunes the OOM score: not below 0 (host processes would be killed first)"),
    _o("pid", CHECKED, "chooses the PID namespace: not the host's or another container's"),
    _o("pids-limit", ALLOWED, "limits processes"),
    _o("platform", ALLOWED, "chooses the image's platform"),
    _b("privileged", HOST, "gives the container every capability and device"),
    _o("publish", HOST, "publishes a host port beyond the service's port (preflight's port plan and "
       "llm_serving_bind_address do not cover it)", "p"),
    _b("publish-all", HOST, "publishes every exposed port on the host, on every address", "P"),
    _o("pull", SPARKFLEET, "sparkfleet sets --pull never (the role pulls or loads image_archive; the unit never "
       "pulls)"),
    _b("quiet", ALLOWED, "suppresses pull output", "q"),
    _b("read-only", ALLOWED, "mounts the container's root file system read-only"),
    _o("restart", SPARKFLEET, "systemd restarts the unit (Restart=always), and docker refuses a restart policy "
       "with --rm"),
    _b("rm", SPARKFLEET, "sparkfleet sets --rm (each start runs a fresh container)"),
    _o("runtime", CHECKED, "chooses the OCI runtime: nvidia or runc"),
    _o("security-opt", CHECKED, "sets a security option: only no-new-privileges"),
    _o("shm-size", ALLOWED, "sizes /dev/shm (the service key shm_size sets it too)"),
    _b("sig-proxy", ALLOWED, "proxies signals to the container"),
    _o("stop-signal", ALLOWED, "sets the signal that stops the container"),
    _o("stop-timeout", ALLOWED, "sets docker's stop timeout (the unit stops with stop_timeout_s)"),
    _o("storage-opt", ALLOWED, "sets the container's storage options (a size limit)"),
    _o("sysctl", CHECKED, "sets a namespaced kernel parameter (net.*, IPC ones): not a host-wide one"),
    _o("tmpfs", ALLOWED, "mounts a tmpfs inside the container"),
    _b("tty", ALLOWED, "allocates a terminal", "t"),
    _o("ulimit", ALLOWED, "sets the container's resource limits (memlock=-1, stack=67108864)"),
    _b("use-api-socket", HOST, "mounts the docker API socket (root on the host) into the container"),
    _o("user", ALLOWED, "runs the container as a user", "u"),
    _o("userns", CHECKED, "chooses the user namespace: host turns off user namespace remapping"),
    _o("uts", CHECKED, "chooses the UTS namespace: host shares the host's host name"),
    _o("volume", CHECKED, "mounts a volume or host path: not a system directory or sparkfleet's", "v"),
    _o("volume-driver", HOST, "chooses a volume driver, which may mount any host path"),
    _o("volumes-from", HOST, "mounts another container's volumes"),
    _o("workdir", ALLOWED, "sets the container's working directory", "w"),
)  # fmt: skip

BY_LONG: dict[str, Option] = {alias: o for o in OPTIONS for alias in (o.name, *o.aliases)}
BY_SHORT: dict[str, Option] = {o.short: o for o in OPTIONS if o.short}

# Host paths a container must not mount, nor the CLI read: a path that is one of them, is under one, or holds one
# (its parent: /var holds /var/lib/docker). The whole hierarchy of the OS: its programs, configuration (with the
# service env files under sparkfleet's CONFIG_DIR), devices, kernel interfaces, root's home, and /var (docker's state
# and socket, logs, spools, package state: /var/run is /run).
SYSTEM_PATHS: tuple[str, ...] = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/snap",
    "/sys",
    "/usr",
    "/var",
)
# sparkfleet's own directories on a host (the roles' defaults), with what they hold.
SPARKFLEET_PATHS: dict[str, str] = {
    CONFIG_DIR: f"every service's 0600 env file ({ENV_DIR}), the secrets and the gateway's key",
    STATE_DIR: f"the last-known-good versions ({LKG_DIR}), the model cache and Dynamo's directories",
    OPT_DIR: "the benchmark's and the gateway's virtual environments",
}
# The labels sparkfleet finds its containers by (contracts.SERVICE_LABEL, ENGINE_LABEL).
OWN_LABEL_PREFIX = "org.sparkfleet."
RUNTIMES = ("nvidia", "runc", "io.containerd.runc.v2")
# Kernel parameters that are namespaced per container (docker's own list): any other would be the host's.
_SYSCTL_NAMES = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                 "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")  # fmt: skip
_SYSCTL_PREFIXES = ("net.", "fs.mqueue.")
_VOLUME_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Go's strconv.ParseBool.
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Given:
    """One option as docker reads it: the item it starts at, its spelling, the option (None: unknown), value."""

    index: int
    spelled: str
    option: Option | None
    value: str | None  # None: a boolean given without =value (true)


@dataclass(frozen=True)
class Problem:
    """A refused docker_args entry: ``index`` when it is about one item (structure), else None."""

    text: str
    index: int | None = None


def _structure(index: int, text: str) -> Problem:
    return Problem(text, index)


def _long(args: Sequence[str], i: int, lenient: bool) -> tuple[Given | Problem, int]:
    arg = args[i]
    body = arg[2:]
    if not body or body[0] in "-=":
        return _structure(i, f"{arg!r} is not an option docker can read (bad flag syntax). Fix: --name or "
                          "--name=value"), i + 1  # fmt: skip
    name, eq, inline = body.partition("=")
    option = BY_LONG.get(name)
    spelled = "--" + name
    if eq:
        return Given(i, spelled, option, inline), i + 1
    if option is None:
        if lenient and i + 1 < len(args) and not args[i + 1].startswith("-"):
            return Given(i, spelled, None, args[i + 1]), i + 2
        return Given(i, spelled, None, None), i + 1
    if not option.takes_value:
        return Given(i, spelled, option, None), i + 1
    if i + 1 >= len(args):
        return _needs_value(i, spelled), i + 1
    return Given(i, spelled, option, args[i + 1]), i + 2


def _needs_value(i: int, spelled: str) -> Problem:
    return _structure(
        i,
        f"{spelled} needs a value, but it is the last of docker_args: docker would take the service's image as "
        f"its value and run the engine's first argument as the image. Fix: give it a value ({spelled}=VALUE) or "
        "remove it",
    )


def _short(args: Sequence[str], i: int, lenient: bool) -> tuple[list[Given | Problem], int]:
    """pflag's parseShortArg: each letter a flag; one that takes a value takes the rest, or the next item."""
    out: list[Given | Problem] = []
    rest = args[i][1:]
    nxt = i + 1
    while rest:
        letter, after = rest[0], rest[1:]
        option = BY_SHORT.get(letter)
        spelled = "-" + letter
        if len(rest) > 2 and rest[1] == "=":  # -o=value
            out.append(Given(i, spelled, option, rest[2:]))
            return out, nxt
        if option is None:
            # pflag stops at an unknown letter; with allow_host_access the rest is read as its value.
            value = after or (args[nxt] if lenient and nxt < len(args) and not args[nxt].startswith("-") else None)
            if not after and value is not None:
                nxt += 1
            out.append(Given(i, spelled, None, value))
            return out, nxt
        if not option.takes_value:
            out.append(Given(i, spelled, option, None))
            rest = after
            continue
        if after:  # -ovalue
            out.append(Given(i, spelled, option, after))
        elif nxt < len(args):  # -o value
            out.append(Given(i, spelled, option, args[nxt]))
            nxt += 1
        else:
            out.append(_needs_value(i, spelled))
        return out, nxt
    return out, nxt


def read_args(args: Sequence[str], *, lenient: bool = False) -> tuple[list[Given], list[Problem]]:
    """docker_args as pflag reads them: the options given, and the problems of structure (always refused).

    ``lenient`` (allow_host_access): an unknown ``--opt`` followed by an item that does not start with ``-`` takes
    it as its value, as the old reading did; without it an unknown option is refused anyway.
    """
    given: list[Given] = []
    problems: list[Problem] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            what = "ends docker's options" if arg == "--" else "is not an option"
            problems.append(
                _structure(
                    i,
                    f"{arg!r} {what}: docker run stops reading options there, runs what follows as the image and "
                    "the service's image as its command. Fix: docker_args holds only options (--name=value or "
                    "--name value); the image is the key image, its arguments extra_args or command",
                )
            )
            break
        if arg.startswith("--"):
            one, i = _long(args, i, lenient)
            items: list[Given | Problem] = [one]
        else:
            items, i = _short(args, i, lenient)
        for item in items:
            if isinstance(item, Given):
                given.append(item)
            else:
                problems.append(item)
    return given, problems


def bool_value(value: str | None) -> bool | None:
    """A boolean flag's value as Go's strconv.ParseBool reads it (None given: true); None when not a boolean."""
    if value is None or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


# --------------------------------------------------------------------------------------------- paths


def normalize_path(path: str) -> str:
    """An absolute path with ``//``, ``.``, ``..`` and a trailing ``/`` collapsed (``..`` at the root stays)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _holds(outer: str, inner: str) -> bool:
    """``outer`` is ``inner`` or one of its parents."""
    return _under(inner, outer)


def protected_path(path: str) -> str | None:
    """Why a normalised host path must not reach a container (None: it may): the whole system, a system
    directory or sparkfleet's own, the path itself, under it, or holding it."""
    if path == "/":
        return "the whole system"
    for root, what in SPARKFLEET_PATHS.items():
        if _under(path, root):
            where = "" if path == root else f"under {root}, "
            return f"{where}sparkfleet's own state: {what}"
    for root in SYSTEM_PATHS:
        if _under(path, root):
            return "a system directory" if path == root else f"under {root}, a system directory"
    for root, what in SPARKFLEET_PATHS.items():
        if _holds(path, root):
            return f"it holds {root}, sparkfleet's own state: {what}"
    for root in SYSTEM_PATHS:
        if _holds(path, root):
            return f"it holds {root}, a system directory"
    return None


@dataclass(frozen=True)
class _Context:
    capabilities: frozenset[str]
    host_network: bool
    realpath: Callable[[str], str] | None


@dataclass(frozen=True)
class Finding:
    """What a check found: HOST (allow_host_access lets it through) or REFUSED (the text carries its fix)."""

    kind: str
    text: str
    fix: str = HOST_FIX


def _host_path(
    spelled: str, written: str, verb: str, ctx: _Context, what: str = "into the container"
) -> Finding | None:
    """A host path an option mounts or reads: absolute, and not protected (after normalising, and resolving links
    when the context can)."""
    if not written.startswith("/"):
        return Finding(
            REFUSED,
            f"{verb} the relative host path {written!r} ({spelled}): docker resolves it against the working "
            "directory of the docker CLI. Fix: write the absolute path",
        )
    norm = normalize_path(written)
    shown = norm if norm == written else f"{norm} (written {written!r})"
    why = protected_path(norm)
    if why is None and ctx.realpath is not None:
        real = normalize_path(ctx.realpath(norm))
        why = protected_path(real)
        if why is not None:
            shown = f"{shown} (a link to {real})"
    if why is None:
        return None
    return Finding(HOST, f"{verb} the host's {shown} {what} with {spelled} ({why})")


# --------------------------------------------------------------------------------------------- checks


def _check_volume(spelled: str, value: str, ctx: _Context) -> Finding | None:
    """-v SRC:DST[:OPTS]: SRC an absolute host path (checked) or a volume name; one part: an anonymous volume."""
    if not value:
        return Finding(REFUSED, f"has {spelled} with an empty value. Fix: -v SOURCE:TARGET")
    parts = value.split(":")
    if len(parts) == 1:
        return None
    source, opts = parts[0], parts[2] if len(parts) > 2 else ""
    if source.startswith(("/", ".")):
        found = _host_path(spelled, source, "mounts", ctx)
        if found:
            return found
    elif not _VOLUME_NAME_RE.fullmatch(source):
        return Finding(REFUSED, f"has {spelled} {value}: {source!r} is neither an absolute host path nor a volume "
                       "name. Fix: write the absolute path, or a volume name (letters, digits, _ . -)")  # fmt: skip
    for opt in opts.split(","):
        if opt in ("shared", "rshared"):
            return Finding(HOST, f"has {spelled} {value}: {opt} propagation lets mounts made in the container reach "
                           "the host")  # fmt: skip
        if opt in ("z", "Z"):
            return Finding(HOST, f"has {spelled} {value}: :{opt} relabels the host directory for SELinux (a change "
                           "to the host)")  # fmt: skip
    return None


def _csv_fields(value: str) -> list[str] | None:
    """One record of Go's encoding/csv (strict: a quote only around a whole field); None where Go errors."""
    fields: list[str] = []
    i, n = 0, len(value)
    while True:
        if i < n and value[i] == '"':
            i += 1
            field = []
            while True:
                if i >= n:
                    return None
                if value[i] == '"':
                    if i + 1 < n and value[i + 1] == '"':
                        field.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                field.append(value[i])
                i += 1
            fields.append("".join(field))
            if i < n and value[i] != ",":
                return None
        else:
            end = value.find(",", i)
            end = n if end < 0 else end
            if '"' in value[i:end]:
                return None
            fields.append(value[i:end])
            i = end
        if i >= n:
            return fields
        i += 1  # the comma


_MOUNT_FLAGS = ("readonly", "ro", "volume-nocopy", "bind-nonrecursive")
_MOUNT_KEYS = (
    "type", "source", "src", "target", "dst", "destination", "readonly", "ro", "consistency", "bind-propagation",
    "bind-nonrecursive", "bind-recursive", "volume-subpath", "volume-nocopy", "volume-label", "volume-driver",
    "volume-opt", "tmpfs-size", "tmpfs-mode", "image-subpath",
)  # fmt: skip


def _check_mount(spelled: str, value: str, ctx: _Context) -> Finding | None:
    """--mount type=...,source=...: docker's CSV with keys in any case; the last source wins; type volume unless
    given. A bind's source is checked as a host path; volume drivers and options need allow_host_access."""
    fields = _csv_fields(value)
    if fields is None:
        return Finding(REFUSED, f"has {spelled} {value}, which is not valid CSV (docker would refuse it). Fix: quote "
                       'a whole field ("source=/a,b",target=/x)')  # fmt: skip
    keys: dict[str, str] = {}
    for field in fields:
        key, eq, val = field.partition("=")
        key = key.lower()
        if key not in _MOUNT_KEYS or (not eq and key not in _MOUNT_FLAGS):
            return Finding(REFUSED, f"has {spelled} {value}: {field!r} is not a mount field docker knows. Fix: "
                           "type=, source=, target=, readonly, ... (docs.docker.com: --mount)")  # fmt: skip
        keys["source" if key == "src" else key] = val
    kind = keys.get("type", "volume").lower()
    source = keys.get("source", "")
    if kind not in ("bind", "volume", "tmpfs", "image"):
        return Finding(HOST, f"has {spelled} {value}: type {kind} is not a bind, volume, tmpfs or image mount")
    if "volume-driver" in keys or "volume-opt" in keys:
        return Finding(HOST, f"has {spelled} {value}: a volume driver or volume option can mount any host path "
                       "(the local driver's device=)")  # fmt: skip
    if keys.get("bind-propagation", "") in ("shared", "rshared"):
        return Finding(HOST, f"has {spelled} {value}: shared propagation lets mounts made in the container reach "
                       "the host")  # fmt: skip
    if kind == "bind" or source.startswith(("/", ".")):
        return _host_path(spelled, source, "mounts", ctx) if source else None
    return None


def _check_env_file(spelled: str, value: str, ctx: _Context) -> Finding | None:
    return _host_path(spelled, value, "reads", ctx, "as an env file")


def _check_env(spelled: str, value: str, ctx: _Context) -> Finding | None:
    name = value.split("=", 1)[0]
    if name in SECRET_ENV_NAMES:
        var = SECRET_VARS.get(name, "sparkfleet_hf_token" if "HUG" in name else "sparkfleet_ngc_api_key")
        return Finding(REFUSED, f"has {spelled} {name}=... (value not shown): a secret in the unit's command line. "
                       f"Fix: put it in the vault variable {var}; the serving role writes {name} to the service's "
                       "0600 env file")  # fmt: skip
    return None


def _capability(value: str) -> str:
    upper = value.upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def _check_cap_add(spelled: str, value: str, ctx: _Context) -> Finding | None:
    for cap in value.split(","):
        if _capability(cap) == "ALL":
            return Finding(HOST, f"has {spelled} {value}, which adds every capability")
        if _capability(cap) not in ctx.capabilities:
            extra = ", ".join(sorted(ctx.capabilities)) or "none"
            return Finding(HOST, f"adds capability {value}, beyond the profile's ({extra})")
    return None


def _check_security_opt(spelled: str, value: str, ctx: _Context) -> Finding | None:
    # docker's parseSecurityOpts: KEY=VALUE, else the old KEY:VALUE.
    key, sep, val = value.partition("=")
    if not sep:
        key, sep, val = value.partition(":")
    if key == "no-new-privileges" and (not sep or bool_value(val)):
        return None
    return Finding(HOST, f"has {spelled} {value}, which turns off or replaces the container's confinement "
                   "(only no-new-privileges is accepted as is)")  # fmt: skip


def _check_log_opt(spelled: str, value: str, ctx: _Context) -> Finding | None:
    if value.split("=", 1)[0] in ("env", "env-regex"):
        return Finding(HOST, f"has {spelled} {value}, which copies the container's environment (its secrets "
                       "included) into every log entry")  # fmt: skip
    return None


def _namespace(name: str, *, host_ok: bool = False) -> Callable[[str, str, _Context], Finding | None]:
    def check(spelled: str, value: str, ctx: _Context) -> Finding | None:
        mode = value.lower()
        if mode == "host" and not (host_ok or (name == "network" and ctx.host_network)):
            return Finding(HOST, f"has {spelled} host, which shares the host's namespace with the container")
        if mode.startswith("container:"):
            return Finding(HOST, f"has {spelled} {value}, which shares another container's namespace (and what it "
                           "sees) with this one")  # fmt: skip
        return None

    return check


def _check_gpus(spelled: str, value: str, ctx: _Context) -> Finding | None:
    fields = _csv_fields(value)
    ok = fields is not None and len(fields) > 0
    for field in fields or []:
        key, eq, val = field.partition("=")
        if not eq:
            ok = ok and (key == "all" or re.fullmatch(r"[0-9]+", key) is not None)
        elif key == "driver":
            ok = ok and val == "nvidia"
        else:
            ok = ok and key in ("count", "device", "capabilities")
    if ok:
        return None
    return Finding(HOST, f"has {spelled} {value}: a GPU request other than all, a count, device=, capabilities= "
                   "(driver nvidia)")  # fmt: skip


def _check_runtime(spelled: str, value: str, ctx: _Context) -> Finding | None:
    if value in RUNTIMES:
        return None
    return Finding(HOST, f"has {spelled} {value}: a runtime other than {', '.join(RUNTIMES)}, defined by the "
                   "daemon's configuration (it may not isolate the container)")  # fmt: skip


def _check_label(spelled: str, value: str, ctx: _Context) -> Finding | None:
    if value.lower().startswith(OWN_LABEL_PREFIX):
        return Finding(REFUSED, f"has {spelled} {value}: sparkfleet's own labels ({OWN_LABEL_PREFIX}*) say which "
                       "service a container is; sparkfleet sets them. Fix: use another label name")  # fmt: skip
    return None


def _check_sysctl(spelled: str, value: str, ctx: _Context) -> Finding | None:
    name = value.split("=", 1)[0]
    if name in _SYSCTL_NAMES or name.startswith(_SYSCTL_PREFIXES):
        return None
    return Finding(HOST, f"has {spelled} {value}: {name} is not namespaced per container (it is the host's)")


def _check_oom_score_adj(spelled: str, value: str, ctx: _Context) -> Finding | None:
    try:
        score = int(value)
    except ValueError:
        return Finding(REFUSED, f"has {spelled} {value}: not an integer. Fix: an integer 0-1000")
    if score < 0:
        return Finding(HOST, f"has {spelled} {value}, which makes the kernel kill host processes before this "
                       "container")  # fmt: skip
    return None


# Evaluated at run time on the managed host, whose Python may predate 3.10's X | None.
Check = Callable[[str, str, _Context], Optional[Finding]]  # noqa: UP045
CHECKS: dict[str, Check] = {
    "cap-add": _check_cap_add,
    "cgroupns": _namespace("cgroupns"),
    "env": _check_env,
    "env-file": _check_env_file,
    "gpus": _check_gpus,
    "ipc": _namespace("ipc", host_ok=True),
    "label": _check_label,
    "log-opt": _check_log_opt,
    "mount": _check_mount,
    "network": _namespace("network"),
    "oom-score-adj": _check_oom_score_adj,
    "pid": _namespace("pid"),
    "runtime": _check_runtime,
    "security-opt": _check_security_opt,
    "sysctl": _check_sysctl,
    "userns": _namespace("userns"),
    "uts": _namespace("uts"),
    "volume": _check_volume,
}


# --------------------------------------------------------------------------------------------- the check


def _finding(g: Given, ctx: _Context) -> Finding | None:
    option = g.option
    if option is None:
        return Finding(
            HOST,
            f"has {g.spelled}, which is not a docker run option (Docker 28's docker run --help)",
            "Fix: check the spelling; an option newer than sparkfleet's table needs allow_host_access: true on the "
            "service, which passes it through as written (docs/serving.md)",
        )
    if not option.takes_value:
        truth = bool_value(g.value)
        if truth is None:
            return Finding(REFUSED, f"has {g.spelled}={g.value}: a boolean is true or false. Fix: {g.spelled} or "
                           f"{g.spelled}=false")  # fmt: skip
        if option.cls == SPARKFLEET:
            return Finding(REFUSED, f"has {g.spelled}: {option.why}. Fix: remove it")
        if option.cls == HOST and truth:
            return Finding(HOST, f"has {g.spelled}, which {option.why}")
        return None
    value = g.value or ""
    if option.cls == SPARKFLEET:
        return Finding(REFUSED, f"has {g.spelled} {value}: {option.why}. Fix: remove it")
    if option.cls == HOST:
        return Finding(HOST, f"has {g.spelled} {value}, which {option.why}")
    if option.cls == CHECKED:
        return CHECKS[option.name](g.spelled, value, ctx)
    return None


def capabilities(profile_args: Iterable[object]) -> frozenset[str]:
    """The capabilities a profile's docker_args add (--cap-add in any spelling)."""
    given, _problems = read_args([str(a) for a in profile_args], lenient=True)
    caps = {
        _capability(cap)
        for g in given
        if g.option is not None and g.option.name == "cap-add" and g.value
        for cap in g.value.split(",")
    }
    return frozenset(caps)


def check_docker_args(
    args: Sequence[str],
    *,
    profile_capabilities: frozenset[str] = frozenset(),
    host_network: bool = False,
    allow_host_access: bool = False,
    realpath: Callable[[str], str] | None = None,
) -> list[Problem]:
    """Every problem of a service's docker_args: structure and sparkfleet's own options always, isolation unless
    ``allow_host_access``. ``host_network``: the engine runs with --network host anyway. ``realpath``: resolve a
    host path's links (run on the host; the controller passes none)."""
    given, problems = read_args(args, lenient=allow_host_access)
    ctx = _Context(profile_capabilities, host_network, realpath)
    for g in given:
        found = _finding(g, ctx)
        if found is None or (found.kind == HOST and allow_host_access):
            continue
        text = found.text if found.kind == REFUSED else f"{found.text}. {found.fix}"
        problems.append(Problem(text))
    return problems


def docs_table() -> list[str]:
    """The table of docs/serving.md ("Which docker options a service may use"), from OPTIONS (Markdown lines)."""
    lines = ["| option | class | what it does, what is checked |", "| --- | --- | --- |"]
    for o in OPTIONS:
        names = ", ".join(f"`--{n}`" for n in (o.name, *o.aliases))
        if o.short:
            names = f"`-{o.short}`, " + names
        value = "" if o.takes_value else " (boolean)"
        lines.append(f"| {names}{value} | {o.cls} | {o.why} |")
    return lines


__all__ = [
    "ALLOWED",
    "CHECKED",
    "CHECKS",
    "CLASSES",
    "HOST",
    "OPTIONS",
    "SPARKFLEET",
    "SPARKFLEET_PATHS",
    "SYSTEM_PATHS",
    "Given",
    "Option",
    "Problem",
    "capabilities",
    "check_docker_args",
    "docs_table",
    "normalize_path",
    "protected_path",
    "read_args",
]
