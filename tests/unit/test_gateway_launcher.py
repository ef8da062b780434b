"""The gateway's launcher and key file: any key the role accepts reaches smg byte for byte.

The rendered launcher runs against a stand-in of smg's entry point (``smg.cli.main``) that records the argument
list it gets; that list is then parsed the way smg 1.13.0's ``smg launch`` parses it (a top-level parser whose
``launch`` subcommand passes every other argument on, then a parser holding ``--api-key``). The whole path, with
the real smg and real requests, is in ``molecule/gateway`` (exact key accepted, mangled keys refused).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from ansible.plugins.filter.core import comment, quote, regex_replace, to_json
from ansible.plugins.test.core import match

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "llm_gateway"
ARGS = ["--host", "192.0.2.10", "--port", "30080", "--prometheus-host", "127.0.0.1"]

# Keys that broke the EnvironmentFile + "--api-key", key launcher: a leading '-', systemd's quoting characters
# (backslash, double and single quotes), spaces, and what a shell or a format string would expand ($, %).
HOSTILE = [
    "-starts-with-a-dash-0123",
    "--api-key-looking-value-0123",
    "back\\slash \"double\" 'single' quotes",
    "spaces  inside $HOME ${PATH} %s %% 100%",
    "-k\\e\"y' $(id) `id` ;|&<>*?[]{}#~=,:!^",
    "\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\",
    "'" * 16,
]


def _render(template: str, **variables: Any) -> str:
    env = jinja2.Environment(  # noqa: S701 - renders a launcher and a unit, not HTML, like Ansible's template module
        loader=jinja2.FileSystemLoader(ROLE / "templates"), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    env.filters.update(comment=comment, to_json=to_json, regex_replace=regex_replace, quote=quote)
    env.tests["match"] = match
    env.trim_blocks = True
    return env.get_template(template).render(ansible_managed="Ansible managed", **variables)


@pytest.fixture
def launcher(tmp_path: Path) -> Path:
    """The rendered launcher in a config directory, and a stand-in smg package that records its argv."""
    config = tmp_path / "etc"
    config.mkdir()
    (config / "launch.py").write_text(_render("sparkfleet-gateway-launch.py.j2", llm_gateway_config_dir=str(config)))
    fake = tmp_path / "site" / "smg"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "cli.py").write_text(
        "import json, os\n"
        "def main(argv):\n"
        "    with open(os.environ['SMG_ARGV_OUT'], 'w') as f:\n"
        "        json.dump(argv, f)\n"
    )
    return config


def _launch(config: Path, key: bytes | None) -> tuple[subprocess.CompletedProcess[str], list[str] | None]:
    key_file = config / "api-key"
    if key is not None:
        key_file.write_bytes(key)
        key_file.chmod(0o600)
    elif key_file.exists():
        key_file.unlink()
    out = config.parent / "argv.json"
    if out.exists():
        out.unlink()
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(config.parent / "site"), "SMG_ARGV_OUT": str(out)}
    res = subprocess.run(
        [sys.executable, str(config / "launch.py"), *ARGS], capture_output=True, text=True, env=env, check=False
    )
    return res, (json.loads(out.read_text()) if out.exists() else None)


def _smg_parse(argv: list[str]) -> argparse.Namespace:
    """smg 1.13.0's parsing of main(argv): smg/cli.py's top-level parser, then launch_router's parser."""
    top = argparse.ArgumentParser(prog="smg")
    sub = top.add_subparsers(dest="command")
    sub.add_parser("launch", add_help=False)
    args, unknown = top.parse_known_args(argv)
    assert args.command == "launch"
    router = argparse.ArgumentParser(prog="smg launch")
    router.add_argument("--host")
    router.add_argument("--port", type=int)
    router.add_argument("--prometheus-host")
    router.add_argument("--api-key", default=None)
    return router.parse_args(unknown)


