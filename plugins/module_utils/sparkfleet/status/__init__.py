"""The read-only fleet status (playbooks/status.yml): the host-side collector and the controller-side report."""
