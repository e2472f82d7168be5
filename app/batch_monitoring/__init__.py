"""Monitoring over time: production batches scored per model version, as a timeline.

- `sources`: where a batch comes from (a file, a folder, `runs:/RUN_ID/path`), its as-of time.
- `scoring`: the drift verdict against the version's reference profile and the quality metrics
  (both from `app.reports`), and the row the governance database keeps.
- `service.BatchMonitoring`: what the CLI, the pages and the demo seeder call (`run`,
  `run_frame`, `history`, `findings`, `close_finding`).
- `timeline`: the page's frames (drift share and quality over time, per-column heatmap).

Storage, thresholds and findings live in governance/ (monitoring_rules, monitoring_service,
monitoring_store); this package has no SQL of its own.
"""
