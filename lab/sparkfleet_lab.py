#!/usr/bin/env python3
"""Build and run sparkfleet's test lab: containers that behave like lab hosts.

Each lab host is a container running systemd as PID 1, sshd, and its own Docker
engine (so inference services run as real containers under real systemd units).
Images are built with no registry: debootstrap a Debian root filesystem, then
`docker import`, then a Dockerfile on top.

    sparkfleet_lab.py check                     what this machine's engine allows
    sparkfleet_lab.py images                    build (or reuse) every lab image
    sparkfleet_lab.py up   [--inventory DIR]    start the hosts of an inventory
    sparkfleet_lab.py down [--inventory DIR]    remove them and their network
    sparkfleet_lab.py status [--inventory DIR]

Every failure prints one line saying what is missing and how to fix it, and a
failed `up` removes what it created.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "lab"
STATE = LAB / ".state"
CACHE = Path(os.environ.get("SPARKFLEET_CACHE", Path.home() / ".cache" / "sparkfleet"))
MIRROR = os.environ.get("SPARKFLEET_DEBIAN_MIRROR", "http://deb.debian.org/debian")
LABEL = "org.sparkfleet.lab"

HOST_IMAGE = "sparkfleet-lab/host:bookworm"
STANDIN_IMAGE = "sparkfleet-lab/llm-standin:llama.cpp"
STANDIN_ARCHIVE = STATE / "images" / "llm-standin.tar"
WHEELHOUSE = STATE / "wheelhouse"
GATEWAY_WHEELHOUSE = STATE / "wheelhouse-gateway"
METRICS_DEBS = STATE / "debs-metrics"

HOST_PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "python3-venv",
    "python3-pip",
    "sudo",
    "ca-certificates",
    "iproute2",
    "iputils-ping",
    "curl",
    "procps",
    "docker.io",
    "less",
    "gnupg",
]
# llama.cpp-tools-extra: the RPC server (ggml-rpc-server, /usr/libexec/<triplet>/llama/bin/) of the workers of a
# service across hosts; libggml0-backend-rpc: the head's RPC backend (without it --rpc says "RPC not supported in
# this build"); docs/multi-host.md, molecule/multihost.
STANDIN_PACKAGES = [
    "llama.cpp-tools",
    "llama.cpp-tools-extra",
    "libggml0-backend-rpc",
    "ca-certificates",
    "curl",
]

# Everything --privileged would give, less CAP_SYS_RESOURCE, which this machine's engine
# cannot grant (see docs/testing.md). systemd and a nested Docker engine run with these.
CAPABILITIES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
]


class LabError(Exception):
    """A problem the user can fix; printed as one line."""


def log(msg: str) -> None:
    print(f"[lab] {msg}", flush=True)


def run(
    cmd: list[str], *, check: bool = True, capture: bool = False, stdin: Any = None, quiet: bool = False
) -> subprocess.CompletedProcess[str]:
    if not quiet:
        log("$ " + " ".join(cmd))
    return subprocess.run(
        cmd,
        check=check,
        text=True,
        stdin=stdin,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
    )


def docker(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["docker", *args], check=check, capture=capture, quiet=True)


# --------------------------------------------------------------------------- checks


def require_docker() -> None:
    if shutil.which("docker") is None:
        raise LabError("docker CLI not found: install Docker Engine (apt-get install docker.io) and retry")
    res = docker("info", "--format", "{{json .}}", check=False)
    if res.returncode != 0:
        raise LabError(
            "the Docker engine does not answer (`docker info` failed): start it "
            "(systemctl start docker) or fix DOCKER_HOST, then retry"
        )


def require_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("debootstrap missing: installing it from Debian's archive")
        run(["apt-get", "update", "-qq"], check=False)
        if run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=False).returncode == 0:
            return
    raise LabError(
        "debootstrap not found: run `sudo apt-get install debootstrap` (the lab builds its "
        "images from Debian's archive, no registry needed)"
    )


def engine_report() -> dict[str, Any]:
    """Find out what this engine allows; used by `check` and recorded in docs/testing.md."""
    require_docker()
    info = json.loads(docker("info", "--format", "{{json .}}").stdout)
    out: dict[str, Any] = {
        "server_version": info.get("ServerVersion"),
        "storage_driver": info.get("Driver"),
        "cgroup_version": info.get("CgroupVersion"),
        "cgroup_driver": info.get("CgroupDriver"),
    }
    base = HOST_IMAGE if image_exists(HOST_IMAGE) else None
    if base is None:
        out["note"] = "build the images first (make images) to probe privileged/systemd/nested docker"
        return out
    probe = docker("run", "--rm", "--privileged", "--entrypoint", "true", base, check=False)
    out["privileged"] = probe.returncode == 0 or probe.stderr.strip().splitlines()[-1:]
    probe = docker("run", "--rm", *host_security_args(), "--entrypoint", "true", base, check=False)
    out["capability_set"] = probe.returncode == 0
    return out


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def image_label(ref: str, key: str) -> str | None:
    res = docker("image", "inspect", "--format", "{{json .Config.Labels}}", ref, check=False)
    if res.returncode != 0:
        return None
    labels = json.loads(res.stdout or "null") or {}
    value = labels.get(key)
    return str(value) if value is not None else None


# --------------------------------------------------------------------------- images


def _digest(*parts: str | Path) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.read_bytes() if isinstance(part, Path) else part.encode())
    return h.hexdigest()[:16]


def rootfs_path(name: str, suite: str, packages: list[str]) -> Path:
    """Where rootfs_tarball keeps this root filesystem (its name is the key: suite, mirror, packages)."""
    return CACHE / f"rootfs-{name}-{_digest(suite, MIRROR, ','.join(packages))}.tar"


def rootfs_tarball(name: str, suite: str, packages: list[str]) -> Path:
    """debootstrap a minimal Debian into a cached tarball (reused until the package list changes)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tar = rootfs_path(name, suite, packages)
    if tar.exists():
        log(f"rootfs {name}: cached {tar}")
        return tar
    require_debootstrap()
    with tempfile.TemporaryDirectory(prefix=f"sparkfleet-{name}-", dir=CACHE) as tmp:
        target = Path(tmp) / "root"
        log(f"rootfs {name}: debootstrap {suite} from {MIRROR} (about a minute)")
        res = run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(target), MIRROR],
            check=False,
            capture=True,
        )
        if res.returncode != 0:
            tail = (res.stdout + res.stderr).strip().splitlines()[-3:]
            raise LabError(
                f"debootstrap {suite} failed ({' | '.join(tail)}): check that {MIRROR} is "
                "reachable or set SPARKFLEET_DEBIAN_MIRROR to a Debian mirror you can reach"
            )
        # Shrink: apt lists, docs and caches are not needed in a test image.
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
            p = target / sub
            if p.exists():
                shutil.rmtree(p, ignore_errors=True)
                p.mkdir(parents=True, exist_ok=True)
        partial = tar.with_suffix(".partial")
        run(["tar", "-C", str(target), "-cf", str(partial), "."])
        partial.rename(tar)
    return tar


