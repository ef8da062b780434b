"""The measured check of the fabric of a service across hosts: NCCL's ``all_gather_perf`` run by the group's head
across every host of the group, its bus bandwidth compared with a threshold (docs/multi-host.md).

- ``parse_all_gather``: the tool's output as it prints it (nccl-tests: the ``# nThread`` header, the ``# Using
  devices`` rank lines, the out-of-place / in-place table, ``# Out of bounds values``, ``# Avg bus bandwidth``);
  output that is not that table raises ``PerfOutputError`` naming the line.
- ``plan_checks``: from every host's plan, one measurement per set of hosts (two services on the same hosts are
  measured once), each host on its fabric address with its NCCL environment from its piece of the plan;
  ``command`` is the OpenMPI command line its head runs (one app context per host, ``-x NAME=VALUE`` of an allowlist
  of NCCL/UCX/OpenMPI variables: never a secret); ``memory_problems`` refuses hosts without the memory the test holds.
- ``judge``: a run's verdict (pass, fail, error, not run) whose problems name the host, the interface and the fix
  (FIELD-NOTES "one model across Sparks (the fabric)").
- ``run_module``: the body of the ``sparkfleet_fabric_perf`` module.

NVIDIA validates two Sparks on a switch with ``all_gather_perf -b 16G`` and wants 21.875 GB/s (175 Gb/s) of bus
bandwidth, 10 GB/s on a ring. The verdict compares the out-of-place bus bandwidth at the largest size measured (with
NVIDIA's one-size run it is within a fraction of the ``Avg bus bandwidth`` line, which is reported too; over a sweep
of sizes the average would count small messages that never reach the link's rate).
"""

from __future__ import annotations

import math
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .contracts import FABRIC_DIR, FABRIC_PERF_SCHEMA
from .service.multihost import FABRIC_HCA_VAR, FABRIC_INTERFACE_VAR
from .service.plan import DEPLOY

# NVIDIA's validation of two Sparks on a switch (175 Gb/s) and on a ring.
DEFAULT_MIN_BUSBW_GBS = 21.875
RING_MIN_BUSBW_GBS = 10.0
DEFAULT_SIZE = "16G"
DEFAULT_TIMEOUT_S = 300
DEFAULT_MPIRUN = "mpirun"
DEFAULT_BINARY = "all_gather_perf"
# nccl-tests' buffers of all_gather per rank with validation on: send (size / ranks), receive (size) and expected
# (size); on top, a tenth for NCCL's own buffers and the process.
MEMORY_HEADROOM = 1.1
# Below this share of the threshold the run saw about half the link: one half of the CX-7 port.
HALF_LINK_SHARE = 0.6
PASS, FAIL, ERROR, NOT_RUN = "pass", "fail", "error", "not run"
STATUSES = (PASS, FAIL, ERROR, NOT_RUN)
# The variables of a piece's environment that reach all_gather_perf (NCCL, UCX, OpenMPI's own), by name prefix.
PERF_ENV_PREFIXES = ("NCCL_", "UCX_", "OMPI_MCA_")
# The role's variables, named in messages (roles/sparkfleet_fabric).
MIN_BUSBW_VAR = "sparkfleet_fabric_min_busbw_gbps"
SIZE_VAR = "sparkfleet_fabric_perf_size"
TIMEOUT_VAR = "sparkfleet_fabric_perf_timeout_s"
MPIRUN_VAR = "sparkfleet_fabric_perf_mpirun"
MPIRUN_ARGS_VAR = "sparkfleet_fabric_perf_mpirun_args"
BINARY_VAR = "sparkfleet_fabric_perf_binary"
NETPLAN = "netplan, e.g. /etc/netplan/40-cx7.yaml"
# How much of the output a verdict keeps (its last lines) and how much of it is read at all.
TAIL_LINES = 40
MAX_OUTPUT = 1 << 20

