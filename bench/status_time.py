#!/usr/bin/env python3
"""How long does the read-only fleet status (playbooks/status.yml) take, at 3 hosts and at 8?

    .venv/bin/python bench/status_time.py                  # the demo lab (3 hosts) and the 8-host fleet lab
    .venv/bin/python bench/status_time.py --rounds 5 --skip-fleet
    .venv/bin/python bench/status_time.py --keep-fleet     # leave the fleet lab running afterwards

The demo lab must be up and converged (``make demo``); it is only read, never started or stopped here. The fleet
lab is eight hosts fleet-01..08 with tests/integration/fleet's group_vars (one stand-in each), started on
its own network (``sparkfleet-statusbench``, --subnet) so that it never meets a fleet test running beside it:
converged once with playbooks/serving.yml, timed, and removed on exit unless --keep-fleet.

Each round times two runs of ``ansible-playbook playbooks/status.yml`` with this project's ansible.cfg: ``cold``
with a new ControlPersist directory (every SSH connection opened afresh: what a lab admin's first status costs) and
``warm`` right after it (the connections of the cold run reused). Timed from the command's start to its exit, the
Python start of ansible-playbook included. Every run must end with changed=0 and exit status 0, or 2 with the
status's own verdict (a host unhealthy or drifted: another engineer may be converging the shared demo lab; each
run's verdict is printed), or the script stops. Prints each run, the medians, and as its last line the ratio 8 hosts / 3
hosts of the cold medians, with the goal (under 10 s for 8 hosts). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "inventories" / "demo"
FLEET = ROOT / "tests" / "integration" / "fleet"
LAB = ROOT / "lab" / "sparkfleet_lab.py"
GOAL_S = 10.0
# The fleet lab's hosts: eight, whatever the size of the rollout test's own fleet (tests/integration/fleet).
FLEET_HOSTS = [f"fleet-{i:02d}" for i in range(1, 9)]


def ansible_bin(name: str) -> str:
    local = ROOT / ".venv" / "bin" / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def lab_python() -> str:
    local = ROOT / ".venv" / "bin" / "python"
    return str(local) if local.exists() else sys.executable


def lab_hosts(inventory: Path) -> dict[str, str]:
    """Host -> address from the lab's lab.yml (a tiny reader: 'hosts:' then '  name: address' lines)."""
    hosts: dict[str, str] = {}
    inside = False
    for line in (inventory / "lab.yml").read_text().splitlines():
        if line.startswith("hosts:"):
            inside = True
            continue
        match = re.match(r"^\s+([\w.-]+):\s*([\d.]+)\s*$", line) if inside else None
        if match:
            hosts[match.group(1)] = match.group(2)
        elif inside and line and not line.startswith(" "):
            inside = False
    return hosts


def fleet_copy(work: Path, subnet: str) -> Path:
    """The eight FLEET_HOSTS with tests/integration/fleet's group_vars, as a lab of its own network and addresses."""
    inv = work / "fleet"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "group_vars" / "all" / "serving.yml").symlink_to(FLEET / "group_vars" / "all" / "serving.yml")
    prefix = subnet.rsplit(".", 1)[0]
    hosts = {h: f"{prefix}.{11 + i}" for i, h in enumerate(FLEET_HOSTS)}
    key = ROOT / "lab" / ".state" / "id_ed25519"
    conn = {
        "ansible_user": "sparkadmin",
        "ansible_ssh_private_key_file": str(key),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
    }
    inventory = {"all": {"vars": conn, "children": {"fleet": {"hosts": {h: {"ansible_host": ip}
                                                                          for h, ip in hosts.items()}}}}}  # fmt: skip
    (inv / "hosts.yml").write_text(json.dumps(inventory, indent=2))
    lab_yml = "network: sparkfleet-statusbench\n" + f"subnet: {subnet}\n" + "image: sparkfleet-lab/host:bookworm\n"
    (inv / "lab.yml").write_text(lab_yml + "hosts:\n" + "".join(f"  {h}: {ip}\n" for h, ip in hosts.items()))
    return inv


def running(inventory: Path) -> bool:
    """Every host container of the lab runs (sparkfleet_lab.py names them sparkfleet-<network tail>-<host>)."""
    out = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True, check=False)
    names = set(out.stdout.split())
    return all(any(n.endswith(f"-{host}") for n in names) for host in lab_hosts(inventory))


def playbook(playbook_path: str, inventory: Path, env: dict[str, str], *extra: str) -> tuple[int, str, float]:
    cmd = [ansible_bin("ansible-playbook"), playbook_path, "-i", str(inventory / "hosts.yml"), *extra]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=1800)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def changed_total(output: str) -> int:
    return sum(int(n) for n in re.findall(r"\bchanged=(\d+)", output))