def import_rootfs(tar: Path, ref: str) -> None:
    key = tar.stem.rsplit("-", 1)[-1]
    if image_label(ref, f"{LABEL}.rootfs") == key:
        return
    log(f"docker import {tar.name} -> {ref}")
    with tar.open("rb") as fh:
        res = subprocess.run(
            ["docker", "import", "--change", f"LABEL {LABEL}.rootfs={key}", "-", ref],
            stdin=fh,
            capture_output=True,
            check=False,
        )
    if res.returncode != 0:
        raise LabError(f"docker import failed: {res.stderr.decode(errors='replace').strip()}")


def build_image(ref: str, context: Path, base: str, key: str) -> bool:
    if image_label(ref, f"{LABEL}.build") == key:
        log(f"image {ref}: up to date")
        return False
    log(f"docker build {ref}")
    res = run(
        [
            "docker",
            "build",
            "-q",
            "--build-arg",
            f"BASE={base}",
            "--label",
            f"{LABEL}.build={key}",
            "-t",
            ref,
            str(context),
        ],
        check=False,
        capture=True,
    )
    if res.returncode != 0:
        raise LabError(f"docker build {ref} failed: {res.stderr.strip().splitlines()[-1:]}")
    return True


def build_images() -> None:
    require_docker()
    host_tar = rootfs_tarball("bookworm-host", "bookworm", HOST_PACKAGES)
    import_rootfs(host_tar, "sparkfleet-lab/rootfs:bookworm")
    host_ctx = LAB / "images" / "host"
    build_image(
        HOST_IMAGE,
        host_ctx,
        "sparkfleet-lab/rootfs:bookworm",
        _digest(host_tar.name, *sorted(p for p in host_ctx.rglob("*") if p.is_file())),
    )

    # The inference stand-in: llama.cpp's server from Debian (sid carries it), serving a tiny
    # Llama-architecture model written here. It stands in for SGLang/NIM images, which cannot be pulled.
    sid_tar = rootfs_tarball("sid-llamacpp", "sid", STANDIN_PACKAGES)
    import_rootfs(sid_tar, "sparkfleet-lab/rootfs:sid-llamacpp")
    ctx = LAB / "images" / "standin"
    model_script = LAB / "standin" / "make_tiny_model.py"
    key = _digest(sid_tar.name, model_script, *sorted(p for p in ctx.rglob("*") if p.is_file()))
    if image_label(STANDIN_IMAGE, f"{LABEL}.build") != key:
        with tempfile.TemporaryDirectory(prefix="sparkfleet-standin-") as tmp:
            build_ctx = Path(tmp)
            shutil.copytree(ctx, build_ctx, dirs_exist_ok=True)
            run([sys.executable, str(model_script), str(build_ctx / "tiny-llama.gguf")])
            build_image(STANDIN_IMAGE, build_ctx, "sparkfleet-lab/rootfs:sid-llamacpp", key)
    else:
        log(f"image {STANDIN_IMAGE}: up to date")
    STANDIN_ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    stamp = STANDIN_ARCHIVE.with_suffix(".key")
    if not STANDIN_ARCHIVE.exists() or not stamp.exists() or stamp.read_text() != key:
        log(f"docker save {STANDIN_IMAGE} -> {STANDIN_ARCHIVE.relative_to(ROOT)} (image-archive delivery)")
        partial = STANDIN_ARCHIVE.with_suffix(".partial")
        run(["docker", "save", "-o", str(partial), STANDIN_IMAGE])
        partial.rename(STANDIN_ARCHIVE)
        stamp.write_text(key)
    build_wheelhouse()
    build_wheelhouse(GATEWAY_WHEELHOUSE, "llm_gateway", "llm_gateway_packages")
    build_metrics_debs()
    # NVIDIA Dynamo's frontend and CPU mocker (molecule/dynamo): built once, then reused while its key holds.
    build_dynamo()
    log("images ready")


