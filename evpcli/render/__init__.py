"""The render stage: :mod:`~evpcli.render.pipeline` (``render``, ``interpolate``, the target cache),
:mod:`~evpcli.render.batch`, landmark previews and contact sheets. The per-frame renderers it drives (warp, neural,
mouth, geometry, reliability, still: a frame and landmarks in, a frame out) are :mod:`evpcli.engines`.

The package is also the library's one-clip call: ``evpcli.render(audio, target, out, emotion=...)`` is
:func:`evpcli.api.render` (the name ``evpcli.render`` cannot be both a function and this package, so the package
answers the call).
"""

import sys
import types


class _RenderPackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from evpcli.api import render

        return render(*args, **kwargs)


sys.modules[__name__].__class__ = _RenderPackage
