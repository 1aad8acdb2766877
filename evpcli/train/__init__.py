"""One training stage per module (``disentangle``, ``audio2lm``, ``lm_emotion``, ``renderer``; the larger stages'
data in ``disentangle_data`` and ``renderer_data``), with the one epoch driver and the shared run, checkpoint, log
and plot utilities (:mod:`~evpcli.train.common`) and multi-process training (:mod:`~evpcli.train.distributed`).
Nothing outside ``train/`` but the CLI and the evaluation imports it."""