def build_dynamo() -> None:
    """lab/dynamo_standin.py, run as a module from the repository (it imports this file as lab.sparkfleet_lab)."""
    res = subprocess.run([sys.executable, "-m", "lab.dynamo_standin"], cwd=ROOT, check=False)
    if res.returncode != 0:
        raise LabError("building the Dynamo stand-in failed (its message is above): python -m lab.dynamo_standin")


def build_metrics_debs(dest: Path = METRICS_DEBS) -> None:
    """The metrics role's .deb files (Prometheus, node exporter and what a lab host lacks of their dependencies),
    so lab hosts install them air-gapped (roles/metrics, metrics_deb_dir). Reused while the package list holds."""
    defaults = yaml.safe_load((ROOT / "roles" / "metrics" / "defaults" / "main.yml").read_text())
    packages = list(defaults["metrics_prometheus_packages"]) + list(defaults["metrics_node_exporter_packages"])
    # lab/debs.py run as a module from the repository, as the Dynamo stand-in is: this file also runs as a script
    # (python lab/sparkfleet_lab.py), where the package lab is not importable.
    res = subprocess.run([sys.executable, "-m", "lab.debs", "fetch", str(dest), *packages], cwd=ROOT, check=False)
    if res.returncode != 0:
        raise LabError(f"the metrics .deb files (its message is above): python -m lab.debs fetch {dest} ...")
    names = sorted(p.name for p in dest.glob("*.deb"))
    log(f"debs {dest.relative_to(ROOT)}: {len(names)} packages for {' '.join(packages)}")


