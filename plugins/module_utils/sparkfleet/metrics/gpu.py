"""GPU metrics in Prometheus's text format, for node exporter's textfile directory.

Standalone on purpose: the metrics role copies this file to each GPU host and a systemd timer runs it
(``python3 gpu.py --textfile-dir DIR``); it needs only the standard library and ``nvidia-smi``.

    python3 gpu.py                       print the metrics
    python3 gpu.py --textfile-dir DIR    write DIR/sparkfleet_gpu.prom atomically (what the timer does)
    python3 gpu.py --raw                 print nvidia-smi's CSV and /proc/meminfo as captured (a fixture)

It reads ``nvidia-smi --query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits`` (one line per GPU; fields a GPU
cannot report print ``[N/A]`` or ``[Not Supported]`` and are left out, never read as 0) and ``/proc/meminfo``. On a
GPU whose framebuffer fields are not supported (GB10, DGX Spark: the GPU shares the host's unified memory) the
memory series come from ``/proc/meminfo`` (``MemTotal``; used = ``MemTotal - MemAvailable``), labelled
``source="meminfo"``, so one alert reads both kinds of GPU. DCGM exporter, where it runs, gives the same readings
under its own names; the alerts read either (metrics/rules.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence

QUERY_FIELDS = (
    "index",
    "uuid",
    "name",
    "temperature.gpu",
    "power.draw",
    "utilization.gpu",
    "memory.total",
    "memory.used",
    "clocks.sm",
)
TEXTFILE = "sparkfleet_gpu.prom"
MIB = 1024 * 1024
_MISSING = ("", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]", "[gpu is lost]")

# name -> (type, help); the order they are written in.
METRICS: dict[str, tuple[str, str]] = {
    "sparkfleet_gpu_info": ("gauge", "A GPU nvidia-smi lists (labels: name, uuid)."),
    "sparkfleet_gpu_temperature_celsius": ("gauge", "GPU core temperature."),
    "sparkfleet_gpu_power_watts": ("gauge", "GPU power draw."),
    "sparkfleet_gpu_utilization_ratio": ("gauge", "Share of time a kernel ran on the GPU (0..1)."),
    "sparkfleet_gpu_sm_clock_hertz": ("gauge", "SM clock."),
    "sparkfleet_gpu_memory_total_bytes": ("gauge", "GPU memory (source=meminfo: the unified memory of the host)."),
    "sparkfleet_gpu_memory_used_bytes": ("gauge", "GPU memory in use (source=meminfo: MemTotal - MemAvailable)."),
    "sparkfleet_gpu_collector_success": ("gauge", "1 when nvidia-smi answered, 0 when it did not."),
    "sparkfleet_gpu_collector_timestamp_seconds": ("gauge", "When this file was written (Unix time)."),
}


def _value(text: str) -> float | None:
    text = text.strip()
    if text.lower() in _MISSING:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def parse_query_csv(text: str, fields: Sequence[str] = QUERY_FIELDS) -> list[dict[str, str]]:
    """``--format=csv,noheader,nounits`` -> one dict per GPU (a GPU name has no comma)."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(fields):
            raise ValueError(f"expected {len(fields)} fields, got {len(cells)}: {line!r}")
        rows.append(dict(zip(fields, cells, strict=True)))
    return rows


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo -> {field: bytes}."""
    out = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if sep and parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def samples(
    rows: Sequence[Mapping[str, str]], meminfo: Mapping[str, int] | None
) -> list[tuple[str, dict[str, str], float]]:
    """The (metric, labels, value) of every GPU."""
    out: list[tuple[str, dict[str, str], float]] = []
    for row in rows:
        gpu = {"gpu": row.get("index", "")}
        out.append(("sparkfleet_gpu_info", {**gpu, "name": row.get("name", ""), "uuid": row.get("uuid", "")}, 1.0))
        for field, metric, scale in (
            ("temperature.gpu", "sparkfleet_gpu_temperature_celsius", 1.0),
            ("power.draw", "sparkfleet_gpu_power_watts", 1.0),
            ("utilization.gpu", "sparkfleet_gpu_utilization_ratio", 0.01),
            ("clocks.sm", "sparkfleet_gpu_sm_clock_hertz", 1e6),
        ):
            value = _value(row.get(field, ""))
            if value is not None:
                out.append((metric, gpu, round(value * scale, 6)))
        total, used = _value(row.get("memory.total", "")), _value(row.get("memory.used", ""))
        if total is not None and used is not None:
            out.append(("sparkfleet_gpu_memory_total_bytes", {**gpu, "source": "nvml"}, total * MIB))
            out.append(("sparkfleet_gpu_memory_used_bytes", {**gpu, "source": "nvml"}, used * MIB))
        elif meminfo and "MemTotal" in meminfo and "MemAvailable" in meminfo:
            # Unified memory (GB10): the framebuffer fields are not supported; the pool is the host's memory.
            mem_total = float(meminfo["MemTotal"])
            out.append(("sparkfleet_gpu_memory_total_bytes", {**gpu, "source": "meminfo"}, mem_total))
            out.append(
                ("sparkfleet_gpu_memory_used_bytes", {**gpu, "source": "meminfo"}, mem_total - meminfo["MemAvailable"])
            )
    return out


def exposition(all_samples: Sequence[tuple[str, Mapping[str, str], float]], success: bool, now: float) -> str:
    """Prometheus's text format: HELP and TYPE once per metric, then its samples."""
    full = [*all_samples, ("sparkfleet_gpu_collector_success", {}, 1.0 if success else 0.0)]
    full.append(("sparkfleet_gpu_collector_timestamp_seconds", {}, float(int(now))))
    lines: list[str] = []
    for metric, (kind, text) in METRICS.items():
        mine = [s for s in full if s[0] == metric]
        if not mine:
            continue
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
        for _name, labels, value in mine:
            label_text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
            lines.append(f"{metric}{{{label_text}}} {_fmt(value)}" if label_text else f"{metric} {_fmt(value)}")
    return "\n".join(lines) + "\n"


