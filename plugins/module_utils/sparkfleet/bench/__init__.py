"""The benchmark client: HTTP/SSE transport (http), checks (checks), statistics (stats), thresholds, the JSON
report's schema check (schema), the run and its report (run) and the module body (module)."""