def build_wheelhouse(
    wheelhouse: Path = WHEELHOUSE, role: str = "bench_venv", variable: str = "bench_venv_packages"
) -> None:
    """Wheels for a role's venv (the role's pinned default packages), so lab hosts install it air-gapped
    (--no-index --find-links). The bench venv and the gateway each get their own: hosts copy only what they use."""
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    packages = list(defaults.get(variable) or [])
    key = _digest(",".join(packages))
    stamp = wheelhouse / ".key"
    if stamp.exists() and stamp.read_text() == key:
        log(f"wheelhouse {wheelhouse.relative_to(ROOT)}: up to date")
        return
    shutil.rmtree(wheelhouse, ignore_errors=True)
    wheelhouse.mkdir(parents=True)
    log(f"wheelhouse {wheelhouse.name}: pip download {' '.join(packages)} (the lab hosts' Python 3.11, x86_64)")
    res = run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "manylinux2014_x86_64",
            "--platform",
            "any",
            "-d",
            str(wheelhouse),
            *packages,
        ],
        check=False,
        capture=True,
    )
    if res.returncode != 0:
        raise LabError(
            f"pip download for the lab wheelhouse failed: {res.stderr.strip().splitlines()[-1:]}; "
            "check that PyPI (or PIP_INDEX_URL) is reachable"
        )
    stamp.write_text(key)


# --------------------------------------------------------------------------- hosts


def host_security_args() -> list[str]:
    args = []
    for cap in CAPABILITIES:
        args += ["--cap-add", cap]
    return [
        *args,
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--cgroupns=host",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/run/lock",
        "--tmpfs",
        "/tmp",
    ]


def _walk_hosts(node: dict[str, Any], out: dict[str, str]) -> None:
    for name, hvars in (node.get("hosts") or {}).items():
        if hvars and hvars.get("ansible_host"):
            out[name] = hvars["ansible_host"]
    for child in (node.get("children") or {}).values():
        _walk_hosts(child or {}, out)


def load_lab(inventory: Path) -> dict[str, Any]:
    spec_file = inventory / "lab.yml"
    if not spec_file.exists():
        raise LabError(f"{spec_file} not found: a lab inventory needs lab.yml (network, subnet, image)")
    spec = yaml.safe_load(spec_file.read_text())
    hosts: dict[str, str] = {}
    inv = yaml.safe_load((inventory / "hosts.yml").read_text())
    _walk_hosts(inv.get("all", inv), hosts)
    if not hosts:
        raise LabError(f"{inventory}/hosts.yml lists no host with ansible_host")
    spec["hosts"] = hosts
    spec["name"] = spec.get("name", spec["network"])
    return dict(spec)


def container_name(spec: dict[str, Any], host: str) -> str:
    return f"{spec['name']}-{host}"


def ensure_key() -> Path:
    STATE.mkdir(parents=True, exist_ok=True)
    key = STATE / "id_ed25519"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sparkfleet-lab", "-f", str(key)])
    key.chmod(0o600)
    return key


