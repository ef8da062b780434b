#!/usr/bin/python
# Copyright: sparkfleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module nvidia_gpu_facts: NVIDIA GPU facts and the platform profile (logic: sparkfleet/gpu.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nvidia_gpu_facts
short_description: Detect NVIDIA GPUs, the driver and the sparkfleet platform profile
description:
  - Runs C(nvidia-smi --query-gpu=...) (retrying with fewer fields on old drivers that lack C(compute_cap)),
    C(nvidia-smi -x -q) for the CUDA version and each GPU's architecture, and reads C(/proc/meminfo),
    C(/etc/dgx-release), C(nvidia-ctk --version) and C(/etc/docker/daemon.json).
  - Picks the platform profile by GPU name (V(dgx_spark) for GB10, V(dgx_station) for GB300, V(hopper) for
    H100/H200/GH200, V(generic_nvidia) for other NVIDIA GPUs, V(none) without a GPU) and the serving GPU
    (chosen by name, so a DGX Station's GB300 serves even when a workstation GPU is index 0).
  - No C(nvidia-smi) or no GPU is not a failure (profile V(none)) unless O(required=true).
    A C(nvidia-smi) that cannot talk to the driver (NVML version mismatch, driver not loaded) fails with
    a message that says what it means and what to do.
  - Changes nothing on the host.
version_added: "0.1.0"
author: sparkfleet contributors (@sparkfleet)
options:
  required:
    description: Fail when no NVIDIA GPU is found.
    type: bool
    default: false
  name_patterns:
    description:
      - Profile name to GPU name patterns, in priority order (the role passes C(gpu_name_patterns) from
        C(sparkfleet_profiles)). A pattern matches a whole word of the GPU name, case-insensitively.
      - The first profile whose patterns match a GPU wins. GPUs matching none give V(generic_nvidia).
    type: dict
    default:
      dgx_spark: [GB10]
      dgx_station: [GB300]
      hopper: [H100, H200, GH200]
      generic_nvidia: []
      none: []
  profile_override:
    description:
      - Force this profile instead of the detected one. Must be a key of O(name_patterns),
        V(generic_nvidia) or V(none).
    type: str
  serving_gpu:
    description:
      - The GPU that serves, by index, UUID or a word of its name; overrides the choice by name patterns.
    type: str
  nvidia_smi:
    description: Path of C(nvidia-smi); default is the one on C(PATH).
    type: path
  timeout:
    description: Seconds to wait for each C(nvidia-smi) call (a wedged GPU can hang it).
    type: int
    default: 30
attributes:
  facts:
    details: Returns C(ansible_facts.nvidia_gpu).
extends_documentation_fragment:
  - sparkfleet.fleet.attributes
  - sparkfleet.fleet.attributes.read_only
  - sparkfleet.fleet.attributes.facts
notes:
  - On unified-memory GPUs (GB10) C(nvidia-smi) prints C([N/A]) for memory; usable memory is then
    C(MemAvailable) from C(/proc/meminfo) (the pool is shared with the OS and its page cache).
  - Runs standalone without Ansible too, C(python3 plugins/module_utils/sparkfleet/gpu.py --raw).
"""

EXAMPLES = r"""
- name: Preflight | Detect NVIDIA GPUs
  sparkfleet.fleet.nvidia_gpu_facts:
    name_patterns:
      dgx_spark: [GB10]
      dgx_station: [GB300]

- name: Preflight | Serve on the GPU named GB300 and fail without a GPU
  sparkfleet.fleet.nvidia_gpu_facts:
    serving_gpu: GB300
    required: true

- name: Preflight | Show the profile
  ansible.builtin.debug:
    msg: >-
      {{ ansible_facts['nvidia_gpu']['profile'] }} on
      {{ ansible_facts['nvidia_gpu']['serving_gpu']['name'] | default('no GPU') }}
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: success
  type: dict
  contains:
    nvidia_gpu:
      description: GPU detection.
      type: dict
      contains:
        profile:
          description: dgx_spark, dgx_station, hopper, generic_nvidia, none (or the override).
          type: str
          sample: hopper
        profile_source:
          description: How the profile and serving GPU were chosen (V(detected) or V(override), and serving_gpu).
          type: str
        serving_gpu:
          description: The GPU that serves (same keys as an item of RV(ansible_facts.nvidia_gpu.gpus)), or null.
          type: dict
        gpus:
          description: >-
            One dict per GPU: index, name, uuid, pci_bus_id, compute_capability, memory_total_mib,
            memory_used_mib (null where the driver prints [N/A] or Not Supported), mig_mode, unified_memory,
            architecture (from nvidia-smi -x -q).
          type: list
          elements: dict
          sample:
            - index: 0
              name: NVIDIA H100 80GB HBM3
              uuid: GPU-a7e8dfef-db19-65d5-4e9e-199c732d320a
              pci_bus_id: "00000000:00:06.0"
              compute_capability: "9.0"
              memory_total_mib: 81559
              memory_used_mib: 0
              mig_mode: Disabled
              unified_memory: false
              architecture: Hopper
        gpu_count:
          description: Number of GPUs.
          type: int
        no_gpu_reason:
          description: Why no GPU was found (no nvidia-smi, no device), null when GPUs were found.
          type: str
        driver_version:
          description: NVIDIA driver version, null without a driver.
          type: str
          sample: "580.159.04"
        cuda_version:
          description: Highest CUDA version the driver supports (nvidia-smi -x -q).
          type: str
          sample: "13.0"
        architecture:
          description: The host's CPU architecture (uname -m), e.g. aarch64 on Spark and Station.
          type: str
        dgx_release:
          description: Keys of /etc/dgx-release (DGX OS), null when the file is absent.
          type: dict
        unified_memory:
          description: The serving GPU shares system memory (GB10).
          type: bool
        usable_memory_mib:
          description: >-
            Memory for serving: the serving GPU's memory.total, or on unified memory /proc/meminfo MemAvailable.
            Null without a serving GPU.
          type: int
        usable_memory_source:
          description: Where usable_memory_mib came from.
          type: str
        system_memory_total_mib:
          description: MemTotal from /proc/meminfo.
          type: int
        system_memory_available_mib:
          description: MemAvailable from /proc/meminfo.
          type: int
        container_toolkit_version:
          description: nvidia-ctk --version, null when the toolkit is not installed.
          type: str
        docker_nvidia_runtime:
          description: /etc/docker/daemon.json declares the nvidia runtime.
          type: bool
        nvidia_smi:
          description: Path of the nvidia-smi used, null when absent.
          type: str
        warnings:
          description: Things detection could not read (also returned as module warnings).
          type: list
          elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.gpu import DEFAULT_NAME_PATTERNS, run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "required": {"type": "bool", "default": False},
            "name_patterns": {"type": "dict", "default": DEFAULT_NAME_PATTERNS},
            "profile_override": {"type": "str"},
            "serving_gpu": {"type": "str"},
            "nvidia_smi": {"type": "path"},
            "timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
