"""The service model: the ONE definition of a service in ``llm_serving_services``.

Every key a service may have, its type, whether it is required, its default, its choices and its
description live in ``FIELDS`` below; the engines differ only in data (``ENGINES``). The parser
(``service/parse.py``) checks against this table, the serving role's ``meta/argument_specs.yml`` and the
service table in ``docs/development.md`` are generated from it (``python3 -m lab.gen_service_docs``), and a
unit test fails when either file drifts from it. Nothing else defines a service key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..contracts import DTYPE_BYTES

SERVICES_VAR = "llm_serving_services"
STATES = ("present", "absent")


# --------------------------------------------------------------------------------------------- engines


@dataclass(frozen=True)
class EngineFlags:
    """The engine's own flags sparkfleet sets from service keys (None: the engine has no such flag)."""

    model: str | None = None
    host: str | None = None
    port: str | None = None
    mem_fraction: str | None = None
    context_length: str | None = None


@dataclass(frozen=True)
class MultiHost:
    """How an engine runs one model across hosts (FIELD-NOTES "one model across Sparks"), as data.

    Arguments are templates over the planned piece of a host (service/multihost.py): ``{tp}``, ``{pp}``,
    ``{nnodes}``, ``{rank}``, ``{address}`` (this host's fabric address), ``{head_address}``, ``{dist_port}`` and
    ``{workers}`` (the workers' ``address:dist_port``, comma-separated, in rank order)."""

    # The port of the rendezvous: SGLang's --dist-init-addr, vLLM's --master-port, Ray's GCS, llama.cpp's RPC server.
    dist_port: int
    # Added on every host / on the head only / on the workers only (after the engine's own flags).
    args: tuple[str, ...] = ()
    head_args: tuple[str, ...] = ()
    worker_args: tuple[str, ...] = ()
    # The container's entry point and command when they are not the engine's server (a Ray node, an RPC server);
    # a worker with worker_command gets no engine flags at all.
    head_entrypoint: str = ""
    head_command: tuple[str, ...] = ()
    worker_entrypoint: str = ""
    worker_command: tuple[str, ...] = ()
    # Environment variables set to this host's fabric address (the engine's own control traffic on the fabric).
    host_ip_env: tuple[str, ...] = ()
    # NCCL over the fabric: the NCCL/UCX/Gloo interface variables, NCCL_IB_HCA, MASTER_ADDR, /dev/infiniband.
    nccl: bool = True
    env: tuple[tuple[str, str], ...] = ()
    # tensor_parallel x pipeline_parallel spread over the hosts (False: the engine splits by layer on its own).
    parallel: bool = True
    # What a worker answers on (it serves no OpenAI API): () = its unit running is its health.
    worker_health_paths: tuple[str, ...] = ()
    # Flags the plan sets on every host (refused in extra_args of a service that spans hosts).
    owned_flags: tuple[str, ...] = ()
    # Which side serving starts first: "head" (Ray's head before its workers join), "workers" (the RPC servers the
    # head connects to at start), or "" (any order: each waits at the rendezvous).
    start_first: str = ""
    description: str = ""


