"""Read-only probes of a serving host: listening ports, and the ports sparkfleet's own containers hold."""

from __future__ import annotations


def parse_listening_ports(ss_output: str) -> set[int]:
    """TCP ports in LISTEN state from `ss -ltnH` (local address column: 0.0.0.0:22, [::]:22, *:22, ...)."""
    ports: set[int] = set()
    for line in ss_output.splitlines():
        cols = line.split()
        if len(cols) < 4:
            continue
        local = cols[3]
        _addr, sep, port = local.rpartition(":")
        if sep and port.isdigit():
            ports.add(int(port))
    return ports


def parse_own_containers(docker_ps_output: str) -> dict[int, str]:
    """Host ports published by our containers, from
    `docker ps --filter label=org.sparkfleet.service --format '{{.Label "org.sparkfleet.service"}}\\t{{.Ports}}'`.

    Ports look like `0.0.0.0:8080->8080/tcp, :::8080->8080/tcp`. Returns {host port: service name}.
    """
    owned: dict[int, str] = {}
    for line in docker_ps_output.splitlines():
        name, _tab, ports = line.partition("\t")
        for part in ports.split(","):
            host, arrow, _target = part.strip().partition("->")
            if not arrow:
                continue
            _addr, sep, port = host.rpartition(":")
            if sep and port.isdigit():
                owned[int(port)] = name.strip()
    return owned


def own_service_names(docker_ps_output: str) -> set[str]:
    """Services whose container runs, from the same `docker ps` output (host-network containers publish no port,
    so the port they hold is theirs when their container runs)."""
    return {line.partition("\t")[0].strip() for line in docker_ps_output.splitlines() if line.strip()}
