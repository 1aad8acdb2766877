"""The render stage and its engines: :mod:`~evpcli.render.pipeline` (``render``, ``interpolate``, the target cache),
:mod:`~evpcli.render.batch`, landmark previews and contact sheets, and the per-frame renderers (warp, neural, mouth,
geometry, reliability, still) that take a frame and landmarks and give a frame."""