@dataclass(frozen=True)
class Engine:
    """Everything that differs between engines, as data: adding an engine is adding an entry here."""

    name: str
    default_port: int
    # Port inside the container; None: the same as the host port.
    container_port: int | None
    health_paths: tuple[str, ...]
    # Secrets the serving role writes into the service's 0600 env file (names only; values come from the vault).
    secret_env: tuple[str, ...]
    # Host cache mounted into the container: "hf" (Hugging Face cache), "nim" (NIM cache, UID 1000) or "".
    cache: str
    flags: EngineFlags
    # The container's command before the flags when the service sets no `command`.
    launcher: tuple[str, ...] = ()
    # Profile key whose list of flags is added to every service of this engine (e.g. sglang_args).
    profile_args: str | None = None
    requires_ngc_key: bool = False
    allows_command: bool = True
    description: str = ""
    # Flags the engine always gets before extra_args (a flag given in extra_args replaces its default).
    default_args: tuple[str, ...] = ()
    # The env variable that carries the port when the engine has no port flag (a Dynamo worker's system port).
    port_env: str | None = None
    # Environment the engine always gets (written to the 0600 env file; the service's env wins).
    env: tuple[tuple[str, str], ...] = ()
    # Part of a Dynamo deployment: "frontend", "worker", or "discovery" (etcd); "" for a standalone server.
    dynamo_role: str = ""
    # Runs with --network host: it advertises the host's address and listens on ports chosen at run time.
    host_network: bool = False
    # A worker that needs a GPU host (the CPU mocker does not: it must say gpu: none).
    needs_gpu_host: bool = False
    # Serves the OpenAI API that llm_verify benchmarks (a Dynamo worker or etcd does not: the frontend is).
    benchmarked: bool = True
    # Uses a GPU at all (False: gpu defaults to none and any other value is refused).
    uses_gpu: bool = True
    # A render function for arguments no flag table describes (serving/render.py's ARG_BUILDERS), or "".
    arg_builder: str = ""
    # Prometheus metrics on the service's port (roles/metrics scrapes it; "" for none), and the flags that switch
    # them on, added before extra_args (SGLang serves /metrics only with --enable-metrics). The openai engine runs
    # the image's own arguments: llama.cpp's server needs --metrics in its command (the demo lab's has it).
    metrics_path: str = "/metrics"
    metrics_args: tuple[str, ...] = ()
    # How it spans hosts, by distributed_backend (the first is the default); () = one host only.
    multihost: tuple[tuple[str, MultiHost], ...] = ()

    def multihost_form(self, backend: str | None) -> MultiHost | None:
        """The form of ``backend`` (None: the engine's default), or None when the engine has no such form."""
        forms = dict(self.multihost)
        if not forms:
            return None
        return forms.get(backend or self.multihost[0][0])


_SGLANG_FLAGS = EngineFlags(
    model="--model-path",
    host="--host",
    port="--port",
    mem_fraction="--mem-fraction-static",
    context_length="--context-length",
)
_VLLM_FLAGS = EngineFlags(
    model="--model",
    host="--host",
    port="--port",
    mem_fraction="--gpu-memory-utilization",
    context_length="--max-model-len",
)

