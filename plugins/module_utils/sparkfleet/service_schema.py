"""One definition of a service in ``llm_serving_services`` (docs/development.md).

Preflight (validation, memory plan), serving (rendering) and verify (per-service ``verify``
settings) all read the same list; keeping its keys here stops one stage rejecting what
another accepts.
"""

from __future__ import annotations

ENGINES = ("sglang", "nim", "vllm", "openai")
STATES = ("present", "absent")
REQUIRED_KEYS = ("name", "engine", "image", "model", "port")
SERVICE_KEYS = (
    "name",
    "engine",
    "image",
    "image_archive",
    "model",
    "port",
    "gpu",
    "mem_fraction",
    "context_length",
    "model_params_b",
    "model_dtype",
    "memory_gb",
    "extra_args",
    "command",
    "container_port",
    "env",
    "state",
    # serving's own knobs
    "shm_size",
    "docker_args",
    "health_paths",
    "health_timeout_s",
    "stop_timeout_s",
    # llm_verify's per-service settings: {enabled, thresholds, ...}
    "verify",
)
