"""Metrics: Prometheus scrape targets from the plan (targets), the alert and recording rules with the profiles'
verify thresholds (rules), and the GPU collector for node exporter's textfile directory (gpu)."""