# One model across hosts (FIELD-NOTES "one model across Sparks"). The flags the plan sets on every host of the group,
# spelled every way the engine accepts them, are refused in extra_args.
_PARALLEL_FLAGS = ("--tp", "--tp-size", "--tensor-parallel-size", "--pp", "--pp-size", "--pipeline-parallel-size")
# SGLang: --tp-size/--pp-size (SGLang's own names; an abbreviation such as --pp can be ambiguous to argparse),
# --nnodes, --node-rank, --dist-init-addr HEAD:20000; it hangs unless SGLANG_HOST_IP is the fabric address. A node of
# rank > 0 runs the same server without the HTTP API.
_SGLANG_MULTIHOST = MultiHost(
    dist_port=20000,
    args=("--tp-size", "{tp}", "--pp-size", "{pp}", "--nnodes", "{nnodes}", "--node-rank", "{rank}",
          "--dist-init-addr", "{head_address}:{dist_port}"),
    host_ip_env=("SGLANG_HOST_IP",),
    owned_flags=(*_PARALLEL_FLAGS, "--nnodes", "--node-rank", "--dist-init-addr"),
    description="SGLang's own launch on every host (--nnodes, --node-rank, --dist-init-addr)",
)  # fmt: skip
# vLLM without Ray: every host runs the server with --nnodes/--node-rank/--master-addr/--master-port, the workers
# --headless (no API).
_VLLM_MP = MultiHost(
    dist_port=29500,
    args=("--tensor-parallel-size", "{tp}", "--pipeline-parallel-size", "{pp}", "--distributed-executor-backend",
          "mp", "--nnodes", "{nnodes}", "--node-rank", "{rank}", "--master-addr", "{head_address}", "--master-port",
          "{dist_port}"),
    worker_args=("--headless",),
    host_ip_env=("VLLM_HOST_IP",),
    owned_flags=(*_PARALLEL_FLAGS, "--distributed-executor-backend", "--nnodes", "--node-rank", "--master-addr",
                 "--master-port", "--headless"),
    description="vLLM's multiprocessing backend across nodes (--nnodes, --node-rank, --master-addr, --headless "
    "workers; no Ray)",
)  # fmt: skip
# vLLM on a Ray cluster (NVIDIA's two-Spark recipe): the head starts Ray's head then the server, each worker joins
# Ray and blocks; Ray's memory monitor off (RAY_memory_monitor_refresh_ms=0). The image must carry Ray.
_VLLM_RAY = MultiHost(
    dist_port=6379,
    head_args=("--tensor-parallel-size", "{tp}", "--pipeline-parallel-size", "{pp}", "--distributed-executor-backend",
               "ray"),
    head_entrypoint="/bin/bash",
    head_command=("-c", "ray start --head --node-ip-address={address} --port={dist_port} && exec python3 -m "
                  'vllm.entrypoints.openai.api_server "$@"', "vllm-ray-head"),
    worker_entrypoint="/bin/bash",
    worker_command=("-c", "exec ray start --address={head_address}:{dist_port} --node-ip-address={address} --block"),
    host_ip_env=("VLLM_HOST_IP",),
    env=(("RAY_memory_monitor_refresh_ms", "0"),),
    owned_flags=(*_PARALLEL_FLAGS, "--distributed-executor-backend"),
    start_first="head",
    description="a Ray cluster (head: ray start --head, then the server; workers: ray start --address)",
)  # fmt: skip
# llama.cpp's RPC backend, the lab's CPU stand-in for a real split: each worker runs ggml-rpc-server on its fabric
# address (Debian: llama.cpp-tools-extra, not on PATH; the backend is libggml0-backend-rpc), the head llama-server
# --rpc with every worker and -ngl 99 (extra_args may lower it). It splits by layer over TCP: no NCCL, no tp/pp.
_LLAMA_RPC = MultiHost(
    dist_port=50052,
    head_args=("--rpc", "{workers}", "-ngl", "99"),
    worker_entrypoint="/bin/sh",
    worker_command=("-c", "exec /usr/libexec/*/llama/bin/ggml-rpc-server -H {address} -p {dist_port}"),
    nccl=False,
    parallel=False,
    owned_flags=("--rpc",),
    start_first="workers",
    description="llama.cpp's RPC backend (workers: ggml-rpc-server on the fabric address; head: llama-server --rpc)",
)

