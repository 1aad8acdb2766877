"""One training loop per stage (``disentangle``, later ``audio2lm``), with the shared checkpoint/log utilities."""
