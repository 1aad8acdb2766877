"""The ``evp`` command's core: the Typer app, its global options, the helpers every command group uses, and the
entry point (:func:`main`). The commands live in one module per group (:mod:`evpcli.cli`).

Each subcommand parses options, calls one library function and prints its result (a rich summary on stderr,
or JSON on stdout with ``--json``). Exit codes: 0 success, 1 the work failed or an input is bad, 2 usage error
(including a stage this version does not build yet), 130 interrupted. Errors are one line; ``-v`` adds the
traceback.
"""

from __future__ import annotations

import json
import signal
import sys
import traceback
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from evpcli import __version__
from evpcli.errors import EvpError, NotBuiltError
from evpcli.progress import Progress, RichProgress
from evpcli.workspace import DEFAULT_WORKSPACE, Workspace


@dataclass
class State:
    workspace: Path = Path(DEFAULT_WORKSPACE)
    device: str = "auto"
    verbose: bool = False
    quiet: bool = False

    @property
    def ws(self) -> Workspace:
        ws = Workspace(self.workspace)
        ws.check_usable()  # a file given as the workspace: one line before any work
        return ws

    @property
    def console(self) -> Console:
        # summaries are not hard-wrapped when stderr is a log file or a pipe (batch scripts' logs)
        return Console(stderr=True, quiet=self.quiet, soft_wrap=not sys.stderr.isatty())

    @property
    def progress(self) -> Progress:
        return Progress() if self.quiet else RichProgress(self.console)


state = State()

