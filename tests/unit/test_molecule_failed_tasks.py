"""molecule/shared/failed_tasks.py: the failed tasks of a Molecule log, printed last when `make molecule` fails."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "molecule" / "shared" / "failed_tasks.py"
spec = importlib.util.spec_from_file_location("failed_tasks", SCRIPT)
assert spec and spec.loader
failed_tasks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(failed_tasks)

# The shape of Molecule's idempotence output with this project's ansible.cfg (yaml results, task paths on failure,
# colours forced by Molecule).
LOG = """\
\x1b[36mINFO    \x1b[0m dynamo ➜ idempotence: Executing
PLAY [Serving | Services on each host] *****************************************

TASK [sparkfleet.fleet.llm_serving : Serving | Read the host's state] **********
\x1b[0;32mok: [sfm-dynamo-a]\x1b[0m

TASK [sparkfleet.fleet.preflight : Preflight | Probe the port] *****************
task path: /check/roles/preflight/tasks/ports.yml:3
\x1b[0;31mfatal: [sfm-dynamo-b]: FAILED! =>\x1b[0m
\x1b[0;31m  changed: false\x1b[0m
\x1b[0;31m  msg: port 9090 is taken\x1b[0m
\x1b[0;31m...ignoring\x1b[0m

TASK [sparkfleet.fleet.llm_serving : Serving | Wait for the service's health] **
task path: /check/roles/llm_serving/tasks/health.yml:12
\x1b[0;31mfatal: [sfm-dynamo-b]: FAILED! =>\x1b[0m
\x1b[0;31m  changed: false\x1b[0m
\x1b[0;31m  msg: mocker-b not registered after 180 s\x1b[0m
\x1b[0;31m  log_tail:\x1b[0m
\x1b[0;31m  - line 1\x1b[0m
\x1b[0;31m  - line 2\x1b[0m
\x1b[0;31m  - line 3\x1b[0m
\x1b[0;31m  - line 4\x1b[0m
\x1b[0;31m  - line 5\x1b[0m
\x1b[0;32mok: [sfm-dynamo-a]\x1b[0m

PLAY RECAP *********************************************************************
sfm-dynamo-a               : ok=80   changed=0    unreachable=0    failed=0
sfm-dynamo-b               : ok=60   changed=0    unreachable=0    failed=1
"""


def test_failures_under_their_play_and_task_colours_removed_ignored_ones_left_out() -> None:
    out = failed_tasks.failed_tasks(LOG)
    assert out[0] == (
        "-- Serving | Services on each host > sparkfleet.fleet.llm_serving : Serving | Wait for the service's health"
    )
    assert out[1] == "fatal: [sfm-dynamo-b]: FAILED! =>"
    assert "  msg: mocker-b not registered after 180 s" in out
    assert not any("port 9090" in line for line in out)
    assert not any("\x1b" in line for line in out)
    # Long messages are cut; the whole log is kept on disk.
    assert out[-1] == "   ... 1 more line(s)"
    assert not any(line.startswith("ok:") for line in out)


def test_a_parse_error_is_reported_without_a_task() -> None:
    out = failed_tasks.failed_tasks("ERROR! couldn't resolve module/action 'sparkfleet.fleet.nope'\n")
    assert out == ["-- playbook", "ERROR! couldn't resolve module/action 'sparkfleet.fleet.nope'"]


def test_command_line_says_so_when_no_task_failed(tmp_path: Path) -> None:
    log = tmp_path / "default.log"
    log.write_text("PLAY RECAP ***\nhost : ok=3 changed=0 failed=0\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(SCRIPT), str(log)], capture_output=True, text=True, check=True)
    assert "no failed task in the log" in done.stdout
    usage = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2


# Molecule's own rendering of the same run: Ansible's lines in a box, wrapped at 80 columns.
MOLECULE_LOG = """\
INFO     dynamo ➜ idempotence: Executing
  ┌──────────────────────────────────────────────────────────────────────────────────
  │ ansible-playbook --inventory
  │ /root/.ansible/tmp/molecule.DW5A.dynamo/inventory
  │ PLAY [Preflight | Detect GPUs, validate inventory and serving plan]
  │   ************
  │
  │ TASK [sparkfleet.fleet.preflight : Validating arguments against arg spec
  │   'main' - Validate the fleet before anything changes, and plan what each
  │   host serves] ***
  │ ok: [sfm-dynamo-a]
  │
  │ TASK [sparkfleet.fleet.llm_verify : Verify | Fail this host when a service
  │   missed a check or threshold] ***
  │ task path: /check/roles/llm_verify/tasks/gate.yml:2
  │ fatal: [sfm-dynamo-a]: FAILED! =>
  │   changed: false
  │   msg:
  │   - 'verify failed on sfm-dynamo-a: dynamo-frontend (fleet report:
  │     /root/reports/20261201T150836Z)'
  │
  │ PLAY RECAP *********************************************************************
  │ sfm-dynamo-a               : ok=80   changed=0    unreachable=0    failed=1
  └─ Return code: 2 ─────────────────────────────────────────────────────────────────
ERROR    Ansible return code was 2
"""


def test_molecule_box_and_wrapped_headers() -> None:
    out = failed_tasks.failed_tasks(MOLECULE_LOG)
    assert out[0] == (
        "-- Preflight | Detect GPUs, validate inventory and serving plan > "
        "sparkfleet.fleet.llm_verify : Verify | Fail this host when a service missed a check or threshold"
    )
    assert out[1:] == [
        "fatal: [sfm-dynamo-a]: FAILED! =>",
        "  changed: false",
        "  msg:",
        "  - 'verify failed on sfm-dynamo-a: dynamo-frontend (fleet report:",
        "    /root/reports/20261201T150836Z)'",
    ]
