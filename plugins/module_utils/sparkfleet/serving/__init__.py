"""Serving: rendering a planned service into a docker run argv and unit (render), image archives (archive),
host probes (probes) and the health gate (health)."""
