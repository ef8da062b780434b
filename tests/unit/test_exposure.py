"""serving/exposure.py: every port says where it listens and who may reach it; the rules enforce exactly that."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.contracts import (
    read_owned_marker,
    unit_own_name,
    unit_service_name,
)
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving import exposure

from tests.unit.service_helpers import STANDIN_SERVICE, render

WORKER: dict[str, Any] = STANDIN_SERVICE
ETCD: dict[str, Any] = {
    "name": "etcd",
    "engine": "dynamo-etcd",
    "image": "quay.io/coreos/etcd:v3.5.21",
    "model": "etcd",
    "dynamo_deployment": "sglang",
    "dynamo_discovery": "http://10.0.0.11:2379",
    "gpu": "none",
    "port": 2379,
}


def _exposure(services: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    out = render(services, {}, **kw)
    assert out["errors"] == [], out["errors"]
    return out


def test_a_worker_behind_a_keyed_gateway_is_reachable_only_from_the_gateway_and_the_controller() -> None:
    out = _exposure([WORKER], worker_sources=["172.30.42.14", "172.30.42.1", "172.30.42.14"])
    (entry,) = out["exposure"]
    assert entry["reach"] == "restricted" and entry["allow"] == ["172.30.42.1/32", "172.30.42.14/32"]
    v4 = out["firewall"]["v4"].splitlines()
    match = "-p tcp -m conntrack --ctdir ORIGINAL --ctorigdstport 8080"
    assert v4[-4:] == [
        f"-A SPARKFLEET-DOCKER {match} -s 172.30.42.1/32 -j RETURN",
        f"-A SPARKFLEET-DOCKER {match} -s 172.30.42.14/32 -j RETURN",
        f"-A SPARKFLEET-DOCKER {match} -j DROP",
        "COMMIT",
    ]
    # only sparkfleet's own chains are declared: iptables-restore --noflush flushes those and nothing else
    assert [line for line in v4 if line.startswith(":")] == [":SPARKFLEET-DOCKER - [0:0]", ":SPARKFLEET-INPUT - [0:0]"]
    assert "-A SPARKFLEET-INPUT -i lo -j RETURN" in v4
    # IPv6 reaches a published port through docker-proxy: refused but for loopback
    assert "-A SPARKFLEET-INPUT -p tcp --dport 8080 -j DROP" in out["firewall"]["v6"].splitlines()


def test_without_a_keyed_gateway_a_worker_is_open_and_says_so() -> None:
    out = _exposure([WORKER])
    (entry,) = out["exposure"]
    assert entry["reach"] == "anyone" and "llm_serving_expose_workers" in entry["why"]
    assert "--ctorigdstport" not in out["firewall"]["v4"] and "DROP" not in out["firewall"]["v6"]


def test_etcd_is_reachable_only_from_the_inventory() -> None:
    out = _exposure([ETCD], etcd_sources=["10.0.0.0/24"])
    (entry,) = out["exposure"]
    assert entry["path"] == "host" and entry["reach"] == "restricted"
    assert "-A SPARKFLEET-INPUT -p tcp --dport 2379 -s 10.0.0.0/24 -j RETURN" in out["firewall"]["v4"]
    assert "-A SPARKFLEET-INPUT -p tcp --dport 2379 -j DROP" in out["firewall"]["v4"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("spark-01", "is not an IPv4 address or network"),
        ("10.0.0.1 -j ACCEPT", "is not an IPv4 address or network"),
        ("fd00::1", "is IPv6"),
    ],
)
def test_a_bad_source_is_refused_naming_the_variable(value: str, message: str) -> None:
    out = render([WORKER], {}, worker_sources=[value])
    assert any(e.startswith("llm_serving_worker_sources: ") and message in e for e in out["errors"]), out["errors"]


def test_the_firewall_unit_is_sparkfleets_but_never_a_service() -> None:
    assert read_owned_marker(exposure.FIREWALL_MARKER, "firewall") is not None
    assert unit_service_name("/etc/systemd/system/sparkfleet-firewall.service") == ""
    assert unit_service_name("/etc/systemd/system/sparkfleet-gateway.service") == ""
    assert unit_service_name("/etc/systemd/system/sparkfleet-a.service") == "a"
    assert unit_own_name("/etc/systemd/system/sparkfleet-firewall.service") == "firewall"
    assert unit_own_name("/etc/systemd/system/other.service") == ""
