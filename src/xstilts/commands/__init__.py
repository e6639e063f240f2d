"""Extra ``xstilts`` sub-commands, one module each.

A module here defines ``register(subparsers) -> None`` that adds its parser with
``set_defaults(func=...)``; ``func(args) -> int`` returns the exit code and raises
``XStiltsError`` for bad input. ``cli.py`` discovers the modules, so adding a command edits
no other file.
"""
