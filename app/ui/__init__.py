"""Reusable Streamlit pieces with no I/O: tables, charts, pickers, links, errors, report frames."""
