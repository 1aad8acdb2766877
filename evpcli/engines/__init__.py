"""The per-frame engines: given a frame and landmarks, a frame (and what they need to do it).

- :mod:`~evpcli.engines.geometry`: the rig (triangulation, skin points), piecewise-affine and spline maps, boxes;
- :mod:`~evpcli.engines.warp`: the warp renderer (``WarpRenderer``);
- :mod:`~evpcli.engines.mouth`: the mouth bank and the mouth's interior (``MouthBank``, ``MouthFiller``);
- :mod:`~evpcli.engines.reliability`: occlusion and tracking checks per frame (how far a frame may be changed);
- :mod:`~evpcli.engines.target`: one streaming pass over a target's frames giving its bank and reliability;
- :mod:`~evpcli.engines.neural`: the neural (hybrid) renderer around a trained generator;
- :mod:`~evpcli.engines.still`: the whole head of a photo moved as one.

They know nothing of the workspace, the CLI or the models on disk: the render stage (:mod:`evpcli.render`) reads
and caches what they need and hands it to them.
"""