ENGINES: dict[str, Engine] = {
    "sglang": Engine(
        name="sglang",
        default_port=30000,
        container_port=None,
        # /health and /health_generate answer 503 while starting on current SGLang builds, 200 at once on old
        # ones: /health_generate runs a real one-token generation, /v1/models proves the OpenAI API is mounted.
        health_paths=("/health_generate", "/v1/models"),
        secret_env=("HF_TOKEN",),
        cache="hf",
        flags=_SGLANG_FLAGS,
        launcher=("python3", "-m", "sglang.launch_server"),
        profile_args="sglang_args",
        metrics_args=("--enable-metrics",),
        description="SGLang (python3 -m sglang.launch_server) with the profile's flags",
        multihost=(("native", _SGLANG_MULTIHOST),),
    ),
    "vllm": Engine(
        name="vllm",
        default_port=8000,
        container_port=None,
        health_paths=("/health", "/v1/models"),
        secret_env=("HF_TOKEN",),
        cache="hf",
        flags=_VLLM_FLAGS,
        description="vLLM's OpenAI server (the image's entry point) with --model and the memory flags",
        multihost=(("mp", _VLLM_MP), ("ray", _VLLM_RAY)),
    ),
    "nim": Engine(
        name="nim",
        default_port=8000,
        container_port=8000,
        health_paths=("/v1/health/ready",),
        secret_env=("NGC_API_KEY",),
        cache="nim",
        flags=EngineFlags(),
        requires_ngc_key=True,
        allows_command=False,
        # NIM for LLMs serves its Prometheus metrics under /v1.
        metrics_path="/v1/metrics",
        description="an NVIDIA NIM image (runs its own server on 8000, configured by env)",
    ),
    "openai": Engine(
        name="openai",
        default_port=8000,
        container_port=None,
        health_paths=("/v1/models",),
        secret_env=(),
        cache="",
        flags=EngineFlags(),
        description="any OpenAI-compatible image, run with its own arguments (command)",
    ),
    "llama-cpp": Engine(
        name="llama-cpp",
        default_port=8080,
        container_port=None,
        health_paths=("/health", "/v1/models"),
        secret_env=(),
        cache="",
        # The served id is --alias; the GGUF file comes from the image or from extra_args (--model /models/x.gguf).
        flags=EngineFlags(model="--alias", host="--host", port="--port", context_length="--ctx-size"),
        description="llama.cpp's llama-server (the image's entry point; the GGUF file in the image or extra_args "
        "--model, the model key is its --alias), the lab's CPU stand-in; across hosts through llama.cpp's RPC "
        "backend",
        multihost=(("rpc", _LLAMA_RPC),),
    ),
    # NVIDIA Dynamo (docs/dynamo.md): a frontend (OpenAI HTTP, KV-aware routing) in front of workers, all in one
    # dynamo_deployment (the Dynamo namespace), found through dynamo_discovery, requests over TCP.
    "dynamo-frontend": Engine(
        name="dynamo-frontend",
        default_port=8000,
        container_port=None,
        # /health answers once the runtime is up; /v1/models once the HTTP service is mounted.
        health_paths=("/health", "/v1/models"),
        secret_env=(),
        cache="",
        flags=EngineFlags(host="--http-host", port="--http-port"),
        launcher=("python3", "-m", "dynamo.frontend"),
        # KV-aware routing; a request whose worker dies (connection refused, a stream cut) is retried on another
        # worker up to 3 times instead of failing with 503 (Dynamo's default is 0: measured on the lab, a killed
        # worker's requests failed until its etcd lease expired). extra_args override either.
        default_args=("--router-mode", "kv", "--migration-limit", "3"),
        dynamo_role="frontend",
        host_network=True,
        uses_gpu=False,
        description="NVIDIA Dynamo's frontend (python3 -m dynamo.frontend: OpenAI HTTP, KV-aware routing; CPU is "
        "enough) for the workers of its dynamo_deployment",
    ),
    "dynamo-sglang": Engine(
        name="dynamo-sglang",
        # Dynamo's system port (health, model metadata the frontend reads), as in Dynamo's Kubernetes probes.
        default_port=9090,
        container_port=None,
        health_paths=("/health",),
        secret_env=("HF_TOKEN",),
        cache="hf",
        flags=EngineFlags(
            model="--model-path", mem_fraction="--mem-fraction-static", context_length="--context-length"
        ),
        launcher=("python3", "-m", "dynamo.sglang"),
        profile_args="sglang_args",
        metrics_args=("--enable-metrics",),
        port_env="DYN_SYSTEM_PORT",
        env=(("DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS", '["generate"]'),),
        dynamo_role="worker",
        host_network=True,
        needs_gpu_host=True,
        benchmarked=False,
        description="a Dynamo SGLang worker (python3 -m dynamo.sglang) with the profile's SGLang flags, on a GPU host",
    ),
    "dynamo-mocker": Engine(
        name="dynamo-mocker",
        default_port=9090,
        container_port=None,
        health_paths=("/health",),
        secret_env=(),
        cache="",
        flags=EngineFlags(model="--model-name"),
        launcher=("python3", "-m", "dynamo.mocker"),
        port_env="DYN_SYSTEM_PORT",
        env=(("DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS", '["generate"]'),),
        dynamo_role="worker",
        host_network=True,
        uses_gpu=False,
        benchmarked=False,
        description="Dynamo's CPU mocker worker (python3 -m dynamo.mocker, simulated engine, no GPU; gpu: none and "
        "--model-path in extra_args), the lab's stand-in for SGLang workers",
    ),
    "dynamo-etcd": Engine(
        name="dynamo-etcd",
        default_port=2379,
        container_port=None,
        health_paths=("/health",),
        secret_env=(),
        cache="",
        flags=EngineFlags(),
        launcher=("etcd",),
        dynamo_role="discovery",
        host_network=True,
        uses_gpu=False,
        benchmarked=False,
        arg_builder="etcd",
        description="etcd for a Dynamo deployment that spans hosts (dynamo_discovery points at it)",
    ),
}

