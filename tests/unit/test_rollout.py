"""The rollout's arithmetic (sparkfleet/rollout.py): Ansible's serial batches, the canary, the failure budget,
and every bad setting refused with the variable's name; the sparkfleet_rollout_plan module around it."""

from __future__ import annotations

import importlib
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.rollout import (
    plan_rollout,
    rollout_units,
    serial_batches,
)

from tests.unit.module_fakes import ExitJson, FailJson, exit_json, fail_json

module_entry: Any = importlib.import_module(
    "ansible_collections.sparkfleet.fleet.plugins.modules.sparkfleet_rollout_plan"
)
EIGHT = [f"fleet-0{i}" for i in range(1, 9)]


def test_serial_batches_are_ansible_s() -> None:
    hosts = ["a", "b", "c", "d", "e"]
    assert serial_batches(hosts, "100%") == [hosts]
    assert serial_batches(hosts, 0) == [hosts]
    assert serial_batches(hosts, None) == [hosts]
    assert serial_batches(hosts, []) == [hosts]
    assert serial_batches(hosts, [1, "100%"]) == [["a"], ["b", "c", "d", "e"]]
    assert serial_batches(hosts, 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert serial_batches(hosts, "25%") == [["a"], ["b"], ["c"], ["d"], ["e"]]  # 25% of 5 is 1 (at least 1)
    assert serial_batches(hosts, "40%") == [["a", "b"], ["c", "d"], ["e"]]
    assert serial_batches(hosts, [1, 2, "100%"]) == [["a"], ["b", "c"], ["d", "e"]]
    assert serial_batches(hosts, [1, 2]) == [["a"], ["b", "c"], ["d", "e"]]  # the last entry repeats
    assert serial_batches([], 3) == []


@pytest.mark.parametrize(
    ("batch", "canary", "serial"),
    [
        ("25%", True, [1, 2, 2, 2, 1]),
        ("25%", False, [2, 2, 2, 2]),
        (3, True, [1, 3, 3, 1]),
        ("3", "false", [3, 3, 2]),
        ("100%", True, [1, 7]),
        ([2, "50%"], "yes", [1, 2, 4, 1]),
        (1, False, [1] * 8),
    ],
)
def test_the_batches_are_explicit_sizes_canary_first(batch: Any, canary: Any, serial: list[int]) -> None:
    plan = plan_rollout(EIGHT, batch, canary, 10)
    assert plan.errors == []
    assert plan.serial == serial
    assert [len(b) for b in plan.batches] == serial
    assert [h for b in plan.batches for h in b] == EIGHT  # every host once, in play order
    # The explicit sizes cut the hosts exactly as the settings do: Ansible gets the same batches from either.
    assert serial_batches(EIGHT, plan.serial) == plan.batches
    assert plan.as_dict()["canary"] == plan.batches[0]


@pytest.mark.parametrize(
    ("pct", "total", "allowed"),
    [(10, 8, 0), (30, 8, 2), ("12.5", 8, 1), (0, 8, 0), (100, 8, 8), (25, 4, 1), ("33.3333", 3, 0), (50, 1, 0)],
)
def test_the_budget_is_a_host_count_rounded_down(pct: Any, total: int, allowed: int) -> None:
    hosts = [f"h{i}" for i in range(total)]
    plan = plan_rollout(hosts, 1, True, pct)
    assert plan.max_failures == allowed
    # The rule it replaces: stopped when failures * 100 / total > pct.
    for failures in range(total + 1):
        assert (failures > plan.max_failures) == (failures * 100 / total > float(pct))


@pytest.mark.parametrize(
    ("batch", "canary", "pct", "named"),
    [
        (0, True, 10, 'sparkfleet_rollout_batch "0"'),
        ("0%", True, 10, "sparkfleet_rollout_batch"),
        ("101%", True, 10, "sparkfleet_rollout_batch"),
        ("12.5%", True, 10, "sparkfleet_rollout_batch"),
        ("-1", True, 10, "sparkfleet_rollout_batch"),
        ("2\n", True, 10, ""),  # whitespace around a count is what Ansible accepts too
        ([], True, 10, "sparkfleet_rollout_batch"),
        ([1, "x"], True, 10, "sparkfleet_rollout_batch"),
        (True, True, 10, "sparkfleet_rollout_batch"),
        (2, "maybe", 10, 'sparkfleet_rollout_canary "maybe" must be true or false'),
        (2, True, 150, 'sparkfleet_rollout_max_fail_percentage "150" must be a number from 0 to 100'),
        (2, True, -1, "sparkfleet_rollout_max_fail_percentage"),
        (2, True, "ten", "sparkfleet_rollout_max_fail_percentage"),
        (2, True, True, "sparkfleet_rollout_max_fail_percentage"),
    ],
)
def test_bad_settings_name_the_variable(batch: Any, canary: Any, pct: Any, named: str) -> None:
    plan = plan_rollout(EIGHT, batch, canary, pct)
    if not named:
        assert plan.errors == []
        return
    assert plan.errors and named in " ".join(plan.errors)
    assert plan.serial == [] and plan.batches == []


def test_every_problem_is_said_at_once() -> None:
    plan = plan_rollout(EIGHT, "0", "maybe", 150)
    assert len(plan.errors) == 3


def _run(args: dict[str, Any], expect: type[Exception] = ExitJson) -> dict[str, Any]:
    with (
        patch_module_args({**args, "_ansible_check_mode": True}),
        mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json),
        pytest.raises(expect) as caught,
    ):
        module_entry.main()
    result: dict[str, Any] = caught.value.args[0]
    return result


