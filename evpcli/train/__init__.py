"""One training stage per module (``disentangle``, ``audio2lm``, ``lm_emotion``, ``renderer``), with the shared run,
checkpoint, log and plot utilities (:mod:`~evpcli.train.common`) and multi-process training
(:mod:`~evpcli.train.distributed`). Nothing outside ``train/`` but the CLI and the evaluation imports it."""
