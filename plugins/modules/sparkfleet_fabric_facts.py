#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module sparkfleet_fabric_facts: one host's ConnectX-7 fabric as facts (sparkfleet/fabric.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sparkfleet_fabric_facts
short_description: Gather the ConnectX-7 fabric of a host for services that span hosts
description:
  - Reads which RDMA device is which network interface and which are up (C(ibdev2netdev), or sysfs
    C(/sys/class/infiniband/*/device/net) when the tool is missing), each interface's MTU, state and addresses
    (C(ip -j addr)), its link speed (C(ethtool), or C(/sys/class/net/*/speed)), the NVIDIA driver's version, the
    machine's architecture and the IDs of the given images.
  - The preflight checks the facts of every host of a service across hosts together (the same port on every
    host, link speed, MTU, addresses unique on one subnet, one driver version and image ID; see
    M(sparkfleet.fleet.sparkfleet_topology) and docs/multi-host.md); the plan takes a host's fabric address and
    interface from them where the host variables do not set them.
  - Changes nothing on the host.
version_added: "0.1.0"
author: sparkfleet contributors (@sparkfleet)
options:
  images:
    description: Image references whose local image ID is reported (empty when the host does not hold one).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds each tool may take.
    type: int
    default: 30
attributes:
  facts:
    details: Returns C(ansible_facts.sparkfleet_fabric).
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
  - sparkfleet.fleet.attributes.facts
"""

EXAMPLES = r"""
- name: Preflight | Gather the fabric of the hosts of services across hosts
  sparkfleet.fleet.sparkfleet_fabric_facts:
    images: ["lmsysorg/sglang:latest-cu130"]

- name: Preflight | Show the interfaces
  ansible.builtin.debug:
    var: ansible_facts['sparkfleet_fabric']['interfaces']
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    sparkfleet_fabric:
      description: The host's fabric.
      type: dict
      contains:
        source:
          description: Where the RDMA devices came from, C(ibdev2netdev) or C(sysfs).
          type: str
          sample: ibdev2netdev
        interfaces:
          description: >-
            One entry per RDMA device and its interface, C({rdma, port, netdev, up, operstate, mtu, speed_mbps,
            addresses}) (C(up) is the RDMA port's state, C(addresses) CIDRs, IPv4 first).
          type: list
          elements: dict
          sample:
            - rdma: rocep1s0f1
              port: 1
              netdev: enp1s0f1np1
              up: true
              operstate: up
              mtu: 9000
              speed_mbps: 200000
              addresses: [192.168.100.11/24]
        architecture:
          description: The machine's architecture.
          type: str
          sample: aarch64
        driver_version:
          description: The loaded NVIDIA kernel module's version (empty without one).
          type: str
          sample: 580.95.05
        images:
          description: Image reference -> its local ID (empty when the host does not hold it).
          type: dict
        problems:
          description: Tools that failed (each also a warning).
          type: list
          elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.fabric import run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "images": {"type": "list", "elements": "str", "default": []},
            "timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
