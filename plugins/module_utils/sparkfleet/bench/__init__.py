"""The benchmark client: HTTP/SSE transport (http_client), the checks, one module each, and their registry
(checks/), statistics (stats), thresholds, the JSON report's schema check (schema), the run and its report (run)
and the module body (module)."""
