#!/usr/bin/env bash
# Kept for old notes and commands: the suite is lab/gpu/gpu_run.sh (any NVIDIA GPU; SERVE is no longer needed).
exec bash "$(dirname "$0")/gpu_run.sh" "$@"
