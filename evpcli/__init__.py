"""evp: audio-driven emotional video portraits (EVP, CVPR 2021) as a command-line tool and a library.

The library (docs/api.md): :func:`load` opens a workspace and loads its models once, and the :class:`~evpcli.api.Evp`
it returns renders many clips (``.render``, ``.interpolate``); ``evpcli.render(audio, target, out, emotion=...)``
renders one. The stage functions behind them and the CLI are in the subpackages.
"""

__version__ = "0.1.0"

from evpcli import render  # noqa: E402  (the render stage's package; calling it renders one clip: evpcli.api.render)
from evpcli.api import Evp, load  # noqa: E402

__all__ = ["Evp", "load", "render", "__version__"]
