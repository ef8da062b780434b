"""The service model: one definition of a service (model), the one parser from inventory to normalized
services (parse) and the per-host plan preflight records and every later stage reads (plan)."""