@pytest.mark.parametrize("key", HOSTILE)
def test_a_hostile_key_reaches_smg_byte_for_byte(launcher: Path, key: str) -> None:
    res, argv = _launch(launcher, key.encode())
    assert res.returncode == 0, res.stderr
    assert argv == ["launch", *ARGS, "--api-key=" + key]  # one argument: never taken for an option
    parsed = _smg_parse(argv)
    assert parsed.api_key == key
    assert (parsed.host, parsed.port) == ("192.0.2.10", 30080)
    assert key not in res.stdout + res.stderr


def test_the_old_two_argument_form_stops_on_a_key_starting_with_a_dash() -> None:
    """What the launcher did before: "--api-key", key. argparse takes the key for an option and smg exits."""
    with pytest.raises(SystemExit):
        _smg_parse(["launch", "--api-key", HOSTILE[0]])


@pytest.mark.parametrize(
    "key",
    [None, b"", b"short-key", b"a-good-key-but-a-newline\n", b"tab\there-0123456789", b" leading-space-0123456789",
     b"trailing-space-0123456789 ", "non-ascii-key-\u00e9\u00e9-0123456".encode(), b"\xff\xfe-not-text-0123456789"],
    ids=["no-file", "empty", "short", "newline", "tab", "leading-space", "trailing-space", "non-ascii", "not-utf8"],
)  # fmt: skip
def test_the_launcher_refuses_a_key_it_cannot_pass_unchanged(launcher: Path, key: bytes | None) -> None:
    res, argv = _launch(launcher, key)
    assert res.returncode != 0
    assert argv is None  # smg never started: no open gateway
    assert "sparkfleet-gateway:" in res.stderr
    assert "refusing to start an open gateway" in res.stderr or "cannot read the API key file" in res.stderr
    if key:
        assert key.decode("latin-1").strip() not in res.stderr


def _role_key_checks() -> list[str]:
    """The conditions of validate.yml's 'can be sent in an HTTP header unchanged' check."""
    tasks = yaml.safe_load((ROLE / "tasks" / "validate.yml").read_text())
    (task,) = [t for t in tasks if "HTTP header" in t["name"]]
    assert "sparkfleet_gateway_api_key" in task["ansible.builtin.assert"]["fail_msg"]
    return list(task["ansible.builtin.assert"]["that"])


def _role_accepts(key: str) -> bool:
    env = jinja2.Environment()  # noqa: S701 - evaluates the role's conditions, as Ansible's assert does
    env.filters["regex_replace"] = regex_replace
    return all(env.compile_expression(cond)(llm_gateway_api_key=key) for cond in _role_key_checks())


@pytest.mark.parametrize(
    "key",
    [*HOSTILE, "a-good-key-but-a-newline\n", "tab\there-0123456789", " leading-space-0123456789",
     "trailing-space-0123456789 ", "non-ascii-key-\u00e9\u00e9-0123456", "x" * 16, "del\x7fcharacter-0123456",
     "\nleading-newline-0123456789"],
)  # fmt: skip
def test_the_role_accepts_exactly_what_the_launcher_passes(launcher: Path, key: str) -> None:
    """The role refuses before any change every key the launcher would refuse, and nothing else."""
    res, _ = _launch(launcher, key.encode())
    assert _role_accepts(key) == (res.returncode == 0), (key, res.stderr)


def test_the_unit_has_no_environment_file_and_binds_prometheus_to_loopback() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["llm_gateway_prometheus_bind_address"] == "127.0.0.1"
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert spec["llm_gateway_prometheus_bind_address"]["default"] == "127.0.0.1"
    unit = _render("sparkfleet-gateway.service.j2", **defaults)
    assert not [line for line in unit.splitlines() if line.startswith("EnvironmentFile")]
    assert "--api-key" not in unit
    assert "--prometheus-host 127.0.0.1 --prometheus-port 29000" in unit
    assert "--host 0.0.0.0 --port 30080" in unit