app = typer.Typer(
    name="evp",
    help=(
        "Emotional talking-portrait videos from speech (EVP, CVPR 2021), on a CPU.\n\n"
        "Typical use:\n\n"
        "  evp demo                      (a first look: writes ./evp-demo/index.html)\n\n"
        "  evp render --audio speech.wav --emotion happy --target me.mp4 --out out.mp4\n\n"
        "  evp interpolate --from sad --to happy --audio speech.wav --target me.mp4 --out ramp.mp4\n\n"
        "Every subcommand shares one workspace (--workspace, env EVP_WORKSPACE) of cached MFCCs, landmarks, "
        "pairs, models and 3D fits; re-running a stage reuses what is cached. The global options (-w, -v, -q) "
        "may also come after the subcommand. Exit codes: 0 ok, 1 failed or bad input, 2 usage error, "
        "130 interrupted (Ctrl-C or SIGTERM; a re-run resumes)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # plain click help: wraps long option names instead of cutting them at 80 columns
)


class _Command(typer.core.TyperCommand):
    """A command whose usage line names positional arguments as click does (``SOURCE``, not Typer's ``{source}``)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if isinstance(p, typer.core.TyperArgument):
                pieces.append(p.name.upper() if p.required else f"[{p.name.upper()}]")
            else:
                pieces.extend(p.get_usage_pieces(ctx))
        return pieces


class _Computes(_Command):
    """A command that computes: its --help also lists the global options it takes after its name (--device ...)."""

    def format_options(self, ctx, formatter) -> None:
        super().format_options(ctx, formatter)
        with formatter.section("Global options (also taken after the command's name)"):
            formatter.write_dl([
                ("--device [auto|cpu|cuda|cuda:N]", "Where torch runs (default auto: CUDA when this torch build sees "
                 "a GPU, else the CPU)."),
                ("-w, --workspace DIR", "The workspace folder (env EVP_WORKSPACE)."),
                ("-q, --quiet / -v, --verbose", "No progress bars / full tracebacks.")])


def _device_name(value: str | None) -> str | None:
    if value is None:
        return None
    from evpcli.device import check_device_name

    try:
        return check_device_name(value)
    except EvpError as exc:
        raise typer.BadParameter(str(exc)) from None


def _version(value: bool) -> None:
    if value:
        print(f"evp {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    workspace: Path = typer.Option(DEFAULT_WORKSPACE, "--workspace", "-w", envvar="EVP_WORKSPACE",
                                   help="Workspace folder shared by all subcommands (cache of features, "
                                        "pairs, models, fits).", show_default=True),
    device: str = typer.Option("auto", "--device", help="Where torch runs: auto (CUDA when this torch build sees "
                               "a GPU, else the CPU), cpu, cuda or cuda:N (the N-th GPU). May also follow any "
                               "subcommand that computes (evp render --device cpu ...).", callback=_device_name),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="More detail; full tracebacks on errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summaries (errors still shown)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    state.workspace, state.device, state.verbose, state.quiet = workspace, device, verbose, quiet


def _esc(text: Any) -> str:
    """A user string (a path, a reason quoting one) made safe to print through Rich: ``[`` is not markup."""
    from rich.markup import escape

    return escape(str(text))


def _emit(result: Any, as_json: bool, human: str | None = None) -> None:
    """Print a command's result: JSON on stdout for scripts, else a human summary on stderr."""
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    elif human is not None:
        state.console.print(human, markup=False, highlight=False)  # paths may hold [ ]: never Rich markup


def _not_built(stage: str) -> None:
    raise NotBuiltError(f"`evp {stage}` is not built in this version yet; see the README and docs/ for what works")


def _jobs(jobs: int) -> int:
    if jobs < 1:
        raise typer.BadParameter("--jobs must be at least 1")
    return jobs


class ExecutorChoice(str, Enum):
    local = "local"
    ray = "ray"


_EXECUTOR_HELP = ("local: this machine (--jobs worker processes); ray: one Ray task per item (pip install "
                  "'evpcli[ray]'), on a local Ray of --jobs CPUs or the cluster at --ray-address; the tasks write "
                  "into the workspace (a shared folder on a cluster), this process alone writes its index.")
_RAY_ADDRESS_HELP = ("Ray cluster to join with --executor ray (auto, HOST:6379 or ray://HOST:10001); default: start a "
                     "local Ray inside this process.")


def _require_file(path: Path | None, option: str) -> Path:
    if path is None:
        raise typer.BadParameter(f"{option} is required")
    if not path.exists():
        raise EvpError(f"{path}: file not found (given as {option})")
    return path



# --------------------------------------------------------------------------- entry point
INTERRUPTED = ("evp: interrupted; the workspace is consistent and a re-run resumes (training: with --resume; until "
               "then the previous finished model stays in use)")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (``evp`` exits with it). SIGTERM stops a run as Ctrl-C does (130)."""
    from evpcli.workers import handle_sigterm_like_sigint

    previous = handle_sigterm_like_sigint()
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


_GLOBAL_WITH_VALUE = ("-w", "--workspace", "--device")
_MOVABLE = ("-w", "--workspace", "-v", "--verbose", "-q", "--quiet")  # no subcommand has options of these names


def global_options_first(argv: list[str]) -> list[str]:
    """Move the global options -w/--workspace, -v, -q and --device (but train's own) found after the subcommand to
    before it, so that ``evp status -w ws`` means ``evp -w ws status`` and ``evp render --device cpu ...`` means
    ``evp --device cpu render ...`` (click only reads a group's options before the subcommand)."""
    args = list(argv)
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":  # up to the subcommand
        i += 2 if args[i] in _GLOBAL_WITH_VALUE else 1
    if i >= len(args) or args[i] == "--":
        return args
    head, sub, rest = args[:i], args[i], args[i + 1:]
    moved, kept = [], []
    j = 0
    while j < len(rest):
        a = rest[j]
        if a == "--":
            kept.extend(rest[j:])
            break
        if a in ("-w", "--workspace") and j + 1 < len(rest):
            moved += rest[j:j + 2]
            j += 2
            continue
        if sub != "train" and a == "--device" and j + 1 < len(rest):  # train has its own --device
            moved += rest[j:j + 2]
            j += 2
            continue
        if sub != "train" and a.startswith("--device="):
            moved.append(a)
            j += 1
            continue
        if a in _MOVABLE or a.startswith("--workspace=") or (a.startswith("-w") and not a.startswith("--")):
            moved.append(a)
        else:
            kept.append(a)
        j += 1
    return head + moved + [sub] + kept


def _main(argv: list[str] | None) -> int:
    try:
        argv = global_options_first(sys.argv[1:] if argv is None else argv)
        rv = app(args=argv, prog_name="evp", standalone_mode=False)
        code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except EvpError as exc:
        if state.verbose:
            traceback.print_exc()
        print(f"evp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click's usage errors (bad option, missing arg)
            exc.show()
            return exc.exit_code
        if state.verbose:  # a bug: still one line unless -v
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"evp: internal error: {type(exc).__name__}: {first} (run with -v for the traceback)", file=sys.stderr)
        return 1
    if code == 130:  # Typer turns Ctrl-C into exit code 130 outside standalone mode
        print(INTERRUPTED, file=sys.stderr)
    return code


def entry() -> None:
    sys.exit(main())
