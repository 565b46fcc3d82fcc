"""One training run: ``train_run`` writes a run directory (``train``, ``writer``), ``load_run``
reads it back (``reader``), ``emolog train`` is ``commands``."""
