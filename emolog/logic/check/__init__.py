"""Checks of the logic against ProbLog and DeepProbLog, and the ``emolog logic`` command.

``reference`` (ProbLog's own answer per image), ``deepproblog_adapter`` (the same program
through DeepProbLog), ``compare`` (``emolog logic compare``), ``mass`` (do a classifier's
answers sum to 1?), ``bias`` (a measurement of "fail" semantics) and ``commands`` (the CLI,
light to import: ``emolog logic --help`` loads neither torch nor problog).
"""
