"""Neural perception: scene backbones, Scene2EmotionNet, face detectors, expression
recognisers, and the pipeline that produces the feature cache's per-image tensors.

Everything leaves this package in the canonical class order ``emolog.labels.BASIC7``.
Submodules are imported lazily by their users (``emolog.perception.pipeline`` etc.) so that
importing the package stays cheap.
"""