_SIZE = re.compile(r"^\s*([1-9][0-9]*)([KMGkmg]?)\s*$")
_ENV_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]{0,63}$")
_ENV_VALUE = re.compile(r"^[A-Za-z0-9._,:/=+-]{0,256}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# ------------------------------------------------------------------ the tool's output

_HEADER = re.compile(r"^#\s*nThread\s+\d+\s+nGpus\s+\d+")
_ROW_START = re.compile(r"^\s*\d+\s+\d+(\s|$)")
_AVG = re.compile(r"^#?\s*Avg bus bandwidth\s*:\s*(?P<v>\S+)(?:\s+(?P<status>OK|FAILED))?\s*$")
_OOB = re.compile(r"^#?\s*Out of bounds values\s*:\s*(?P<n>\d+)(?:\s+(?P<status>OK|FAILED))?\s*$")
_RANK = re.compile(r"^#\s*Rank\s+(?P<rank>\d+)\s+Group\s+\d+\s+Pid\s+\d+\s+on\s+(?P<host>\S+)\s+device\s+(?P<dev>\d+)")
_WRONG = re.compile(r"^(\d+|N/A)$")


class PerfOutputError(ValueError):
    """Output that is not all_gather_perf's table, or a table cut short."""


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _row(line: str) -> dict[str, Any] | None:
    """One result row: size, count, type, [redop, root,] then time, algbw, busbw, #wrong out of place and in place."""
    fields = line.split()
    if len(fields) < 11 or not fields[0].isdigit() or not fields[1].isdigit():
        return None
    tail = fields[-8:]
    numbers = [_float(tail[i]) for i in (0, 1, 2, 4, 5, 6)]
    if any(n is None for n in numbers) or not _WRONG.match(tail[3]) or not _WRONG.match(tail[7]):
        return None
    oop_time, oop_algbw, oop_busbw, ip_time, ip_algbw, ip_busbw = (float(n or 0.0) for n in numbers)
    return {
        "size": int(fields[0]),
        "count": int(fields[1]),
        "type": fields[2],
        "oop_time_us": oop_time,
        "oop_algbw": oop_algbw,
        "oop_busbw": oop_busbw,
        "oop_wrong": tail[3],
        "ip_time_us": ip_time,
        "ip_algbw": ip_algbw,
        "ip_busbw": ip_busbw,
        "ip_wrong": tail[7],
    }


def parse_all_gather(text: str) -> dict[str, Any]:
    """all_gather_perf's output -> {rows, sizes, busbw_gbps (out of place at the largest size), ip_busbw_gbps,
    size_bytes, avg_busbw_gbps, avg_status, out_of_bounds, wrong (rows with wrong results), ranks: [{rank, host}]}.

    Raises PerfOutputError when a line shaped like a result row does not read as one, when there is no table at
    all, or when the table ends before its summary (the run stopped mid-way)."""
    rows: list[dict[str, Any]] = []
    ranks: list[dict[str, Any]] = []
    header = False
    avg: float | None = None
    avg_status = ""
    oob: int | None = None
    for lineno, line in enumerate((text or "").splitlines(), 1):
        if _HEADER.match(line):
            header = True
        elif (rank := _RANK.match(line)) is not None:
            ranks.append({"rank": int(rank.group("rank")), "host": rank.group("host")})
        elif (m := _AVG.match(line.strip())) is not None:
            avg = _float(m.group("v"))
            avg_status = m.group("status") or ""
            if avg is None:
                raise PerfOutputError(
                    f"line {lineno}: the average bus bandwidth is not a number: {line.strip()[:80]!r}"
                )
        elif (m := _OOB.match(line.strip())) is not None:
            oob = int(m.group("n"))
        elif _ROW_START.match(line):
            row = _row(line)
            if row is None:
                raise PerfOutputError(f"line {lineno} is not a whole result row: {line.strip()[:120]!r}")
            rows.append(row)
    if not rows:
        if header:
            raise PerfOutputError("it printed its header but no result row: the run stopped before measuring")
        raise PerfOutputError(
            "it printed neither all_gather_perf's header (# nThread ...) nor a result row: not all_gather_perf's output"
        )
    if avg is None:
        raise PerfOutputError(
            f"its table ends after {len(rows)} row(s) without the '# Avg bus bandwidth' line: the run stopped mid-way"
        )
    largest = max(rows, key=lambda r: r["size"])
    return {
        "rows": rows,
        "sizes": [r["size"] for r in rows],
        "busbw_gbps": largest["oop_busbw"],
        "ip_busbw_gbps": largest["ip_busbw"],
        "size_bytes": largest["size"],
        "avg_busbw_gbps": avg,
        "avg_status": avg_status,
        "out_of_bounds": oob,
        "wrong": sum(1 for r in rows if r["oop_wrong"] not in ("0", "N/A") or r["ip_wrong"] not in ("0", "N/A")),
        "ranks": ranks,
    }


# ------------------------------------------------------------------ sizes and settings


def parse_size(text: Any) -> int | None:
    """nccl-tests' size grammar (a whole number, K/M/G in powers of 1024) -> bytes; None when it is not one."""
    match = _SIZE.match(str(text)) if isinstance(text, (str, int)) and not isinstance(text, bool) else None
    if match is None:
        return None
    return int(match.group(1)) * 1024 ** " KMG".index((match.group(2) or " ").upper())


def fmt_size(size: int) -> str:
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        if size >= 1024**power:
            value = size / 1024**power
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"


def settings_from(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The module's parameters checked, each problem naming the role variable and the fix."""
    errors: list[str] = []
    size = str(params.get("size") or DEFAULT_SIZE).strip()
    size_bytes = parse_size(size)
    if size_bytes is None:
        errors.append(
            f"{SIZE_VAR} {size[:40]!r} is not a size all_gather_perf reads: a whole number with K, M or G (NVIDIA "
            f"validates with {DEFAULT_SIZE})"
        )
    threshold = params.get("min_busbw_gbps")
    threshold = DEFAULT_MIN_BUSBW_GBS if threshold is None else threshold
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < float(threshold) < 10000:
        errors.append(
            f"{MIN_BUSBW_VAR} {threshold!r} is not a bus bandwidth in GB/s above 0: {DEFAULT_MIN_BUSBW_GBS:g} for "
            f"two Sparks on a switch (NVIDIA's), {RING_MIN_BUSBW_GBS:g} on a ring"
        )
    timeout = params.get("timeout_s")
    timeout = DEFAULT_TIMEOUT_S if timeout is None else timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 0 < timeout <= 3600:
        errors.append(f"{TIMEOUT_VAR} {timeout!r} is not a number of seconds from 1 to 3600 ({DEFAULT_TIMEOUT_S})")
    for key, var, default in (("mpirun", MPIRUN_VAR, DEFAULT_MPIRUN), ("binary", BINARY_VAR, DEFAULT_BINARY)):
        value = str(default if params.get(key) is None else params[key])
        if not value.strip() or _CONTROL.search(value) or value != value.strip():
            errors.append(f"{var} {value[:60]!r} is not a command or a path (default {default})")
    extra = params.get("mpirun_args") or []
    if not isinstance(extra, list) or any(not isinstance(a, str) or _CONTROL.search(a) for a in extra):
        errors.append(f"{MPIRUN_ARGS_VAR} must be a list of plain strings (mpirun options, e.g. --mca btl ^openib)")
    return {
        "size": size,
        "size_bytes": size_bytes or 0,
        "min_busbw_gbps": float(threshold) if isinstance(threshold, (int, float)) else 0.0,
        "timeout_s": timeout if isinstance(timeout, int) else DEFAULT_TIMEOUT_S,
        "mpirun": str(params.get("mpirun") or DEFAULT_MPIRUN),
        "binary": str(params.get("binary") or DEFAULT_BINARY),
        "mpirun_args": [str(a) for a in extra] if isinstance(extra, list) else [],
    }, errors


# ------------------------------------------------------------------ what each head runs


def perf_env(env: Any) -> tuple[dict[str, str], list[str]]:
    """The variables of a piece's environment that reach all_gather_perf (PERF_ENV_PREFIXES), and the names whose
    value could not be passed on mpirun's command line (not an interface, device, address or number)."""
    out: dict[str, str] = {}
    bad: list[str] = []
    for name, value in (env or {}).items() if isinstance(env, Mapping) else ():
        if not isinstance(name, str) or not name.startswith(PERF_ENV_PREFIXES):
            continue
        if not _ENV_NAME.match(name) or not _ENV_VALUE.match(str(value)):
            bad.append(name)
            continue
        out[name] = str(value)
    return dict(sorted(out.items())), bad


def _pieces(plans: Mapping[str, Any]) -> dict[str, dict[str, Mapping[str, Any]]]:
    """Service -> {host: its piece} for every deployed service across hosts in the plans."""
    out: dict[str, dict[str, Mapping[str, Any]]] = {}
    for host in sorted(plans):
        services = plans[host]
        if isinstance(services, Mapping):  # a whole plan fact
            services = services.get("services")
        for svc in services if isinstance(services, list) else []:
            if not isinstance(svc, Mapping) or svc.get("status") != DEPLOY:
                continue
            piece = svc.get("multihost")
            if isinstance(piece, Mapping) and piece.get("hosts"):
                out.setdefault(str(svc.get("name")), {})[str(host)] = piece
    return out


def plan_checks(plans: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One measurement per set of hosts of the deployed services across hosts: {service (the one measured, first
    by name), services (every service on these hosts), head, hosts (rank order), endpoints: [{host, rank, address,
    interface, hca, env}], problems}."""
    checks: dict[frozenset[str], dict[str, Any]] = {}
    for name, by_host in sorted(_pieces(plans).items()):
        first = next(iter(by_host.values()))
        hosts = [str(h) for h in first.get("hosts") or []]
        key = frozenset(hosts)
        if key in checks:
            checks[key]["services"].append(name)
            continue
        problems: list[str] = []
        endpoints: list[dict[str, Any]] = []
        for rank, host in enumerate(hosts):
            piece = by_host.get(host)
            if piece is None:
                problems.append(
                    f"service {name}: host {host} has no piece of it in this run's plans (outside the limit, or its "
                    f"plan failed). Fix: run with every host of the group ({', '.join(hosts)}) in the limit"
                )
                continue
            env, bad = perf_env(piece.get("env"))
            problems += [
                f"service {name}: host {host}: {var} of its piece's environment cannot be passed on mpirun's command "
                "line (not an interface, device, address or number). Fix: the fabric variables of the host "
                f"({FABRIC_INTERFACE_VAR}, {FABRIC_HCA_VAR})"
                for var in bad
            ]
            endpoints.append(
                {
                    "host": host,
                    "rank": rank,
                    "address": str(piece.get("address") or ""),
                    "interface": str(piece.get("interface") or ""),
                    "hca": [str(h) for h in piece.get("hca") or []],
                    "env": env,
                }
            )
        for ep in endpoints:
            if not ep["address"]:
                problems.append(f"service {name}: host {ep['host']} has no fabric address in its piece of the plan")
        checks[key] = {
            "service": name,
            "services": [name],
            "head": str(first.get("head") or (hosts[0] if hosts else "")),
            "hosts": hosts,
            "endpoints": endpoints,
            "problems": problems,
        }
    return list(checks.values())


def command(check: Mapping[str, Any], settings: Mapping[str, Any], as_root: bool = False) -> list[str]:
    """OpenMPI's mpirun with one app context per host, in rank order: ``-np 1 -H ADDRESS:1``, the host's NCCL
    environment as ``-x NAME=VALUE``, then ``all_gather_perf -b SIZE -e SIZE -f 2 -g 1`` (one GPU per rank)."""
    argv = [str(settings["mpirun"])]
    if as_root:
        argv.append("--allow-run-as-root")
    argv += [str(a) for a in settings.get("mpirun_args") or []]
    size = str(settings["size"])
    tool = [str(settings["binary"]), "-b", size, "-e", size, "-f", "2", "-g", "1"]
    for i, ep in enumerate(check["endpoints"]):
        if i:
            argv.append(":")
        argv += ["-np", "1", "-H", f"{ep['address']}:1"]
        for name, value in ep["env"].items():
            argv += ["-x", f"{name}={value}"]
        argv += tool
    return argv


def launch_env(check: Mapping[str, Any]) -> dict[str, str]:
    """The head's own NCCL environment, for mpirun itself (OMPI_MCA_btl_tcp_if_include: its bootstrap interface)."""
    head = next((ep for ep in check["endpoints"] if ep["host"] == check["head"]), None)
    return dict(head["env"]) if head else {}


def memory_need(size_bytes: int, ranks: int) -> int:
    """Bytes all_gather_perf holds on each host: send (size / ranks), receive and expected (size each), + headroom."""
    return math.ceil((2 + 1 / max(ranks, 1)) * size_bytes * MEMORY_HEADROOM)


def mem_available(meminfo: Any) -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None when it is not there)."""
    match = re.search(r"^MemAvailable:\s+(\d+)\s*kB", str(meminfo or ""), re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def _iface(ep: Mapping[str, Any]) -> str:
    interface = ep.get("interface")
    where = f"interface {interface}" if interface else f"no fabric interface set ({FABRIC_INTERFACE_VAR})"
    return f"{where}, {ep.get('address') or 'no address'}"


def memory_problems(check: Mapping[str, Any], meminfo: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    """Each host of the group without the memory the test holds there (or whose /proc/meminfo was not read)."""
    lead = f"service {check['service']}"
    need = memory_need(int(settings["size_bytes"]), len(check["endpoints"]))
    size = str(settings["size"])
    out: list[str] = []
    for ep in check["endpoints"]:
        available = mem_available(meminfo.get(ep["host"]))
        if available is None:
            out.append(
                f"{lead}: host {ep['host']} ({_iface(ep)}): its available memory was not read (/proc/meminfo), and "
                f"all_gather_perf -b {size} holds about {fmt_size(need)} there. Fix: rerun once the host answers"
            )
        elif available < need:
            out.append(
                f"{lead}: host {ep['host']} ({_iface(ep)}) has {fmt_size(available)} available (MemAvailable), but "
                f"all_gather_perf -b {size} over {len(check['endpoints'])} hosts holds about {fmt_size(need)} on each "
                "(send, receive and check buffers, plus a tenth). Fix: run the check before serving or with the "
                "group's services stopped (their weights hold the memory), close desktop sessions (the test froze a "
                f"Spark with one open), or lower {SIZE_VAR} (NVIDIA validates with {DEFAULT_SIZE})"
            )
    return out


def progress_message(check: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    hosts = ", ".join(f"{ep['host']} ({ep['address']})" for ep in check["endpoints"])
    need = memory_need(int(settings["size_bytes"]), len(check["endpoints"]))
    return (
        f"{check['head']} runs NCCL all_gather_perf -b {settings['size']} -e {settings['size']} for "
        f"{', '.join(check['services'])} across {hosts}: about {fmt_size(need)} of memory on each host, at most "
        f"{settings['timeout_s']} s"
    )


# ------------------------------------------------------------------ what went wrong when it did not finish

_NCCL_FAILURE = re.compile(r"^(?P<host>\S+): Test (?P<what>NCCL|CUDA) failure (?P<where>\S+) '(?P<msg>.*)'\s*$", re.M)
_SIGNAL = re.compile(
    r"mpirun noticed that process rank (?P<rank>\d+) with PID \d+ on node (?P<node>\S+)\s+exited\s+on\s+signal\s+"
    r"(?P<sig>\d+)\s*\((?P<name>[^)]*)\)"
)
_SSH = re.compile(r"^ssh: connect to host (?P<addr>\S+) port \d+: (?P<why>.+?)\s*$", re.M)
_SSH_AUTH = re.compile(r"Permission denied \(publickey|Host key verification failed")
_NO_DAEMON = re.compile(r"ORTE was unable to reliably start one or more daemons|PRTE has lost communication")
_NO_EXEC = re.compile(r"was unable to find the specified executable file|execvp error on file (?P<file>\S+)")
_EXIT_RANK = re.compile(r"Process name:\s*\[\[\d+,\d+\],(?P<rank>\d+)\]\s*\n\s*Exit code:\s*(?P<code>\d+)")

_NCCL_FIX = (
    "check that NCCL_SOCKET_IFNAME and NCCL_IB_HCA name this host's CX-7 interface and RDMA devices "
    f"(ibdev2netdev; {FABRIC_INTERFACE_VAR}, {FABRIC_HCA_VAR}), that the link is up at 200000Mb/s (ip link, ethtool) "
    f"with MTU 9000 on every host, and that the fabric addresses share one subnet ({NETPLAN})"
)


def _endpoint_of(name: str, check: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The endpoint a printed host name or address stands for (inventory name, address, or the first label)."""
    for ep in check["endpoints"]:
        if name in (ep["host"], ep["address"]) or name.split(".", 1)[0] == str(ep["host"]).split(".", 1)[0]:
            return ep
    return None


def _who(name: str, check: Mapping[str, Any]) -> str:
    ep = _endpoint_of(name, check)
    if ep is not None:
        return f"host {ep['host']} ({_iface(ep)})"
    hosts = "; ".join(f"{e['host']}: {_iface(e)}" for e in check["endpoints"])
    return f"{name} (as the host calls itself; the group: {hosts})"


def _rank_ep(rank: str, check: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((ep for ep in check["endpoints"] if str(ep["rank"]) == rank), None)


def diagnose(output: str, rc: int | None, check: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    """Why a run did not finish, from what the tool and mpirun printed; [] when nothing names a cause."""
    lead = f"service {check['service']}: all_gather_perf"
    out: list[str] = []
    for m in _NCCL_FAILURE.finditer(output):
        out.append(
            f"{lead} failed on {_who(m.group('host'), check)}: {m.group('what')} {m.group('msg')[:300]!r} "
            f"({m.group('where')}). Fix: {_NCCL_FIX}"
        )
    for m in _SIGNAL.finditer(output):
        ep = _rank_ep(m.group("rank"), check)
        who = f"host {ep['host']} ({_iface(ep)})" if ep else _who(m.group("node"), check)
        why = " (the kernel's OOM killer, most likely: too little free memory)" if m.group("sig") == "9" else ""
        out.append(
            f"{lead}: rank {m.group('rank')} on {who} was killed by signal {m.group('sig')} ({m.group('name')}){why}. "
            "Fix: run the check before serving or with the group's services stopped, close desktop sessions, or "
            f"lower {SIZE_VAR}"
        )
    seen: set[str] = set()
    for m in _SSH.finditer(output):
        if m.group("addr") in seen:
            continue
        seen.add(m.group("addr"))
        out.append(
            f"{lead}: mpirun on {check['head']} could not reach {_who(m.group('addr'), check)} over ssh "
            f"({m.group('why')}). Fix: the fabric addresses must route between the hosts ({NETPLAN}), and sshd answer "
            "on them"
        )
    if not out and (_SSH_AUTH.search(output) or _NO_DAEMON.search(output)):
        hosts = "; ".join(f"{e['host']}: {_iface(e)}" for e in check["endpoints"])
        out.append(
            f"{lead}: mpirun on {check['head']} could not start its daemon on every host ({hosts}). Fix: passwordless "
            f"ssh for the user that runs the check from {check['head']} to each host's fabric address (ssh ADDRESS "
            f"true must work without a prompt; NVIDIA's setup copies the keys), or ssh options in {MPIRUN_ARGS_VAR}"
        )
    no_exec = _NO_EXEC.search(output)
    if no_exec is not None or rc == 127:
        # rc 127: mpirun itself did not start on the head; its message: the tool is missing on a host.
        mpirun = rc == 127 and no_exec is None
        out.append(
            f"{lead}: {settings['mpirun'] if mpirun else settings['binary']} was not found "
            f"{'on ' + str(check['head']) if mpirun else 'on every host'}. Fix: install OpenMPI and build nccl-tests "
            f"with MPI=1 on every host (the same path on each), and set {MPIRUN_VAR if mpirun else BINARY_VAR} to its "
            "path"
        )
    exited = _EXIT_RANK.search(output)
    if not out and exited is not None:
        ep = _rank_ep(exited.group("rank"), check)
        who = f"host {ep['host']} ({_iface(ep)})" if ep else f"rank {exited.group('rank')}"
        out.append(f"{lead}: exited with code {exited.group('code')} on {who} (see its output). Fix: {_NCCL_FIX}")
    return out


# ------------------------------------------------------------------ the verdict


def _hosts_text(check: Mapping[str, Any]) -> str:
    parts = []
    for ep in check["endpoints"]:
        hca = f"NCCL_IB_HCA {','.join(ep['hca'])}" if ep.get("hca") else "no NCCL_IB_HCA"
        parts.append(f"{ep['host']} ({_iface(ep)}, {hca})")
    return " and ".join(parts) if len(parts) == 2 else ", ".join(parts)


def _bandwidth_problems(check: Mapping[str, Any], busbw: float, size: int, threshold: float) -> list[str]:
    lead = f"service {check['service']}"
    half = "; about half of it, what one half of the CX-7 port gives" if busbw <= HALF_LINK_SHARE * threshold else ""
    out = [
        f"{lead}: all_gather_perf measured {busbw:.2f} GB/s bus bandwidth (out of place, {fmt_size(size)}) across "
        f"{_hosts_text(check)}, below {threshold:g} GB/s ({threshold * 8:g} Gb/s, {MIN_BUSBW_VAR}){half}. Fix: on "
        "every host use both halves of the CX-7 port (NCCL_IB_HCA naming the up RDMA devices of both, e.g. "
        f"{FABRIC_HCA_VAR}: rocep1s0f1,roceP2p1s0f1, as ibdev2netdev lists them), MTU 9000 on the fabric interfaces "
        f"({NETPLAN}), a 200000Mb/s link on each (ethtool), CX-7 firmware from 2026-04 or later (older firmware runs "
        f"the second half at half speed); two Sparks cabled without a switch (a ring) want {RING_MIN_BUSBW_GBS:g} GB/s:"
        f" set {MIN_BUSBW_VAR} to it"
    ]
    for ep in check["endpoints"]:
        if len(ep.get("hca") or []) < 2:
            named = ",".join(ep.get("hca") or []) or "none: NCCL picks its devices itself"
            out.append(
                f"{lead}: host {ep['host']} ({_iface(ep)}): NCCL_IB_HCA names {len(ep.get('hca') or [])} RDMA "
                f"device(s) ({named}), one half of the port at most. Fix: set {FABRIC_HCA_VAR} on {ep['host']} to "
                "the up devices of both halves (ibdev2netdev, e.g. rocep1s0f1,roceP2p1s0f1)"
            )
    return out


def _tail(output: str) -> list[str]:
    return [line[:300] for line in output.splitlines()[-TAIL_LINES:]]


def verdict_base(check: Mapping[str, Any], settings: Mapping[str, Any], argv: Sequence[str],
                 measured_at: str) -> dict[str, Any]:  # fmt: skip
    return {
        "schema": FABRIC_PERF_SCHEMA,
        "service": check["service"],
        "services": list(check["services"]),
        "head": check["head"],
        "hosts": list(check["hosts"]),
        "endpoints": [{k: ep[k] for k in ("host", "address", "interface", "hca")} for ep in check["endpoints"]],
        "size": settings["size"],
        "size_bytes": settings["size_bytes"],
        "threshold_gbps": settings["min_busbw_gbps"],
        "command": shlex.join(argv),
        "measured_at": measured_at,
        "status": NOT_RUN,
        "busbw_gbps": None,
        "avg_busbw_gbps": None,
        "rows": [],
        "problems": [],
        "rc": None,
        "seconds": None,
        "output_tail": [],
    }


def judge(
    check: Mapping[str, Any],
    settings: Mapping[str, Any],
    argv: Sequence[str],
    outcome: tuple[int | None, str, float] | None,
    measured_at: str = "",
) -> dict[str, Any]:
    """The verdict of one measurement. ``outcome``: (rc, None when it ran past the timeout; the output; seconds);
    None when it did not run (check mode, or refused: the check's problems)."""
    v = verdict_base(check, settings, argv, measured_at)
    if check.get("problems"):
        v.update(status=ERROR, problems=list(check["problems"]))
        return v
    if outcome is None:
        v["problems"] = ["under --check nothing is measured"]
        return v
    rc, output, seconds = outcome
    v.update(rc=rc, seconds=round(seconds, 1), output_tail=_tail(output))
    found = diagnose(output, rc, check, settings)
    if rc is None:
        found.insert(
            0,
            f"service {check['service']}: all_gather_perf did not finish within {settings['timeout_s']} s across "
            f"{_hosts_text(check)} (stopped). Fix: NCCL waits forever when its interface variables name an interface "
            f"the hosts cannot reach each other on: {_NCCL_FIX}; or raise {TIMEOUT_VAR}",
        )
    if found:
        v.update(status=ERROR, problems=found)
        return v
    try:
        result = parse_all_gather(output)
    except PerfOutputError as exc:
        v.update(
            status=ERROR,
            problems=[
                f"service {check['service']}: all_gather_perf's output across {_hosts_text(check)} cannot be read "
                f"(exit code {rc}): {exc}. Fix: run the command of this verdict by hand on {check['head']} and read "
                f"its output; {BINARY_VAR} must be NCCL's all_gather_perf"
            ],
        )
        return v
    v.update(
        busbw_gbps=result["busbw_gbps"],
        avg_busbw_gbps=result["avg_busbw_gbps"],
        size_bytes=result["size_bytes"],
        rows=[{"size": r["size"], "oop_busbw": r["oop_busbw"], "ip_busbw": r["ip_busbw"]} for r in result["rows"]],
    )
    if result["wrong"] or result["out_of_bounds"]:
        v.update(
            status=ERROR,
            problems=[
                f"service {check['service']}: all_gather_perf found wrong results ({result['wrong']} row(s), "
                f"{result['out_of_bounds'] or 0} out-of-bounds value(s)) across {_hosts_text(check)}: the fabric "
                "corrupts data. Fix: reseat or replace the QSFP cable, update the CX-7 firmware, then rerun"
            ],
        )
        return v
    if rc not in (0, None) and result["avg_status"] != "FAILED":
        v.update(
            status=ERROR,
            problems=[
                f"service {check['service']}: all_gather_perf printed its results across {_hosts_text(check)} but "
                f"exited with code {rc}. Fix: read the output of this verdict ({check['head']}); {_NCCL_FIX}"
            ],
        )
        return v
    threshold = float(settings["min_busbw_gbps"])
    if float(result["busbw_gbps"]) < threshold:
        v.update(
            status=FAIL,
            problems=_bandwidth_problems(check, float(result["busbw_gbps"]), int(result["size_bytes"]), threshold),
        )
    else:
        v["status"] = PASS
    return v


def verdict_line(v: Mapping[str, Any]) -> str:
    """One line of the fleet report and of the run's output for a verdict (its problems follow it)."""
    name = str(v.get("service") or "?")
    others = [str(s) for s in v.get("services") or [] if s != name]
    also = f" (also {', '.join(others)}: the same hosts)" if others else ""
    endpoints = [e for e in v.get("endpoints") or [] if isinstance(e, Mapping)]
    hosts = ", ".join(
        f"{e.get('host')} {e.get('interface') or 'no interface set'} {e.get('address') or ''}".rstrip()
        for e in endpoints
    ) or ", ".join(str(h) for h in v.get("hosts") or [])
    status = str(v.get("status") or ERROR)
    when = f"; measured {v['measured_at']}" if v.get("measured_at") and status != NOT_RUN else ""
    busbw, threshold = v.get("busbw_gbps"), v.get("threshold_gbps")
    size = v.get("size_bytes")
    if status in (PASS, FAIL) and isinstance(busbw, (int, float)) and isinstance(threshold, (int, float)):
        avg = v.get("avg_busbw_gbps")
        average = f"; average {avg:.2f}" if isinstance(avg, (int, float)) else ""
        at = f" at {fmt_size(size)}" if isinstance(size, int) and size > 0 else ""
        sign = ">=" if status == PASS else "<"
        return (
            f"fabric: {name}{also}: {busbw:.2f} GB/s bus bandwidth{at} (all_gather_perf, out of place{average}) "
            f"{sign} {threshold:g} GB/s: {status.upper()} ({hosts}{when})"
        )
    return f"fabric: {name}{also}: {status.upper()} ({hosts}{when})"


# ------------------------------------------------------------------ running it


class Launch(Protocol):
    """What runs the command: (rc, or None when it ran past the timeout; stdout and stderr together; seconds)."""

    def __call__(self, argv: list[str], env: Mapping[str, str], timeout: float) -> tuple[int | None, str, float]: ...


def launch(argv: list[str], env: Mapping[str, str], timeout: float) -> tuple[int | None, str, float]:
    """Run ``argv`` in its own session with ``env`` over this process's environment; past ``timeout`` the whole
    session (mpirun, its ssh children) is stopped. rc 127 when it cannot start."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LC_ALL": "C", **env},
            start_new_session=True,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        return 127, f"{argv[0]}: {exc.strerror or exc}", time.monotonic() - start
    try:
        output = proc.communicate(timeout=timeout)[0]
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except OSError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        output = proc.communicate()[0]
        rc = None
    return rc, (output or "")[-MAX_OUTPUT:], time.monotonic() - start


def run_module(module: Any, run: Launch | None = None, euid: int | None = None) -> None:
    """The body of the sparkfleet_fabric_perf module (``run``: a test's fake of mpirun)."""
    p = module.params
    settings, errors = settings_from(p)
    if errors:
        module.fail_json(msg="sparkfleet_fabric_perf: " + "; ".join(errors))
    as_root = (os.geteuid() if euid is None else euid) == 0
    meminfo = p.get("meminfo") or {}
    checks: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    for check in plan_checks(p.get("plans") or {}):
        if check["head"] != p["host"]:
            continue
        if not check["problems"]:
            check["problems"] = memory_problems(check, meminfo, settings)
        argv = command(check, settings, as_root)
        checks.append({**check, "command": shlex.join(argv), "message": progress_message(check, settings)})
        if module.check_mode or check["problems"]:
            outcome = None
        else:
            outcome = (run or launch)(argv, launch_env(check), float(settings["timeout_s"]))
        verdict = judge(check, settings, argv, outcome, str(p.get("measured_at") or ""))
        # One verdict per service of these hosts (the same measurement), each kept in its own file.
        for name in check["services"]:
            verdicts.append({**verdict, "service": name, "file": f"{FABRIC_DIR}/{name}.json"})
    for v in verdicts:
        v["line"] = verdict_line(v)
    module.exit_json(changed=False, checks=checks, verdicts=verdicts)


__all__ = [
    "DEFAULT_BINARY",
    "DEFAULT_MIN_BUSBW_GBS",
    "DEFAULT_MPIRUN",
    "DEFAULT_SIZE",
    "DEFAULT_TIMEOUT_S",
    "ERROR",
    "FAIL",
    "NOT_RUN",
    "PASS",
    "RING_MIN_BUSBW_GBS",
    "STATUSES",
    "PerfOutputError",
    "command",
    "diagnose",
    "judge",
    "launch",
    "memory_need",
    "memory_problems",
    "parse_all_gather",
    "parse_size",
    "plan_checks",
    "run_module",
    "settings_from",
    "verdict_line",
]