DYNAMO_ROLES = ("frontend", "worker", "discovery")
DYNAMO_DEFAULT_DEPLOYMENT = "dynamo"
# dynamo_discovery: "file" (every component of the deployment on one host) or etcd client URL(s).
_ETCD_URL = r"https?://[A-Za-z0-9.\[\]:_-]+:[0-9]{1,5}"
DYNAMO_DISCOVERY_RE = re.compile(rf"(?:file|{_ETCD_URL}(?:,{_ETCD_URL})*)\Z")

# The address a server listens on inside its container; the host side is docker's --publish.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - inside the container only
LISTEN_ANYWHERE = (ALL_INTERFACES, "::", "[::]")


# --------------------------------------------------------------------------------------------- grammar

# Every pattern here is used with fullmatch and ends in \Z: `$` would also match before a final "\n", and
# "name\n" would pass. One rule for names, case included: the name becomes sparkfleet-<name>.service and the
# container's name.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}\Z")
NAME_RULE = "1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
SHM_RE = re.compile(r"[0-9]+(\.[0-9]+)?([bkmg]|kb|mb|gb)?\Z", re.IGNORECASE)
HEALTH_PATH_RE = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*\Z")
# Docker image reference (distribution/reference): [registry[:port]/]path[:tag][@sha256:<64 hex>].
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_RE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{PATH_COMPONENT}(?:/{PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?\Z",
    re.ASCII,
)
NGC_REGISTRY = "nvcr.io"

# Secrets by shape: a Hugging Face token and both NGC key formats (FIELD-NOTES: legacy 86 + '==', nvapi-...).
HF_TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{30,}")
NGC_KEY_RE = re.compile(r"(?:[A-Za-z0-9]{86}==|nvapi-[A-Za-z0-9_-]{20,})\Z")
SECRET_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a Hugging Face token", HF_TOKEN_RE),
    ("an NGC API key", re.compile(r"nvapi-[A-Za-z0-9_-]{20,}|(?<![A-Za-z0-9])[A-Za-z0-9]{86}==")),
)
# The vault variables a secret belongs in, by the env name a server reads it from.
SECRET_VARS = {"HF_TOKEN": "sparkfleet_hf_token", "NGC_API_KEY": "sparkfleet_ngc_api_key"}
SECRET_ENV_NAMES = frozenset({*SECRET_VARS, "HUGGING_FACE_HUB_TOKEN", "NGC_CLI_API_KEY"})

# Which docker run options a service's docker_args may carry: service/docker_args.py (one table, docs/serving.md).


# --------------------------------------------------------------------------------------------- fields


# Length bounds of strings, in characters: a value (an argument, an env value), a name or path, an env variable's
# name. Each field may set its own (Field.max_len); the parser refuses a longer string naming the bound.
MAX_VALUE_LEN = 4096
MAX_NAME_LEN = 255
MAX_ENV_NAME_LEN = 128
# The most hosts one service may span.
MAX_NODES = 64


@dataclass(frozen=True)
class Field:
    """One key of a service: what the parser checks, the argument spec declares and the docs list."""

    name: str
    kind: str  # str, int, float, bool, list, dict, raw
    description: str
    required: bool = False
    default: Any = None
    choices: tuple[Any, ...] = ()
    elements: str | None = None  # list element kind for the argument spec
    minimum: float | None = None
    maximum: float | None = None
    # Text for the docs' default column when the default is computed (engine's, profile's, role's).
    default_text: str = ""
    # Whether the value reaches a unit file, an env file or a command line (control characters refused).
    reaches_host: bool = False
    # The longest a string (of a list: each item; of env: each value) may be, in characters; None: MAX_VALUE_LEN.
    max_len: int | None = None

    @property
    def length_bound(self) -> int:
        return self.max_len if self.max_len is not None else MAX_VALUE_LEN

    @property
    def spec_type(self) -> str:
        return self.kind


