"""One training run. ``model.Model`` is the one model object: ``build`` builds it from a config,
``train`` fits it with the one fit loop and writes the run directory (``writer``); ``record`` is
the one reader of a run's records (the report, the CLI and ``load_run`` read runs through it);
``reader.read_run`` reads a run back, its network rebuilt on demand; ``emolog train`` is
``commands``; ``perception`` rebuilds a run's recorded perception for photos."""
