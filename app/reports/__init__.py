"""Drift and feature-importance reports: DataFrames in, our entities (and Evidently HTML) out.

The only package that imports Evidently, always inside functions (`import evidently` costs
seconds). Public entry points:

- `verdict.compute_drift(reference, current, config)`: DataDriftPreset's verdict, fast.
- `cache.cached_drift(...)` / `cache.cached_report_html(...)`: the same, kept on disk by content.
- `evidently_report.report_html(...)`: Evidently's full report as a self-contained page, made
  safe by `safe_html.safe_report_html` (data escaped, scripts pinned by a CSP).
- `uploads.read_table(...)`, `uploads.check_compatible(...)`: user files, checked; the bounds
  on rows, columns and decoded size (`limits.DataLimits`) apply before a frame is built.
- `jobs.ReportJobs`: the bounded registry of background report builds.
- `summaries.drift_summary(...)`, `summaries.importance_summary(...)`: promotion evidence.
"""