def run_smi(smi: str = "nvidia-smi") -> tuple[bool, str]:
    """(answered, CSV) of nvidia-smi's query."""
    try:
        proc = subprocess.run(
            [smi, f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False, ""
    return proc.returncode == 0, proc.stdout


def collect(smi: Callable[[], tuple[bool, str]], read_meminfo: Callable[[], str], now: float) -> str:
    """One scrape's text: every GPU nvidia-smi lists, or only the collector's failure."""
    ok, csv_text = smi()
    rows: list[dict[str, str]] = []
    if ok:
        try:
            rows = parse_query_csv(csv_text)
        except ValueError:
            ok = False
    try:
        meminfo = parse_meminfo(read_meminfo())
    except OSError:
        meminfo = {}
    return exposition(samples(rows, meminfo) if ok else [], ok, now)


def write_textfile(directory: str, text: str) -> str:
    """Write atomically (node exporter never reads half a file)."""
    fd, tmp = tempfile.mkstemp(prefix=".sparkfleet_gpu.", dir=directory)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    path = os.path.join(directory, TEXTFILE)
    os.replace(tmp, path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GPU metrics for node exporter's textfile directory")
    parser.add_argument("--textfile-dir", default="", help="write DIR/sparkfleet_gpu.prom instead of printing")
    parser.add_argument("--nvidia-smi", default="nvidia-smi", help="the nvidia-smi to run")
    parser.add_argument("--meminfo", default="/proc/meminfo")
    parser.add_argument("--raw", action="store_true", help="print what was read, for a fixture")
    args = parser.parse_args(argv)

    def read_meminfo() -> str:
        with open(args.meminfo, encoding="utf-8") as handle:
            return handle.read()

    if args.raw:
        ok, csv_text = run_smi(args.nvidia_smi)
        sys.stdout.write(f"# nvidia-smi --query-gpu={','.join(QUERY_FIELDS)} (answered: {ok})\n{csv_text}")
        sys.stdout.write("# /proc/meminfo\n" + read_meminfo())
        return 0 if ok else 1
    text = collect(lambda: run_smi(args.nvidia_smi), read_meminfo, time.time())
    if args.textfile_dir:
        write_textfile(args.textfile_dir, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
