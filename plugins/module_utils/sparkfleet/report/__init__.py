"""The fleet report: its model (rows, fleet, reading reports: model), Markdown (markdown), SVG plots (svg),
the HTML page (html) and writing the outputs (write)."""
