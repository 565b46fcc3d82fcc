"""The feature cache: per-image tensors of the frozen perception networks, keyed by image id.

``store`` (format, loader), ``writer`` (writing shards, resuming), ``verify`` (checks before
training), ``merge`` (joining sharded builds), ``build`` (running perception over an index; imports the networks) with
``image_loader`` (its worker processes that read and decode the images), ``distributed`` (one build over torchrun ranks) and ``commands`` (``emolog cache``).

The names below load on first use, so ``emolog cache --help`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "CacheError": "store",
    "CacheWriter": "writer",
    "FeatureCache": "store",
    "load_cache": "store",
    "VerifyReport": "verify",
    "require_verified": "verify",
    "verify_cache": "verify",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'emolog.cache' has no attribute {name!r}")
    return getattr(importlib.import_module(f"emolog.cache.{_WHERE[name]}"), name)
