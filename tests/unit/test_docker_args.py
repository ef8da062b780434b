"""docker_args, read as docker's CLI reads them and checked against one table of every docker run option
(service/docker_args.py): every spelling a hostile review found, refused and accepted; the table is complete
(each option has a class, each checked option its check, docs/serving.md lists them); and through the real parser
and renderer, nothing refused reaches a unit."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service import docker_args as da
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.render import Settings, render_plan

from tests.conftest import ROOT
from tests.unit.service_helpers import NO_GPU, PROFILES, SGLANG_SERVICE, SPARK_GPU, make_plan

SERVING_DOC = ROOT / "docs" / "serving.md"
UPDATE_DOCS = os.environ.get("SPARKFLEET_UPDATE_DOCS") == "1"
OK: dict[str, Any] = SGLANG_SERVICE
P = "llm_serving_services[0] (sg).docker_args"
HOST_FIX = "Fix: remove it, or set allow_host_access: true on this service"


def _texts(args: list[str], **kw: Any) -> str:
    return "\n".join(p.text for p in da.check_docker_args(args, **kw))


# (id, docker_args, text the problem must contain). Each needs allow_host_access (a HOST finding).
NEEDS_HOST_ACCESS: list[tuple[str, list[str], str]] = [
    # mounts, in every spelling docker accepts
    ("v-attached", ["-v/:/h"], "mounts the host's / into the container with -v (the whole system)"),
    ("v-equals", ["-v=/:/h"], "mounts the host's / into"),
    ("v-clustered", ["-itv", "/:/x"], "mounts the host's / into the container with -v"),
    ("v-clustered-attached", ["-itv/:/x"], "mounts the host's / into"),
    ("v-clustered-equals", ["-tv=/etc:/x"], "mounts the host's /etc into"),
    ("volume-equals", ["--volume=/etc:/etc:ro"], "mounts the host's /etc into the container with --volume (a system"),
    ("volume-space", ["--volume", "/etc:/etc"], "mounts the host's /etc into"),
    ("dotdot", ["-v", "/home/../etc:/x"], "mounts the host's /etc (written '/home/../etc') into"),
    ("double-slash", ["-v", "//etc:/x"], "mounts the host's /etc (written '//etc') into"),
    ("trailing-slash", ["-v", "/etc/:/x"], "mounts the host's /etc (written '/etc/') into"),
    ("dot", ["-v", "/./etc/./:/x"], "mounts the host's /etc (written"),
    ("root-dotdot", ["-v", "/..:/x"], "mounts the host's / (written '/..') into"),
    ("file-under-etc", ["-v", "/etc/shadow:/s:ro"], "mounts the host's /etc/shadow into the container with -v (under"
     " /etc, a system directory)"),
    ("under-docker-state", ["-v", "/var/lib/docker/x:/x"], "mounts the host's /var/lib/docker/x into"),
    ("docker-state", ["-v", "/var/lib/docker:/x"], "under /var, a system directory"),
    ("var", ["-v", "/var:/x"], "mounts the host's /var into the container with -v (a system directory)"),
    ("docker-socket", ["-v", "/var/run/docker.sock:/s"], "mounts the host's /var/run/docker.sock into"),
    ("docker-socket-run", ["-v", "/run/docker.sock:/s"], "mounts the host's /run/docker.sock into"),
    ("docker-socket-dotdot", ["-v", "/var/run/../run/docker.sock:/s"],
     "mounts the host's /var/run/docker.sock (written '/var/run/../run/docker.sock')"),
    ("containerd-socket", ["-v", "/run/containerd/containerd.sock:/s"], "under /run, a system directory"),
    ("dev", ["-v", "/dev:/dev"], "mounts the host's /dev into"),
    ("proc", ["-v", "/proc/1/root:/x"], "under /proc"),
    ("usr", ["-v", "/usr/local/bin:/x"], "under /usr"),
    ("root-home", ["-v", "/root/.ssh:/x"], "under /root"),
    ("boot", ["-v", "/boot:/b"], "/boot"),
    ("sys", ["-v", "/sys/fs/cgroup:/c"], "under /sys"),
    ("env-dir", ["-v", "/etc/sparkfleet/serving:/x"], "under /etc/sparkfleet, sparkfleet's own state: every "
     "service's 0600 env file"),
    ("sparkfleet-etc", ["-v", "/etc/sparkfleet:/x"], "mounts the host's /etc/sparkfleet into the container with -v "
     "(sparkfleet's own state"),
    ("lkg", ["-v", "/var/lib/sparkfleet/lkg:/x"], "under /var/lib/sparkfleet, sparkfleet's own state: the "
     "last-known-good"),
    ("hf-cache", ["-v", "/var/lib/sparkfleet/huggingface:/root/.cache/huggingface"], "under /var/lib/sparkfleet"),
    ("opt-holds-sparkfleet", ["-v", "/opt:/o"], "mounts the host's /opt into the container with -v (it holds "
     "/opt/sparkfleet"),
    ("opt-sparkfleet-venv", ["-v", "/opt/sparkfleet/venv:/v"], "under /opt/sparkfleet"),
    ("v-shared-propagation", ["-v", "/data:/d:rshared"], "rshared propagation lets mounts made in the container"),
    ("v-selinux-relabel", ["-v", "/data:/d:Z"], ":Z relabels the host directory"),
    ("mount-src", ["--mount", "type=bind,src=/var/run/docker.sock,dst=/s"], "mounts the host's /var/run/docker.sock"),
    ("mount-source", ["--mount", "type=bind,source=/,target=/h"], "mounts the host's / into the container with "
     "--mount"),
    ("mount-equals", ["--mount=type=bind,source=/etc,target=/h"], "mounts the host's /etc into"),
    ("mount-upper-case-keys", ["--mount", "Type=Bind,Source=/etc,Target=/h"], "mounts the host's /etc into"),
    ("mount-quoted-csv", ["--mount", 'type=bind,"source=/etc",target=/x'], "mounts the host's /etc into"),
    ("mount-last-source-wins", ["--mount", "type=bind,src=/data,src=/etc,dst=/x"], "mounts the host's /etc into"),
    ("mount-dotdot", ["--mount", "type=bind,src=/srv/../etc/,dst=/x"], "mounts the host's /etc (written"),
    ("mount-default-type-path", ["--mount", "source=/etc,target=/x"], "mounts the host's /etc into"),
    ("mount-volume-opt-device", ["--mount", "type=volume,src=v,dst=/x,volume-opt=type=none,volume-opt=o=bind,"
     "volume-opt=device=/etc"], "a volume driver or volume option can mount any host path"),
    ("mount-volume-driver", ["--mount", "type=volume,src=v,dst=/x,volume-driver=sshfs"], "a volume driver"),
    ("mount-npipe", ["--mount", "type=npipe,src=x,dst=/x"], "type npipe is not a bind, volume, tmpfs or image"),
    ("mount-shared", ["--mount", "type=bind,src=/data,dst=/d,bind-propagation=rshared"], "shared propagation"),
    ("volumes-from", ["--volumes-from", "sparkfleet-other"], "has --volumes-from sparkfleet-other, which mounts "
     "another container's volumes"),
    ("volume-driver", ["--volume-driver", "local"], "chooses a volume driver"),
    ("env-file-other-service", ["--env-file", "/etc/sparkfleet/serving/other.env"],
     "reads the host's /etc/sparkfleet/serving/other.env as an env file with --env-file (under /etc/sparkfleet"),
    ("env-file-dotdot", ["--env-file=/srv/../etc/sparkfleet/secrets.env"], "reads the host's "
     "/etc/sparkfleet/secrets.env (written"),
    ("env-file-etc", ["--env-file", "/etc/environment"], "under /etc, a system directory"),
    # devices and privilege
    ("privileged", ["--privileged"], "has --privileged, which gives the container every capability and device. "
     + HOST_FIX),
    ("privileged-true", ["--privileged=true"], "has --privileged, which gives"),
    ("device", ["--device", "/dev/nvme0n1"], "has --device /dev/nvme0n1, which gives the container a host device"),
    ("device-equals", ["--device=/dev/mem"], "has --device /dev/mem"),
    ("device-cgroup-rule", ["--device-cgroup-rule", "b 259:* rwm"], "lets the container use host devices"),
    ("cap-add-all", ["--cap-add", "ALL"], "has --cap-add ALL, which adds every capability"),
    ("cap-add-all-lower", ["--cap-add=all"], "adds every capability"),
    ("cap-add-sys-admin", ["--cap-add", "SYS_ADMIN"], "adds capability SYS_ADMIN, beyond the profile's (none)"),
    ("cap-add-prefixed", ["--cap-add", "CAP_SYS_PTRACE"], "adds capability CAP_SYS_PTRACE"),
    ("cap-add-list", ["--cap-add", "SYS_NICE,NET_ADMIN"], "adds capability SYS_NICE,NET_ADMIN"),
    # namespaces
    ("pid-host", ["--pid", "host"], "has --pid host, which shares the host's namespace with the container"),
    ("pid-host-equals", ["--pid=host"], "has --pid host"),
    ("pid-container", ["--pid", "container:sparkfleet-other"], "has --pid container:sparkfleet-other, which shares "
     "another container's namespace"),
    ("network-host", ["--network=host"], "has --network host, which shares the host's namespace"),
    ("net-host", ["--net", "host"], "has --net host"),
    ("network-host-upper", ["--network", "HOST"], "has --network host"),
    ("network-container", ["--network", "container:sparkfleet-other"], "has --network container:sparkfleet-other"),
    ("ipc-container", ["--ipc", "container:sparkfleet-other"], "has --ipc container:sparkfleet-other"),
    ("uts-host", ["--uts", "host"], "has --uts host"),
    ("userns-host", ["--userns=host"], "has --userns host"),
    ("cgroupns-host", ["--cgroupns", "host"], "has --cgroupns host"),
    ("cgroup-parent", ["--cgroup-parent", "/"], "puts the container in another cgroup"),
    # confinement
    ("seccomp-unconfined", ["--security-opt", "seccomp=unconfined"], "has --security-opt seccomp=unconfined, which "
     "turns off or replaces the container's confinement"),
    ("seccomp-profile-file", ["--security-opt", "seccomp=/srv/allow-all.json"], "has --security-opt seccomp="),
    ("apparmor-unconfined", ["--security-opt", "apparmor=unconfined"], "has --security-opt apparmor=unconfined"),
    ("apparmor-colon", ["--security-opt", "apparmor:unconfined"], "has --security-opt apparmor:unconfined"),
    ("label-disable", ["--security-opt", "label=disable"], "has --security-opt label=disable"),
    ("label-type", ["--security-opt", "label=type:spc_t"], "has --security-opt label=type:spc_t"),
    ("systempaths", ["--security-opt=systempaths=unconfined"], "has --security-opt systempaths=unconfined"),
    ("no-new-privileges-false", ["--security-opt", "no-new-privileges=false"], "no-new-privileges=false"),
    ("no-new-privileges-colon-false", ["--security-opt", "no-new-privileges:false"], "no-new-privileges:false"),
    # other containers, the host's ports, files and kernel
    ("link", ["--link", "sparkfleet-other:o"], "links another container, whose environment (secrets included)"),
    ("publish", ["-p", "22:22"], "has -p 22:22, which publishes a host port beyond the service's port"),
    ("publish-long", ["--publish=0.0.0.0:2222:22"], "has --publish 0.0.0.0:2222:22"),
    ("publish-all", ["-P"], "has -P, which publishes every exposed port"),
    ("publish-clustered", ["-pv"], "has -p v, which publishes a host port"),
    ("cidfile", ["--cidfile", "/etc/cron.d/x"], "makes the docker CLI write a file on the host"),
    ("label-file", ["--label-file", "/srv/labels"], "reads labels from a host file"),
    ("annotation", ["--annotation", "cdi.k8s.io/x=nvidia.com/gpu=all"], "passes an annotation to the OCI runtime"),
    ("use-api-socket", ["--use-api-socket"], "mounts the docker API socket"),
    ("oom-kill-disable", ["--oom-kill-disable"], "stops the kernel from killing the container"),
    ("oom-score-negative", ["--oom-score-adj", "-1000"], "has --oom-score-adj -1000, which makes the kernel kill"),
    ("cpu-rt-runtime", ["--cpu-rt-runtime", "950000"], "real-time scheduling budget"),
    ("sysctl-host-wide", ["--sysctl", "kernel.core_pattern=|/tmp/x"], "kernel.core_pattern is not namespaced"),
    ("log-opt-env", ["--log-opt", "env=NGC_API_KEY"], "copies the container's environment (its secrets included)"),
    ("log-opt-env-regex", ["--log-opt=env-regex=.*"], "copies the container's environment"),
    ("runtime-other", ["--runtime", "sysbox-runc"], "has --runtime sysbox-runc: a runtime other than nvidia"),
    ("gpus-driver-options", ["--gpus", "driver=other"], "a GPU request other than all"),
    # an option docker knows but sparkfleet's table does not, or a typo
    ("unknown-long", ["--privilged"], "has --privilged, which is not a docker run option (Docker 28's docker run "
     "--help). Fix: check the spelling; an option newer than sparkfleet's table needs allow_host_access"),
    ("unknown-long-equals", ["--frob=1"], "has --frob, which is not a docker run option"),
    ("unknown-short", ["-X"], "has -X, which is not a docker run option"),
    ("unknown-in-cluster", ["-itX"], "has -X, which is not a docker run option"),
    ("case-matters", ["--Privileged"], "has --Privileged, which is not a docker run option"),
]  # fmt: skip

# (id, docker_args, text) refused even with allow_host_access: the unit's structure, sparkfleet's own options and
# labels, secrets.
ALWAYS_REFUSED: list[tuple[str, list[str], str]] = [
    ("positional", ["alpine"], "'alpine' is not an option: docker run stops reading options there, runs what follows "
     "as the image"),
    ("positional-after-options", ["--init", "sh"], "'sh' is not an option"),
    ("dash", ["-"], "'-' is not an option"),
    ("double-dash", ["--", "--privileged"], "'--' ends docker's options"),
    ("missing-value-last", ["--entrypoint"], "--entrypoint needs a value, but it is the last of docker_args: docker "
     "would take the service's image as its value"),
    ("missing-value-short", ["-e"], "-e needs a value"),
    ("missing-value-cluster", ["-itv"], "-v needs a value"),
    ("bad-syntax", ["---privileged"], "is not an option docker can read (bad flag syntax)"),
    ("bad-syntax-equals", ["--=x"], "bad flag syntax"),
    ("bool-not-a-bool", ["--init=yes"], "has --init=yes: a boolean is true or false"),
    ("bool-empty", ["--privileged="], "has --privileged=: a boolean is true or false"),
    ("short-bool-not-a-bool", ["-i=v/:/x"], "has -i=v/:/x: a boolean is true or false"),
    ("name", ["--name", "sparkfleet-gateway"], "has --name sparkfleet-gateway: sparkfleet names the container "
     "sparkfleet-<name>"),
    ("name-equals", ["--name=x"], "has --name x"),
    ("rm-false", ["--rm=false"], "has --rm: sparkfleet sets --rm"),
    ("rm", ["--rm"], "has --rm"),
    ("pull", ["--pull", "always"], "has --pull always: sparkfleet sets --pull never"),
    ("detach", ["-d"], "has -d: the unit runs the container in the foreground"),
    ("detach-clustered", ["-dit"], "has -d"),
    ("restart", ["--restart", "always"], "has --restart always: systemd restarts the unit"),
    ("help", ["--help"], "has --help: docker would print its help"),
    ("own-label", ["--label", "org.sparkfleet.service=other"], "has --label org.sparkfleet.service=other: "
     "sparkfleet's own labels"),
    ("own-label-short", ["-lorg.sparkfleet.engine=x"], "has -l org.sparkfleet.engine=x"),
    ("secret-env", ["-e", "HF_TOKEN=abc"], "has -e HF_TOKEN=... (value not shown): a secret in the unit's command "
     "line. Fix: put it in the vault variable sparkfleet_hf_token"),
    ("secret-env-long", ["--env=NGC_API_KEY=abc"], "has --env NGC_API_KEY=... (value not shown)"),
    ("secret-env-passthrough", ["-e", "HUGGING_FACE_HUB_TOKEN"], "HUGGING_FACE_HUB_TOKEN=..."),
    ("relative-bind", ["-v", "./etc:/x"], "mounts the relative host path './etc' (-v): docker resolves it against "
     "the working directory"),
    ("relative-bind-dotdot", ["-v", "..:/x"], "the relative host path '..'"),
    ("relative-env-file", ["--env-file", "etc/sparkfleet/serving/x.env"], "reads the relative host path"),
    ("relative-mount", ["--mount", "type=bind,src=../etc,dst=/x"], "the relative host path '../etc'"),
    ("not-a-volume-name", ["-v", "~/x:/x"], "'~/x' is neither an absolute host path nor a volume name"),
    ("empty-volume", ["-v", ""], "has -v with an empty value"),
    ("mount-bad-csv", ["--mount", 'type=bind,src=/data"x,dst=/x'], "is not valid CSV"),
    ("mount-unknown-key", ["--mount", "type=bind,src=/data,dst=/x,bind-create-src"], "is not a mount field docker "
     "knows"),
    ("oom-score-not-int", ["--oom-score-adj", "low"], "has --oom-score-adj low: not an integer"),
]  # fmt: skip

# docker_args a service may carry without allow_host_access (what the engines' documented commands need included).
ACCEPTED: list[tuple[str, list[str]]] = [
    ("ipc-host", ["--ipc", "host"]),
    ("ipc-host-equals", ["--ipc=host"]),
    ("ipc-private", ["--ipc", "private"]),
    ("shm-size", ["--shm-size", "16g"]),
    ("shm-size-equals", ["--shm-size=32GB"]),
    ("ulimit-memlock", ["--ulimit", "memlock=-1"]),
    ("ulimit-stack", ["--ulimit", "stack=67108864"]),
    ("ulimits-sglang", ["--ulimit", "memlock=-1", "--ulimit", "stack=67108864", "--ipc=host"]),
    ("gpus-all", ["--gpus", "all"]),
    ("gpus-device", ["--gpus", "device=0"]),
    ("gpus-device-quoted", ["--gpus", '"device=0,1"']),
    ("gpus-count", ["--gpus", "2"]),
    ("gpus-capabilities", ["--gpus", '"capabilities=compute,utility"']),
    ("gpus-nvidia-driver", ["--gpus", "driver=nvidia,count=1"]),
    ("runtime-nvidia", ["--runtime", "nvidia"]),
    ("runtime-runc", ["--runtime=runc"]),
    ("env", ["-e", "NCCL_DEBUG=INFO"]),
    ("env-attached", ["-eNCCL_DEBUG=INFO"]),
    ("env-long", ["--env", "VLLM_USE_V1=1"]),
    ("env-value-dashes", ["--env", "-x"]),  # pflag: the next item is the value, dash or not
    ("env-file-elsewhere", ["--env-file", "/srv/lab/common.env"]),
    ("label", ["--label", "lab.owner=team-a"]),
    ("label-short", ["-l", "lab.owner=team-a"]),
    ("user", ["--user", "1000:1000"]),
    ("user-short", ["-u1000"]),
    ("workdir", ["-w", "/workspace"]),
    ("entrypoint", ["--entrypoint", "/bin/sh"]),
    ("entrypoint-dash", ["--entrypoint", "-x"]),
    ("cap-drop", ["--cap-drop", "ALL"]),
    ("no-new-privileges", ["--security-opt", "no-new-privileges"]),
    ("no-new-privileges-true", ["--security-opt=no-new-privileges=true"]),
    ("no-new-privileges-colon", ["--security-opt", "no-new-privileges:true"]),
    ("named-volume", ["-v", "models:/models"]),
    ("named-volume-ro", ["-v", "models:/models:ro"]),
    ("anonymous-volume", ["-v", "/scratch"]),
    ("home-bind", ["-v", "/home/lab/models:/models:ro"]),
    ("raid-bind", ["-v", "/raid/models:/models"]),
    ("mnt-bind", ["--volume=/mnt/data/:/data"]),
    ("tmp-bind", ["-v", "/tmp/x:/x"]),
    ("etc-lookalike", ["-v", "/etcetera:/x"]),
    ("var-lookalike", ["-v", "/various:/x"]),
    ("opt-models", ["-v", "/opt/models:/models"]),
    ("opt-sparkfleet-lookalike", ["-v", "/opt/sparkfleet2:/x"]),
    ("mount-bind", ["--mount", "type=bind,src=/home/lab/m,dst=/m,readonly"]),
    ("mount-volume", ["--mount", "source=models,target=/models"]),
    ("mount-tmpfs", ["--mount", "type=tmpfs,target=/cache,tmpfs-size=1g"]),
    ("mount-slave", ["--mount", "type=bind,src=/data,dst=/d,bind-propagation=rslave"]),
    ("tmpfs", ["--tmpfs", "/run:rw,size=64m"]),
    ("clustered-bools", ["-it"]),
    ("clustered-bools-then-value", ["-itv", "/data:/d"]),
    ("clustered-then-attached", ["-itv/data:/d"]),
    ("bool-false", ["--privileged=false"]),
    ("bool-short-false", ["-P=false"]),
    ("init", ["--init"]),
    ("read-only", ["--read-only"]),
    ("resources", ["--cpus", "8", "-m", "64g", "--memory-swap=64g", "--pids-limit", "4096", "-c512"]),
    ("cpuset", ["--cpuset-cpus", "0-7"]),
    ("health", ["--health-cmd", "curl -f http://localhost:8000/health", "--health-interval=30s"]),
    ("network-none", ["--network", "none"]),
    ("network-user-defined", ["--network", "lab-net"]),
    ("add-host", ["--add-host", "etcd:10.0.0.5"]),
    ("hostname", ["-h", "worker-1"]),
    ("dns", ["--dns", "10.0.0.2"]),
    ("sysctl-net", ["--sysctl", "net.core.somaxconn=4096"]),
    ("sysctl-ipc", ["--sysctl", "kernel.shmmax=68719476736"]),
    ("oom-score", ["--oom-score-adj", "500"]),
    ("stop-signal", ["--stop-signal", "SIGINT"]),
    ("log-driver", ["--log-driver", "journald", "--log-opt", "tag=sg"]),
    ("platform", ["--platform", "linux/arm64"]),
    ("hidden-aliases", ["--net-alias", "a", "--dns-opt", "ndots:1"]),
    ("group-add", ["--group-add", "video"]),
    ("device-limit", ["--device-read-bps", "/dev/nvme0n1:1gb"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"), [r[1:] for r in NEEDS_HOST_ACCESS], ids=[r[0] for r in NEEDS_HOST_ACCESS]
)
def test_needs_allow_host_access(args: list[str], expected: str) -> None:
    text = _texts(args)
    assert expected in text, text
    assert "Fix: " in text
    # The one escape: the same docker_args pass with allow_host_access.
    assert da.check_docker_args(args, allow_host_access=True) == []


@pytest.mark.parametrize(("args", "expected"), [r[1:] for r in ALWAYS_REFUSED], ids=[r[0] for r in ALWAYS_REFUSED])
def test_refused_even_with_allow_host_access(args: list[str], expected: str) -> None:
    text = _texts(args)
    assert expected in text, text
    assert "Fix: " in text
    assert expected in _texts(args, allow_host_access=True)


@pytest.mark.parametrize("args", [r[1] for r in ACCEPTED], ids=[r[0] for r in ACCEPTED])
def test_accepted_without_an_escape(args: list[str]) -> None:
    assert da.check_docker_args(args) == []


def test_the_tables_are_large() -> None:
    assert len(NEEDS_HOST_ACCESS) + len(ALWAYS_REFUSED) >= 120
    assert len(ACCEPTED) >= 60


# --------------------------------------------------------------------------------------------- the grammar


@pytest.mark.parametrize(
    ("args", "read"),
    [
        (["--volume=/a:/b"], [("volume", "/a:/b")]),
        (["--volume", "/a:/b"], [("volume", "/a:/b")]),
        (["-v", "/a:/b"], [("volume", "/a:/b")]),
        (["-v/a:/b"], [("volume", "/a:/b")]),
        (["-v=/a:/b"], [("volume", "/a:/b")]),
        (["-v="], [("volume", "=")]),  # pflag: '-v=' is -v with the value '='
        (["-itv", "/a:/b"], [("interactive", None), ("tty", None), ("volume", "/a:/b")]),
        (["-itv/a:/b"], [("interactive", None), ("tty", None), ("volume", "/a:/b")]),
        (["-pv"], [("publish", "v")]),  # -p takes a value: the rest of the cluster
        (["-it=false"], [("interactive", None), ("tty", "false")]),
        (["--rm=false"], [("rm", "false")]),
        (["--label", "--privileged"], [("label", "--privileged")]),  # the next item is the value, dash or not
        (["--net", "host", "--net-alias=a"], [("network", "host"), ("network-alias", "a")]),
        (["-e", "A=1", "--env=B=2", "-eC=3"], [("env", "A=1"), ("env", "B=2"), ("env", "C=3")]),
    ],
)
def test_read_as_docker_reads_them(args: list[str], read: list[tuple[str, str | None]]) -> None:
    given, problems = da.read_args(args)
    assert problems == []
    assert [(g.option.name if g.option else None, g.value) for g in given] == read


def test_reading_stops_at_the_first_item_that_is_not_an_option() -> None:
    given, problems = da.read_args(["--init", "image", "--privileged"])
    assert [g.spelled for g in given] == ["--init"]
    assert [p.index for p in problems] == [1]


def test_with_allow_host_access_an_unknown_option_takes_the_next_word() -> None:
    given, problems = da.read_args(["--newer-option", "value", "--init"], lenient=True)
    assert problems == []
    assert [(g.spelled, g.value) for g in given] == [("--newer-option", "value"), ("--init", None)]


@pytest.mark.parametrize(
    ("path", "norm"),
    [
        ("/", "/"),
        ("//", "/"),
        ("/..", "/"),
        ("/etc/", "/etc"),
        ("//etc//shadow", "/etc/shadow"),
        ("/a/./b/../c", "/a/c"),
        ("/var/run/../run/docker.sock", "/var/run/docker.sock"),
        ("/../../etc", "/etc"),
    ],
)
def test_paths_are_normalised(path: str, norm: str) -> None:
    assert da.normalize_path(path) == norm


def test_links_are_resolved_when_a_resolver_is_given() -> None:
    links = {"/srv/link": "/etc", "/srv/sock": "/run/docker.sock"}

    def realpath(path: str) -> str:
        return links.get(path, path)

    assert da.check_docker_args(["-v", "/srv/link:/x"]) == []
    text = _texts(["-v", "/srv/link:/x", "--env-file", "/srv/sock"], realpath=realpath)
    assert "mounts the host's /srv/link (a link to /etc) into the container with -v (a system directory)" in text
    assert "reads the host's /srv/sock (a link to /run/docker.sock) as an env file with --env-file" in text
    assert da.check_docker_args(["-v", "/srv/data:/x"], realpath=realpath) == []


def test_the_profile_capabilities_are_allowed() -> None:
    caps = da.capabilities(["--ipc", "host", "--cap-add", "SYS_NICE", "--cap-add=cap_ipc_lock"])
    assert caps == frozenset({"SYS_NICE", "IPC_LOCK"})
    assert da.check_docker_args(["--cap-add", "sys_nice", "--cap-add=CAP_IPC_LOCK"], profile_capabilities=caps) == []
    assert "beyond the profile's (IPC_LOCK, SYS_NICE)" in _texts(["--cap-add", "SYS_ADMIN"], profile_capabilities=caps)


def test_host_network_only_where_the_engine_runs_on_it() -> None:
    assert da.check_docker_args(["--network", "host"], host_network=True) == []
    assert "has --network host" in _texts(["--network", "host"], host_network=False)
    assert "container:x" in _texts(["--network", "container:x"], host_network=True)


# --------------------------------------------------------------------------------------------- the table is complete


def test_every_option_has_one_class_and_every_checked_option_its_check() -> None:
    for o in da.OPTIONS:
        assert o.cls in da.CLASSES, o
        assert o.why, o
        assert (o.name in da.CHECKS) == (o.cls == da.CHECKED), o
    assert set(da.CHECKS) <= {o.name for o in da.OPTIONS}


def test_names_and_letters_are_unique_and_spelled_as_docker_spells_them() -> None:
    longs = [n for o in da.OPTIONS for n in (o.name, *o.aliases)]
    assert len(longs) == len(set(longs))
    shorts = [o.short for o in da.OPTIONS if o.short]
    assert len(shorts) == len(set(shorts))
    assert all(re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", n) for n in longs)
    assert sorted(shorts) == sorted("acdehilmpPqtuvw")
    # Booleans of docker run (they never take the next item); every other option takes a value.
    booleans = {o.name for o in da.OPTIONS if not o.takes_value}
    assert booleans == {
        "detach", "disable-content-trust", "help", "init", "interactive", "no-healthcheck", "oom-kill-disable",
        "privileged", "publish-all", "quiet", "read-only", "rm", "sig-proxy", "tty", "use-api-socket",
    }  # fmt: skip


# docker run --help of Docker 28 (the Linux options, the Windows ones and the hidden aliases).
DOCKER_RUN_HELP = """
        add-host annotation attach blkio-weight blkio-weight-device cap-add cap-drop cgroup-parent cgroupns cidfile
        cpu-count cpu-percent cpu-period cpu-quota cpu-rt-period cpu-rt-runtime cpu-shares cpus cpuset-cpus
        cpuset-mems credentialspec detach detach-keys device device-cgroup-rule device-read-bps device-read-iops
        device-write-bps device-write-iops disable-content-trust dns dns-opt dns-option dns-search domainname
        entrypoint env env-file expose gpus group-add health-cmd health-interval health-retries health-start-interval
        health-start-period health-timeout help hostname init interactive io-maxbandwidth io-maxiops ip ip6 ipc
        isolation kernel-memory label label-file link link-local-ip log-driver log-opt mac-address memory
        memory-reservation memory-swap memory-swappiness mount name net net-alias network network-alias
        no-healthcheck oom-kill-disable oom-score-adj pid pids-limit platform privileged publish publish-all pull
        quiet read-only restart rm runtime security-opt shm-size sig-proxy stop-signal stop-timeout storage-opt
        sysctl tmpfs tty ulimit use-api-socket user userns uts volume volume-driver volumes-from workdir
    """


def test_every_option_of_docker_run_is_in_the_table() -> None:
    help_options = DOCKER_RUN_HELP.split()
    assert sorted(help_options) == sorted(da.BY_LONG)


def test_serving_doc_lists_every_option_with_its_class() -> None:
    text = SERVING_DOC.read_text()
    begin = text.index("<!-- BEGIN generated from plugins/module_utils/sparkfleet/service/docker_args.py")
    begin = text.index("\n", begin) + 1
    end = text.index("<!-- END generated -->", begin)
    want = "\n".join(da.docs_table()) + "\n"
    if UPDATE_DOCS:
        SERVING_DOC.write_text(text[:begin] + want + text[end:])
        return
    assert text[begin:end] == want, "docs/serving.md's table differs (SPARKFLEET_UPDATE_DOCS=1 to refresh)"
    assert "## Which docker options a service may use" in text
    for cls in da.CLASSES:
        assert f"| `{cls}` |" in text


# --------------------------------------------------------------------------------------------- the real parser


def _with(args: list[str]) -> dict[str, Any]:
    return {**OK, "docker_args": args}


@pytest.mark.parametrize(
    ("args", "expected"),
    [(r[1], r[2]) for r in NEEDS_HOST_ACCESS + ALWAYS_REFUSED],
    ids=[r[0] for r in NEEDS_HOST_ACCESS + ALWAYS_REFUSED],
)
def test_no_refused_docker_args_reach_a_rendered_unit(args: list[str], expected: str) -> None:
    plan = make_plan([_with(args)])
    text = "\n".join(plan.errors)
    assert f"{P}" in text and expected in text, text
    assert plan.as_fact()["deploy"] == []
    out = render_plan(plan.as_fact(), profiles=PROFILES, settings=Settings(systemd_version=255))
    assert out["present"] == []


def test_structure_problems_name_the_item() -> None:
    plan = make_plan([_with(["--init", "--entrypoint"])])
    assert any(e.startswith(f"{P}[1] --entrypoint needs a value") for e in plan.errors), plan.errors


def test_allow_host_access_passes_host_options_to_the_unit_as_written() -> None:
    args = ["-itv", "/:/host", "--pid=host", "--device", "/dev/nvme0n1"]
    plan = make_plan([{**_with(args), "allow_host_access": True}])
    assert plan.errors == []
    out = render_plan(plan.as_fact(), profiles=PROFILES, settings=Settings(systemd_version=255))
    argv = out["present"][0]["docker_argv"]
    at = argv.index(OK["image"])
    assert argv[at - len(args) : at] == args


@pytest.mark.parametrize("args", [r[1] for r in ACCEPTED], ids=[r[0] for r in ACCEPTED])
def test_accepted_docker_args_reach_the_unit_before_the_image(args: list[str]) -> None:
    plan = make_plan([_with(args)])
    assert plan.errors == []
    out = render_plan(plan.as_fact(), profiles=PROFILES, settings=Settings(systemd_version=255))
    argv = out["present"][0]["docker_argv"]
    at = argv.index(OK["image"])
    assert argv[at - len(args) : at] == args


def test_the_dynamo_engines_may_repeat_host_networking() -> None:
    frontend = {
        "name": "fe",
        "engine": "dynamo-frontend",
        "image": "example.org/dynamo/frontend:0.5.0",
        "model": "Qwen/Qwen3-0.6B",
        "docker_args": ["--network", "host"],
    }
    assert make_plan([frontend], NO_GPU).errors == []
    assert "has --network host" in "\n".join(make_plan([_with(["--network", "host"])], SPARK_GPU).errors)


def test_preflight_on_the_host_follows_a_mount_link_to_where_it_leads(tmp_path: Path) -> None:
    """The plan module runs on the host and passes its os.path.realpath: /data/models -> /etc is refused there,
    while the controller-side reading (no realpath) can only judge the path as written."""
    link = tmp_path / "models"
    link.symlink_to("/etc")
    svc = {**OK, "docker_args": ["-v", f"{link}:/models"]}
    on_host = make_plan([svc], SPARK_GPU, realpath=os.path.realpath)
    assert any("/etc" in e and "docker_args" in e for e in on_host.errors), on_host.errors
    assert make_plan([svc], SPARK_GPU).errors == []