def wait_for(what: str, probe: Any, timeout: float, every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(every)
    raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")


def ssh_open(ip: str) -> bool:
    try:
        with socket.create_connection((ip, 22), timeout=1) as s:
            return s.recv(4).startswith(b"SSH")
    except OSError:
        return False


def lab_up(inventory: Path) -> None:
    require_docker()
    spec = load_lab(inventory)
    if not image_exists(spec["image"]):
        raise LabError(f"image {spec['image']} not found: run `make images` first")
    key = ensure_key()
    created: list[str] = []
    net_created = False
    try:
        if docker("network", "inspect", spec["network"], check=False).returncode != 0:
            res = docker(
                "network",
                "create",
                "--label",
                f"{LABEL}={spec['name']}",
                "--subnet",
                spec["subnet"],
                spec["network"],
                check=False,
            )
            if res.returncode != 0:
                raise LabError(
                    f"cannot create network {spec['network']} ({spec['subnet']}): "
                    f"{res.stderr.strip()}; change subnet in {inventory}/lab.yml"
                )
            net_created = True
        for host, ip in spec["hosts"].items():
            name = container_name(spec, host)
            state = docker("inspect", "--format", "{{.State.Running}}", name, check=False)
            if state.returncode == 0 and state.stdout.strip() == "true":
                log(f"{host}: already running ({name})")
                continue
            if state.returncode == 0:
                docker("rm", "-f", "-v", name)
            log(f"{host}: starting {name} at {ip}")
            res = docker(
                "run",
                "-d",
                "--name",
                name,
                "--hostname",
                host,
                "--network",
                spec["network"],
                "--ip",
                ip,
                "--label",
                f"{LABEL}={spec['name']}",
                *host_security_args(),
                "-v",
                "/var/lib/docker",
                "-v",
                f"{key}.pub:/home/sparkadmin/.ssh/authorized_keys:ro",
                spec["image"],
                check=False,
            )
            if res.returncode != 0:
                raise LabError(f"{host}: docker run failed: {res.stderr.strip()}")
            created.append(name)
        for host, ip in spec["hosts"].items():
            name = container_name(spec, host)

            def booted(n: str = name) -> bool:
                r = docker("exec", n, "systemctl", "is-system-running", check=False)
                return r.stdout.strip() in ("running", "degraded")

            wait_for(f"systemd in {host}", booted, 90)
            wait_for(f"sshd on {host} ({ip})", lambda i=ip: ssh_open(i), 60)
            log(f"{host}: systemd running, sshd answering on {ip}")
    except BaseException:
        for name in created:
            docker("rm", "-f", "-v", name, check=False)
        if net_created:
            docker("network", "rm", spec["network"], check=False)
        log("lab start failed: removed what this run created")
        raise
    log(f"lab {spec['name']} up: {len(spec['hosts'])} hosts")


def lab_down(inventory: Path) -> None:
    require_docker()
    spec = load_lab(inventory)
    res = docker("ps", "-aq", "--filter", f"label={LABEL}={spec['name']}")
    ids = res.stdout.split()
    if ids:
        docker("rm", "-f", "-v", *ids)
    if docker("network", "inspect", spec["network"], check=False).returncode == 0:
        docker("network", "rm", spec["network"], check=False)
    log(f"lab {spec['name']} down ({len(ids)} containers removed)")


def lab_status(inventory: Path) -> None:
    require_docker()
    spec = load_lab(inventory)
    for host, ip in spec["hosts"].items():
        st = docker("inspect", "--format", "{{.State.Status}}", container_name(spec, host), check=False)
        print(f"{host:14} {ip:16} {st.stdout.strip() or 'absent'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["check", "images", "up", "down", "status"])
    ap.add_argument("--inventory", type=Path, default=ROOT / "inventories" / "demo")
    a = ap.parse_args(argv)
    try:
        if a.command == "check":
            print(json.dumps(engine_report(), indent=2))
        elif a.command == "images":
            build_images()
        elif a.command == "up":
            lab_up(a.inventory)
        elif a.command == "down":
            lab_down(a.inventory)
        else:
            lab_status(a.inventory)
    except LabError as exc:
        print(f"sparkfleet lab: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"sparkfleet lab: command failed: {' '.join(exc.cmd)} (exit {exc.returncode})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
