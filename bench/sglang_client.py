#!/usr/bin/env python3
"""Run SGLang's own benchmark client (``sglang.benchmark.serving``) without the SGLang runtime.

sglang 0.5.23's benchmark client imports three symbols from the server runtime, whose modules pull in
torch, ZeroMQ and the CUDA kernels. This runner puts small stand-ins for exactly those three symbols
into ``sys.modules`` (same values and same behaviour as the originals, read from the 0.5.23 wheel:
``sglang/srt/disaggregation/utils.py`` and ``sglang/srt/utils/network.py``), then calls the real
``cli_main()`` with the given arguments. Everything else (dataset, request loop, metrics, the JSON
line it appends to ``--output-file``) is SGLang's code, unchanged.

Run it with the bench venv made by ``bench/setup_sglang_client.sh``::

    .cache/bench-venv/bin/python bench/sglang_client.py --backend sglang-oai-chat \\
        --base-url http://127.0.0.1:8080 --model sparkfleet/tiny-llama --tokenizer .cache/bench-tokenizer \\
        --dataset-name random-ids --num-prompts 64 --max-concurrency 8 \\
        --random-input-len 128 --random-output-len 128 --random-range-ratio 1 --output-file out.jsonl

All arguments go to SGLang's parser (``--help`` prints its help). The Hugging Face hub is switched off
(``HF_HUB_OFFLINE=1``): give ``--tokenizer`` a local directory.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import types

SGLANG_VERSION = "0.5.23"

# sglang/srt/disaggregation/utils.py (0.5.23): the bootstrap host that marks a fake prefill.
FAKE_BOOTSTRAP_HOST = "2.2.2.2"


def _bare_host(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _is_ipv6(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False


def _host_port(host: str, port: int) -> str:
    bare = _bare_host(host)
    return f"[{bare}]:{port}" if _is_ipv6(bare) else f"{bare}:{port}"


def resolve_base_url(base_url: str, host: str, port: int) -> str:
    """sglang.srt.utils.network.resolve_base_url: ``base_url`` if set, else ``http://host:port``."""
    if base_url:
        return base_url
    return f"http://{_host_port(host, port)}"


def resolve_host_port(base_url: str, host: str, port: int) -> str:
    """sglang.srt.utils.network.resolve_host_port: ``base_url`` if set, else ``host:port``."""
    if base_url:
        return base_url
    return _host_port(host, port)


def _package(name: str, search_path: list[str], **attrs: object) -> types.ModuleType:
    """A module object registered in place of ``name``, skipping its ``__init__.py``.

    It keeps the real package's search path, so submodules that are not stubbed still import from
    the wheel exactly as before.
    """
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    mod.__path__ = search_path
    return mod


def install_stubs() -> None:
    """Put the three runtime symbols (and their parent packages) into ``sys.modules``.

    ``import sglang`` would run ``sglang/__init__.py``, which imports the runtime (torch); the
    packages on the way to the stubbed modules are registered with their real search paths
    instead, so ``sglang.benchmark`` loads from the wheel unchanged.
    """
    import importlib.util

    spec = importlib.util.find_spec("sglang")
    if spec is None or not spec.submodule_search_locations:
        sys.exit(
            f"sglang_client: sglang is not installed in {sys.prefix}: run bench/setup_sglang_client.sh "
            "and use .cache/bench-venv/bin/python"
        )
    root = list(spec.submodule_search_locations)

    def below(*parts: str) -> list[str]:
        return [os.path.join(r, *parts) for r in root]

    stubs = {
        "sglang": _package("sglang", root),
        "sglang.srt": _package("sglang.srt", below("srt")),
        "sglang.srt.disaggregation": _package("sglang.srt.disaggregation", below("srt", "disaggregation")),
        "sglang.srt.disaggregation.utils": _package(
            "sglang.srt.disaggregation.utils", [], FAKE_BOOTSTRAP_HOST=FAKE_BOOTSTRAP_HOST
        ),
        "sglang.srt.utils": _package("sglang.srt.utils", below("srt", "utils")),
        "sglang.srt.utils.network": _package(
            "sglang.srt.utils.network",
            [],
            resolve_base_url=resolve_base_url,
            resolve_host_port=resolve_host_port,
        ),
    }
    for name, mod in stubs.items():
        sys.modules.setdefault(name, mod)


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    install_stubs()
    from importlib.metadata import version

    found = version("sglang")
    if found != SGLANG_VERSION:
        print(
            f"sglang_client: warning: sglang {found} installed, the stubs were written for {SGLANG_VERSION}",
            file=sys.stderr,
        )
    from sglang.benchmark import serving  # type: ignore[import-not-found]  # only in .cache/bench-venv

    sys.argv = [f"{sys.argv[0]} (sglang.benchmark.serving {found})", *(sys.argv[1:] if argv is None else argv)]
    serving.cli_main()


if __name__ == "__main__":
    main()