def time_status(label: str, inventory: Path, rounds: int, work: Path) -> list[tuple[str, float]]:
    """rounds x (cold, warm) runs of status.yml; returns (kind, seconds) of each."""
    runs: list[tuple[str, float]] = []
    reports = work / f"reports-{label}"
    for r in range(rounds):
        cp_dir = Path(tempfile.mkdtemp(prefix="sf-cp-", dir="/tmp"))
        env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp_dir)}  # fmt: skip
        for kind in ("cold", "warm"):
            rc, out, seconds = playbook("playbooks/status.yml", inventory, env,
                                        "-e", f"sparkfleet_status_dir={reports}")  # fmt: skip
            # A host found unhealthy or drifted is an answer too (the lab may be shared): timed all the same.
            answered = rc == 0 or (rc == 2 and "unhealthy or drifted" in out)
            if not answered or changed_total(out) != 0:
                tail = "\n".join(out.splitlines()[-30:])
                raise RuntimeError(f"{label} {kind} run {r + 1}: rc {rc}, changed={changed_total(out)}\n{tail}")
            runs.append((kind, seconds))
            verdict = re.search(r"\d+ host\(s\): [^'\"\n]*", out)
            print(f"{label:>8} round {r + 1} {kind}: {seconds:6.2f} s  ({verdict.group(0) if verdict else '?'})",
                  flush=True)  # fmt: skip
        shutil.rmtree(cp_dir, ignore_errors=True)
    return runs


def median(runs: list[tuple[str, float]], kind: str) -> float:
    return statistics.median(s for k, s in runs if k == kind)


def converge_fleet(inventory: Path, work: Path) -> None:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    extra = json.dumps({"llm_verify_report_dir": str(work / "reports-fleet")})
    rc, out, seconds = playbook("playbooks/serving.yml", inventory, env, "-e", extra)
    if rc != 0:
        raise RuntimeError("converging the fleet lab failed:\n" + "\n".join(out.splitlines()[-40:]))
    print(f"fleet lab converged with playbooks/serving.yml in {seconds:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument("--keep-fleet", action="store_true", help="leave the fleet lab running")
    parser.add_argument("--subnet", default="172.30.49.0/24", help="the fleet copy's network (default %(default)s)")
    parser.add_argument("--fleet-inventory", type=Path, help="a fleet lab already up and converged (a copy kept by "
                        "--keep-fleet): timed as it is, neither started nor removed")  # fmt: skip
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    work = Path(tempfile.mkdtemp(prefix="sf-status-bench-"))
    results: dict[str, list[tuple[str, float]]] = {}
    fleet: Path | None = None
    try:
        if not args.skip_demo:
            if not running(DEMO):
                print("status_time: the demo lab is not running: `make demo` first (or --skip-demo)", file=sys.stderr)
                return 2
            results["3 hosts"] = time_status("3 hosts", DEMO, args.rounds, work)
        if not args.skip_fleet and args.fleet_inventory:
            results["8 hosts"] = time_status("8 hosts", args.fleet_inventory.resolve(), args.rounds, work)
        elif not args.skip_fleet:
            print("starting the fleet lab (8 hosts, network sparkfleet-statusbench) and converging it once", flush=True)
            fleet = fleet_copy(work, args.subnet)
            subprocess.run([lab_python(), str(LAB), "up", "--inventory", str(fleet)], cwd=ROOT, check=True)
            converge_fleet(fleet, work)
            results["8 hosts"] = time_status("8 hosts", fleet, args.rounds, work)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        print(f"status_time: {exc}", file=sys.stderr)
        return 1
    finally:
        if fleet is not None and not args.keep_fleet:
            subprocess.run([lab_python(), str(LAB), "down", "--inventory", str(fleet)], cwd=ROOT, check=False)
        if not args.keep_fleet:
            shutil.rmtree(work, ignore_errors=True)
        elif fleet is not None:
            print(f"fleet lab kept: {fleet} (remove: {lab_python()} {LAB} down --inventory {fleet})")
    load = os.getloadavg()[0]
    print(f"\nmedians over {args.rounds} round(s), load average {load:.1f} on {os.cpu_count()} cores:")
    for label, runs in results.items():
        print(f"  {label}: cold {median(runs, 'cold'):.2f} s, warm {median(runs, 'warm'):.2f} s")
    if "3 hosts" in results and "8 hosts" in results:
        small, large = median(results["3 hosts"], "cold"), median(results["8 hosts"], "cold")
        verdict = "within" if large < GOAL_S else "OVER"
        print(f"status time 8 hosts / 3 hosts (cold): {large / small:.2f}x ({large:.2f} s / {small:.2f} s; "
              f"8 hosts {verdict} the {GOAL_S:g} s goal)")  # fmt: skip
    elif results:
        label, runs = next(iter(results.items()))
        print(f"status time {label} (cold): {median(runs, 'cold'):.2f} s (only one lab measured: no ratio)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
