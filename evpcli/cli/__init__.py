"""The ``evp`` command: a thin Typer shell over the stage functions.

Each subcommand parses options, calls one library function and prints its result (a rich summary on stderr,
or JSON on stdout with ``--json``). Exit codes: 0 success, 1 the work failed or an input is bad, 2 usage error
(including a stage this version does not build yet), 130 interrupted. Errors are one line; ``-v`` adds the
traceback.

:mod:`~evpcli.cli.app` holds the app, the global options, the shared helpers and :func:`main`; the commands are
registered, in the order ``evp --help`` lists them, by :mod:`~evpcli.cli.data` (status, synth-corpus,
prepare-dataset, build-pairs), :mod:`~evpcli.cli.train` (train), :mod:`~evpcli.cli.render` (fit-pose, render,
batch-render, interpolate) and :mod:`~evpcli.cli.results` (evaluate, preview-landmarks, demo, ui).
"""

from evpcli.cli.app import app, entry, global_options_first, main, state
from evpcli.cli import data, train, render, results  # noqa: E402,F401,I001  (registers the commands, in this order)

__all__ = ["app", "entry", "global_options_first", "main", "state"]
