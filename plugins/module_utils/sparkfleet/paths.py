"""Where sparkfleet's files are on a host: one definition of each path, imported by every Python default.

The Ansible side reads the same values from one role, ``roles/sparkfleet_paths`` (``sparkfleet_paths_<x>`` in its
defaults/main.yml; each role's own path variable defaults to one of them). ``tests/unit/test_host_paths.py`` holds
the two equal, and fails when a role, a playbook or another Python module spells one of these paths itself.

sparkfleet keeps its files under three directories of its own (configuration, state, software) plus a few
scratch directories; the rest are the system's (systemd's unit directory, the docker CLI, Docker's daemon.json).
"""

from __future__ import annotations

# The system's paths that sparkfleet writes to or runs.
UNIT_DIR = "/etc/systemd/system"
DOCKER_BIN = "/usr/bin/docker"
DOCKER_DAEMON_JSON = "/etc/docker/daemon.json"

# sparkfleet's own directories: configuration (root-only files), state, software.
CONFIG_DIR = "/etc/sparkfleet"
STATE_DIR = "/var/lib/sparkfleet"
OPT_DIR = "/opt/sparkfleet"

# Configuration (llm_serving, hf_cache, llm_gateway).
ENV_DIR = f"{CONFIG_DIR}/serving"
FIREWALL_DIR = f"{CONFIG_DIR}/firewall"
SECRETS_ENV = f"{CONFIG_DIR}/secrets.env"
HF_ENV = f"{CONFIG_DIR}/hf.env"
GATEWAY_CONFIG_DIR = f"{CONFIG_DIR}/gateway"

# State: last-known-good copies, the Hugging Face cache (HF_HOME, its hub cache below it), Dynamo's file
# discovery, the driver version the CDI spec was generated for, the stamp of the last full converge.
LKG_DIR = f"{STATE_DIR}/lkg"
HF_HOME = f"{STATE_DIR}/huggingface"
HF_HUB_DIR = f"{HF_HOME}/hub"
DYNAMO_DIR = f"{STATE_DIR}/dynamo"
CDI_STATE_FILE = f"{STATE_DIR}/nvidia-cdi-driver-version"
# The stamp of the last full, successful converge (converge.py: the converged-host fast path), root-only.
CONVERGE_STAMP = f"{STATE_DIR}/converged.json"

# Software: the benchmark's virtual environment (huggingface_hub's hf CLI too) and the gateway's, with the wheels
# copied for air-gapped installs.
VENV = f"{OPT_DIR}/venv"
WHEELHOUSE = f"{OPT_DIR}/wheelhouse"
GATEWAY_VENV = f"{OPT_DIR}/gateway/venv"
GATEWAY_WHEELHOUSE = f"{OPT_DIR}/gateway/wheelhouse"

# Scratch directories: image archives before `docker load`, the benchmark's reports before the controller
# fetches them (the hosts' and the gateway's).
IMAGE_ARCHIVE_DIR = "/var/tmp/sparkfleet-images"
VERIFY_DIR = "/var/tmp/sparkfleet-verify"
GATEWAY_VERIFY_DIR = "/var/tmp/sparkfleet-gateway"

# Inside the containers: where SGLang/vLLM find HF_HOME, and NIM its cache. The host's NIM cache defaults to the
# same path as the container's (NVIDIA's documented layout).
HF_HOME_IN_CONTAINER = "/root/.cache/huggingface"
NIM_CACHE_IN_CONTAINER = "/opt/nim/.cache"
NIM_CACHE_DIR = NIM_CACHE_IN_CONTAINER

# The shared role's variables (roles/sparkfleet_paths/defaults/main.yml): sparkfleet_paths_<key> -> its value.
ROLE_VARIABLES: dict[str, str] = {
    "unit_dir": UNIT_DIR,
    "docker_bin": DOCKER_BIN,
    "docker_daemon_json": DOCKER_DAEMON_JSON,
    "config_dir": CONFIG_DIR,
    "state_dir": STATE_DIR,
    "opt_dir": OPT_DIR,
    "env_dir": ENV_DIR,
    "firewall_dir": FIREWALL_DIR,
    "secrets_env": SECRETS_ENV,
    "hf_env": HF_ENV,
    "gateway_config_dir": GATEWAY_CONFIG_DIR,
    "lkg_dir": LKG_DIR,
    "hf_home": HF_HOME,
    "hf_hub_dir": HF_HUB_DIR,
    "dynamo_dir": DYNAMO_DIR,
    "cdi_state_file": CDI_STATE_FILE,
    "converge_stamp": CONVERGE_STAMP,
    "venv": VENV,
    "wheelhouse": WHEELHOUSE,
    "gateway_venv": GATEWAY_VENV,
    "gateway_wheelhouse": GATEWAY_WHEELHOUSE,
    "image_archive_dir": IMAGE_ARCHIVE_DIR,
    "verify_dir": VERIFY_DIR,
    "gateway_verify_dir": GATEWAY_VERIFY_DIR,
    "nim_cache_dir": NIM_CACHE_DIR,
}