def test_the_module_returns_the_plan_and_changes_nothing() -> None:
    out = _run({"hosts": EIGHT, "batch": "25%", "canary": True, "max_fail_percentage": 30})
    assert out["changed"] is False
    assert out["serial"] == [1, 2, 2, 2, 1] and out["max_failures"] == 2 and out["total"] == 8
    assert out["canary"] == ["fleet-01"]


def test_the_module_refuses_bad_settings_before_any_host_changes() -> None:
    out = _run({"hosts": EIGHT, "batch": 0, "canary": True, "max_fail_percentage": 150}, FailJson)
    assert out["msg"].startswith("bad rollout settings: sparkfleet_rollout_batch")
    assert "sparkfleet_rollout_max_fail_percentage" in out["msg"] and out["msg"].endswith("Nothing was changed.")


# ------------------------------------------------------------------ services across hosts roll out as one unit

GROUPS = {"all": EIGHT, "pair": ["fleet-06", "fleet-03"], "spark-lab": EIGHT}
PAIR = {"name": "llama-70b", "engine": "sglang", "hosts": ["fleet-02", "fleet-05"]}
BY_GROUP = {"name": "qwen-235b", "engine": "vllm", "group": "pair", "nodes": 2}


def _services(*declared: dict[str, Any]) -> dict[str, Any]:
    """Every host lists every service (group_vars of a group they share), as the inventory would."""
    return {h: list(declared) for h in EIGHT}


def test_the_units_are_each_service_s_hosts_in_play_order() -> None:
    units = rollout_units(EIGHT, _services(PAIR, BY_GROUP, {"name": "one-host", "engine": "sglang"}), GROUPS)
    assert units == [
        ["fleet-01"], ["fleet-02", "fleet-05"], ["fleet-03", "fleet-06"], ["fleet-04"], ["fleet-07"], ["fleet-08"]
    ]  # fmt: skip
    # Two services that share a host make one unit; hosts outside the run are left out.
    shared = {"name": "other", "engine": "sglang", "hosts": ["fleet-05", "fleet-06"]}
    assert ["fleet-02", "fleet-03", "fleet-05", "fleet-06"] in rollout_units(
        EIGHT, _services(PAIR, BY_GROUP, shared), GROUPS
    )
    assert rollout_units(["fleet-02", "fleet-04"], _services(PAIR), GROUPS) == [["fleet-02"], ["fleet-04"]]


@pytest.mark.parametrize(
    "broken",
    [
        {"name": "x", "engine": "sglang", "hosts": "fleet-01,fleet-02"},
        {"name": "x", "engine": "sglang", "group": "pair", "nodes": "2"},
        {"name": "x", "engine": "sglang", "group": "no-such-group"},
        {"name": "x", "engine": "sglang", "group": ["pair"]},
        "not a service",
    ],
)
def test_a_declaration_too_broken_to_read_is_left_to_preflight(broken: Any) -> None:
    assert rollout_units(EIGHT, _services(broken), GROUPS) == [[h] for h in EIGHT]
    assert rollout_units(EIGHT, {"fleet-01": "not a list"}, GROUPS) == [[h] for h in EIGHT]


def test_a_unit_is_never_cut_a_batch_grows_instead() -> None:
    units = rollout_units(EIGHT, _services(PAIR, BY_GROUP), GROUPS)
    plan = plan_rollout(EIGHT, "25%", True, 25, units)
    assert plan.errors == []
    # The canary is the first unit (fleet-01 alone); the batch of two that meets fleet-02 takes its partner along.
    assert plan.batches == [
        ["fleet-01"], ["fleet-02", "fleet-05"], ["fleet-03", "fleet-06"], ["fleet-04", "fleet-07"], ["fleet-08"]
    ]  # fmt: skip
    assert plan.order == [h for b in plan.batches for h in b]
    assert serial_batches(plan.order, plan.serial) == plan.batches  # the update play cuts the same batches
    assert plan.unit_of["fleet-05"] == ["fleet-02", "fleet-05"] and "fleet-01" not in plan.unit_of
    # A canary that meets a group is the whole group; a batch of one grows to the unit.
    group_first = plan_rollout(["fleet-03", "fleet-06", "fleet-01"], 1, True, 0, [["fleet-03", "fleet-06"]])
    assert group_first.batches == [["fleet-03", "fleet-06"], ["fleet-01"]]
    assert group_first.serial == [2, 1] and group_first.as_dict()["canary"] == ["fleet-03", "fleet-06"]


def test_without_units_the_order_is_the_play_s() -> None:
    plan = plan_rollout(EIGHT, "25%", True, 10)
    assert plan.order == EIGHT and plan.unit_of == {} and plan.serial == [1, 2, 2, 2, 1]


def test_the_module_keeps_a_group_together() -> None:
    out = _run(
        {
            "hosts": EIGHT,
            "batch": 2,
            "canary": True,
            "max_fail_percentage": 0,
            "services": _services(PAIR),
            "groups": GROUPS,
        }
    )
    assert out["batches"][:2] == [["fleet-01"], ["fleet-02", "fleet-05"]]
    assert out["order"][:3] == ["fleet-01", "fleet-02", "fleet-05"]
    assert out["unit_of"] == {"fleet-02": ["fleet-02", "fleet-05"], "fleet-05": ["fleet-02", "fleet-05"]}
