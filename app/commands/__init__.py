"""CLI command groups. Each module exposes `register(subparsers)` and sets `func` on its parsers.

A command function takes the parsed arguments and returns the process exit code.
"""