VERIFY_KEYS: dict[str, str] = {
    "enabled": "bool",
    "thresholds": "dict",
    "checks": "list",
    "concurrency": "list",
}

FIELDS: tuple[Field, ...] = (
    Field("name", "str", f"Unit C(sparkfleet-<name>.service) and container C(sparkfleet-<name>): {NAME_RULE}.",
          required=True, reaches_host=True, max_len=63),
    Field("engine", "str", "How the container is run: " + "; ".join(f"C({e.name}) {e.description}"
          for e in ENGINES.values()) + ".", required=True, choices=tuple(ENGINES)),
    Field("image", "str", "Image reference with a tag or digest (C(lmsysorg/sglang:latest-cu130), "
          "C(repo@sha256:...)).", required=True, reaches_host=True, max_len=MAX_NAME_LEN),
    Field("model", "str", "The served model: SGLang C(--model-path), vLLM C(--model), and the id the benchmark "
          "asks for (what C(/v1/models) lists).", required=True, reaches_host=True, max_len=1024),
    Field("image_archive", "str", "Controller path of a C(docker save) archive loaded instead of pulling "
          "(air-gapped labs); relative paths are tried against C(llm_serving_archive_search_dirs), the inventory "
          "and the repository.", default="", reaches_host=True),
    Field("port", "int", "Host port the service is published on.", minimum=1, maximum=65535,
          default_text="the engine's: " + ", ".join(f"{e.name} {e.default_port}" for e in ENGINES.values())),
    Field("container_port", "int", "Port inside the container.", minimum=1, maximum=65535,
          default_text="nim 8000, otherwise port"),
    Field("gpu", "raw", "C(auto) (the GPU detection chose), a GPU index (an integer), a word of a GPU name such "
          "as C(GB300), C(all), or C(none) for a CPU service (no GPU flags at all).", default="auto", max_len=64),
    Field("mem_fraction", "float", "Share of the GPU's memory: SGLang C(--mem-fraction-static), vLLM "
          "C(--gpu-memory-utilization); at most the profile's max_mem_fraction.", minimum=0.0, maximum=1.0,
          default_text="the profile's default_mem_fraction"),
    Field("context_length", "int", "SGLang C(--context-length), vLLM C(--max-model-len).", minimum=1,
          maximum=10_000_000),
    Field("model_params_b", "float", "Billions of parameters (preflight's memory plan, the report's bandwidth "
          "ceiling).", minimum=0.0),
    Field("model_dtype", "str", "Weight type (memory plan, bandwidth ceiling).", choices=tuple(DTYPE_BYTES)),
    Field("memory_gb", "float", "Explicit memory need in GB (memory plan), instead of model_params_b.",
          minimum=0.0),
    Field("extra_args", "list", "Appended to the engine's arguments; a flag given here replaces the role's "
          "default of it (flags that sparkfleet sets from a key, port and host included, are refused).",
          default=[], elements="str", reaches_host=True),
    Field("command", "list", "The container's arguments (openai engine), or the launcher replacing SGLang's "
          "C(python3 -m sglang.launch_server).", default=[], elements="str", reaches_host=True),
    Field("env", "dict", "Environment of the container, written to its root-owned 0600 env file (no secrets: "
          "HF_TOKEN and NGC_API_KEY come from the vault variables).", default={}, reaches_host=True),
    Field("state", "str", "C(absent) stops, disables and removes unit, env file and container.",
          default="present", choices=STATES),
    Field("shm_size", "str", "C(--shm-size) (for example C(16g)).", reaches_host=True, max_len=32,
          default_text="GPU services: the profile's shm_size"),
    Field("docker_args", "list", "Extra C(docker run) options before the image, read as docker reads them and "
          "checked against a table of every docker run option (docs/serving.md). Options that break the "
          "container's isolation (C(--privileged), host namespaces, devices, mounts of system directories or "
          "sparkfleet's own, capabilities beyond the profile's) and options not in the table need "
          "allow_host_access; options sparkfleet sets itself (C(--name), C(--rm), C(--pull), ...) are refused.",
          default=[], elements="str", reaches_host=True),
    Field("allow_host_access", "bool", "Opt in to docker_args that break the container's isolation, or that are "
          "newer than sparkfleet's table of docker run options (docs/serving.md, which docker options a service "
          "may use). Leave false unless the image's documentation requires it.", default=False),
    Field("health_paths", "list", "Endpoints that must all answer 200, in order.", elements="str",
          reaches_host=True, max_len=1024, default_text="the engine's: " + "; ".join(
              f"{e.name} {' + '.join(e.health_paths)}" for e in ENGINES.values())),
    Field("health_timeout_s", "int", "Health budget of this service in seconds.", minimum=1, maximum=86400,
          default_text="llm_serving_health_timeout_s"),
    Field("stop_timeout_s", "int", "Grace period of C(docker stop) in seconds.", minimum=1, maximum=3600,
          default_text="llm_serving_stop_timeout_s"),
    Field("api_key_var", "str", "For a server behind an API key: the NAME of the (vault) variable that holds the key. "
          "The benchmark sends it; with api_key_env the serving role writes it to the 0600 env file. The key itself "
          "never appears in the inventory's service list, the plan or a message.", default="", max_len=MAX_NAME_LEN),
    Field("api_key_env", "str", "The container's environment variable that carries the key from api_key_var (for "
          "example C(VLLM_API_KEY), C(LLAMA_API_KEY)); empty when the server gets its key another way.", default="",
          max_len=MAX_ENV_NAME_LEN),
    Field("verify", "dict", "Verification settings read by llm_verify: " + ", ".join(
          f"C({k}) ({v})" for k, v in VERIFY_KEYS.items()) + ".", default={}),
    Field("dynamo_deployment", "str", "Dynamo engines: the deployment (Dynamo namespace) this component belongs to; "
          "exactly one dynamo-frontend per deployment across the fleet (docs/dynamo.md).",
          default=DYNAMO_DEFAULT_DEPLOYMENT, reaches_host=True, max_len=63),
    Field("dynamo_discovery", "str", "Dynamo engines: how the deployment's components find each other: C(file) "
          "(all on one host, a shared directory) or the etcd client URL of its dynamo-etcd service "
          "(C(http://spark-01:2379)) when it spans hosts.", default="file", reaches_host=True),
    # One model across hosts (docs/multi-host.md; service/multihost.py expands it into one piece per host).
    Field("hosts", "list", "One model across several hosts: the inventory hosts the service spans, in rank order; the "
          "head (the first, or C(head)) serves the API, the others are workers. Every one of them lists this service "
          "in its C(llm_serving_services) (declare it in group_vars of a group they share); other hosts ignore it "
          "(docs/multi-host.md).", default=[], elements="str", max_len=MAX_NAME_LEN),
    Field("group", "str", "Instead of C(hosts): the inventory group whose hosts the service spans, in inventory "
          "order (its first C(nodes)).", default="", max_len=MAX_NAME_LEN),
    Field("nodes", "int", "With C(group): how many of its hosts the service spans (the first ones).", minimum=1,
          maximum=MAX_NODES, default_text="every host of group"),
    Field("head", "str", "The host of the service's hosts that serves the API (rank 0).", default="",
          max_len=MAX_NAME_LEN, default_text="the first host"),
    Field("tensor_parallel", "int", "Across hosts: tensor-parallel size (SGLang C(--tp-size), vLLM "
          "C(--tensor-parallel-size)); C(tensor_parallel) x C(pipeline_parallel) is a multiple of the number of "
          "hosts.", minimum=1, maximum=1024, default_text="the number of hosts"),
    Field("pipeline_parallel", "int", "Across hosts: pipeline-parallel size (SGLang C(--pp-size), vLLM "
          "C(--pipeline-parallel-size)).", minimum=1, maximum=1024, default=1),
    Field("distributed_backend", "str", "Across hosts: how the engine spans them: " + "; ".join(
          f"{e.name} C({key}) {form.description}" for e in ENGINES.values() for key, form in e.multihost) + ".",
          choices=tuple(dict.fromkeys(key for e in ENGINES.values() for key, _form in e.multihost)),
          default_text="the engine's first"),
    Field("dist_port", "int", "Across hosts: the port of the rendezvous on the head (SGLang C(--dist-init-addr), "
          "vLLM C(--master-port), Ray's head), or of each worker's RPC server (llama.cpp); on the host's network.",
          minimum=1, maximum=65535, default_text="the backend's: " + ", ".join(
              f"{key} {form.dist_port}" for e in ENGINES.values() for key, form in e.multihost)),
)  # fmt: skip

FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
SERVICE_KEYS: tuple[str, ...] = tuple(f.name for f in FIELDS)
REQUIRED_KEYS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)

# Names that were renamed or are easy to guess wrong: key -> what to write instead.
RENAMED_KEYS: dict[str, str] = {
    "mem_fraction_static": "mem_fraction",
    "mem-fraction-static": "mem_fraction",
    "gpus": "gpu",
    "gpu_index": "gpu",
    "device": "gpu",
    "image_tar": "image_archive",
    "args": "extra_args",
    "environment": "env",
    "context_len": "context_length",
    "max_model_len": "context_length",
    "dtype": "model_dtype",
    "params_b": "model_params_b",
    "privileged": "allow_host_access",
}


def engine_flag_keys(engine: Engine) -> dict[str, str]:
    """{flag: service key} for the flags the engine gets from service keys (setting them by hand is refused)."""
    keys = {"mem_fraction": engine.flags.mem_fraction, "context_length": engine.flags.context_length}
    return {flag: key for key, flag in keys.items() if flag}


# --------------------------------------------------------------------------------------------- generation


def _spec_default(f: Field) -> Any:
    return (
        list(f.default)
        if isinstance(f.default, list)
        else dict(f.default)
        if isinstance(f.default, dict)
        else f.default
    )


