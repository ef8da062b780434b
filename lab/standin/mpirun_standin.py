#!/usr/bin/env python3
"""A STAND-IN for OpenMPI's ``mpirun``, for the lab only: it starts no rank on any other host.

The lab has no OpenMPI, no NCCL and no ssh keys between its hosts, so ``molecule/multihost`` runs the measured
fabric check (playbooks/fabric_check.yml) with this program in place of mpirun and ``all_gather_perf_standin.py``
in place of the tool. It reads the command line the way mpirun reads the one sparkfleet builds (fabric_perf.py):
global options (``--allow-run-as-root``, ``--mca KEY VALUE``, ``--bind-to``, ``--map-by``, ``-x``), then app contexts
separated by ``:``, each ``-np N -H ADDRESS:SLOTS [-x NAME=VALUE ...] PROGRAM ARGS``. Like mpirun it refuses root
without ``--allow-run-as-root`` and an unknown option, and it checks that each context's host answers on its ssh
port (mpirun starts its daemons over ssh there). Then it runs the first context's program here, once, with that
context's ``-x`` variables and SPARKFLEET_STANDIN_HOSTS naming every context's host, and exits with its exit code.
Errors are printed in OpenMPI's words.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from typing import Any

SSH_PORT = int(os.environ.get("SPARKFLEET_STANDIN_SSH_PORT", "22"))
FLAGS = {"--allow-run-as-root", "--oversubscribe", "--tag-output", "--report-bindings"}
WITH_VALUE = {"--bind-to", "--map-by", "--rank-by", "-x"}
ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
RULE = "-" * 74


class Usage(Exception):
    """A command line mpirun would refuse."""


def parse(argv: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(global options, app contexts: [{np, hosts, env, program, args}])."""
    options: dict[str, Any] = {"flags": set(), "mca": {}, "env": {}}
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-np", "-n", "-H", "--host"):
        arg = argv[i]
        if arg in FLAGS:
            options["flags"].add(arg)
            i += 1
        elif arg in ("--mca", "-mca"):
            if i + 2 >= len(argv):
                raise Usage(f'option "{arg}" needs a key and a value')
            options["mca"][argv[i + 1]] = argv[i + 2]
            i += 3
        elif arg in WITH_VALUE:
            if i + 1 >= len(argv):
                raise Usage(f'option "{arg}" needs a value')
            if arg == "-x":
                _env(argv[i + 1], options["env"])
            i += 2
        else:
            raise Usage(f'unknown option "{arg}"')
    contexts: list[dict[str, Any]] = []
    current: list[str] = []
    for arg in [*argv[i:], ":"]:
        if arg == ":":
            contexts.append(_context(current))
            current = []
        else:
            current.append(arg)
    return options, contexts


def _env(text: str, into: dict[str, str]) -> None:
    if not ENV.match(text):
        raise Usage(f'-x "{text}" is not NAME=VALUE')
    name, value = text.split("=", 1)
    into[name] = value


def _context(args: list[str]) -> dict[str, Any]:
    ctx: dict[str, Any] = {"np": 1, "hosts": [], "env": {}, "program": "", "args": []}
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if i + 1 >= len(args):
            raise Usage(f'option "{args[i]}" needs a value')
        if args[i] in ("-np", "-n"):
            if not args[i + 1].isdigit() or int(args[i + 1]) < 1:
                raise Usage(f'"{args[i + 1]}" is not a number of processes')
            ctx["np"] = int(args[i + 1])
        elif args[i] in ("-H", "--host"):
            ctx["hosts"] += [h.rsplit(":", 1)[0] for h in args[i + 1].split(",") if h]
        elif args[i] == "-x":
            _env(args[i + 1], ctx["env"])
        else:
            raise Usage(f'unknown option "{args[i]}"')
        i += 2
    if i >= len(args):
        raise Usage("an app context names no program")
    ctx["program"], ctx["args"] = args[i], args[i + 1 :]
    if not ctx["hosts"]:
        raise Usage(f"the app context of {ctx['program']} names no host (-H)")
    return ctx


def _reachable(host: str) -> str:
    """'' when the host answers on its ssh port, else why not (as ssh says it)."""
    try:
        with socket.create_connection((host, SSH_PORT), timeout=3):
            return ""
    except OSError as exc:
        return exc.strerror or str(exc)


def main(argv: list[str] | None = None) -> int:
    try:
        options, contexts = parse(list(sys.argv[1:] if argv is None else argv))
    except Usage as exc:
        print(f"mpirun: Error: {exc}\nType 'mpirun --help' for usage.", file=sys.stderr)
        return 1
    if os.geteuid() == 0 and "--allow-run-as-root" not in options["flags"]:
        print(f"{RULE}\nmpirun has detected an attempt to run as root.\n\nRunning as root is *strongly* discouraged "
              f"as any mistake (e.g., in defining TMPDIR) or bug can result in catastrophic damage to the OS\nfile "
              f"system, leaving your system in an unusable state.\n\nWe strongly suggest that you run mpirun as a "
              f"non-root user.\n{RULE}", file=sys.stderr)  # fmt: skip
        return 1
    for ctx in contexts:
        program = ctx["program"]
        if shutil.which(program) is None:
            print(f"{RULE}\nmpirun was unable to find the specified executable file, and therefore\ndid not launch "
                  f"the job.  This error was first reported for process\nrank 0; it may have occurred for other "
                  f"processes as well.\n\nNOTE: A common cause for this error is misspelling a mpirun command\n"
                  f"      line parameter option (remember that mpirun interprets the first\n      unrecognized "
                  f"command line token as the executable).\n\nNode:       {ctx['hosts'][0]}\nExecutable: "
                  f"{program}\n{RULE}", file=sys.stderr)  # fmt: skip
            return 1
        for host in ctx["hosts"]:
            why = _reachable(host)
            if why:
                print(f"ssh: connect to host {host} port {SSH_PORT}: {why}", file=sys.stderr)
                print(f"{RULE}\nORTE was unable to reliably start one or more daemons.\n{RULE}", file=sys.stderr)
                return 1
    hosts = [h for ctx in contexts for h in ctx["hosts"]]
    first = contexts[0]
    env = {**os.environ, **options["env"], **first["env"], "SPARKFLEET_STANDIN_HOSTS": ",".join(hosts)}
    env.update({f"OMPI_MCA_{k}": v for k, v in options["mca"].items()})
    sys.stdout.flush()
    return subprocess.run([first["program"], *first["args"]], env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
