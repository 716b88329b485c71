"""Operator commands behind ``bookme <command>``: one small module per command.

Each command takes ``Settings`` and an output stream and returns an exit code; an expected
failure (a service down, a refused request) raises `OpsError`, which the CLI prints as one
line and turns into exit code 2.
"""
