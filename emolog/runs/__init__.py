"""One training run: ``train_run`` writes a run directory (``train``, ``writer``); ``record`` is
the one reader of its records (the report, the CLI and ``load_run`` read runs through it);
``load_run`` reads it back as a model (``reader``); ``emolog train`` is ``commands``."""
