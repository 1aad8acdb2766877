"""Torch modules only: no file IO, no training loops (those live in :mod:`evpcli.train`)."""