def argument_spec_options() -> dict[str, dict[str, Any]]:
    """The ``options`` of ``llm_serving_services`` in an argument spec, generated from FIELDS."""
    out: dict[str, dict[str, Any]] = {}
    for f in FIELDS:
        opt: dict[str, Any] = {"type": f.spec_type}
        if f.elements:
            opt["elements"] = f.elements
        if f.required:
            opt["required"] = True
        if f.default is not None:
            opt["default"] = _spec_default(f)
        if f.choices:
            opt["choices"] = list(f.choices)
        text = f.description
        if f.default_text:
            text += f" Default: {f.default_text}."
        opt["description"] = text
        out[f.name] = opt
    return out


def docs_table() -> list[str]:
    """The service table of docs/development.md, generated from FIELDS (Markdown lines)."""

    def _plain(text: str) -> str:
        return re.sub(r"C\(([^)]*)\)", r"`\1`", text).replace("|", "\\|")

    lines = ["| key | type | required | default | description |", "| --- | --- | --- | --- | --- |"]
    for f in FIELDS:
        kind = f"list of {f.elements}" if f.elements else f.kind
        if f.choices:
            kind += ": " + ", ".join(f"`{c}`" for c in f.choices)
        if f.minimum is not None or f.maximum is not None:
            lo = "" if f.minimum is None else f"{f.minimum:g}"
            hi = "" if f.maximum is None else f"{f.maximum:g}"
            kind += f" ({lo}..{hi})"
        default = f.default_text or ("" if f.default in (None, "", [], {}) else f"`{f.default}`")
        lines.append(
            f"| `{f.name}` | {kind} | {'yes' if f.required else ''} | {_plain(default)} | {_plain(f.description)} |"
        )
    return lines


def service_defaults() -> Mapping[str, Any]:
    """Fixed defaults by key (computed defaults, such as the engine's port, are filled by the parser)."""
    return {f.name: _spec_default(f) for f in FIELDS if f.default is not None}


@dataclass
class ParsedServices:
    """The parser's result: normalized services (every key present) and errors naming the path."""

    services: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
