"""emolog: neurosymbolic emotion recognition for photos of people in scenes.

Data flows one way through the sub-packages:
data -> perception -> cache -> logic -> training -> analysis/report -> cli.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_run"]


def __getattr__(name: str):
    """``emolog.load_run`` (``emolog.runs.reader.load_run``), imported on first use so that
    ``import emolog`` stays free of torch."""
    if name == "load_run":
        from emolog.runs.reader import load_run
        return load_run
    raise AttributeError(f"module 'emolog' has no attribute {name!r}")
