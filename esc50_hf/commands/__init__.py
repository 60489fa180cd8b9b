"""Subcommands of the `esc50-hf` CLI: one module each, exposing `register(subparsers)`.

A module's `register` adds its parser and sets `handler` (a function taking the parsed
arguments and returning the exit status). Heavy imports belong inside the handler, so that
`esc50-hf --help` stays fast. A handler lets the library's user errors (`esc50_hf.errors`) escape:
`cli.main` answers them with `error: <message>` and exit status 1, without a traceback.
"""
