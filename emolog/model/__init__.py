"""The trained object: a spec's program with the networks that feed it, and the data it reads.

``data`` (a data directory as tensors per split), ``spec`` + ``bindings`` (what feeds each
network), ``target`` (valence/arousal as classes), ``model`` (the one model class), ``gate``
(the per-image source choice), ``perception`` (networks rebuilt from a run's record).
"""
