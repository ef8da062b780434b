"""Pre-staging model weights on many hosts: the inputs (spec) and the per-file sha256 manifest (manifest)."""
