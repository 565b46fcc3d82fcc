"""The feature cache: per-image tensors of the frozen perception networks, keyed by image id.

``store`` (format, writer, loader), ``verify`` (checks before training), ``merge`` (joining
sharded builds) and ``build`` (running perception over an index; imports the networks).
"""

from emolog.cache.store import CacheError, CacheWriter, FeatureCache, load_cache
from emolog.cache.verify import VerifyReport, require_verified, verify_cache

__all__ = ["CacheError", "CacheWriter", "FeatureCache", "load_cache", "VerifyReport",
           "require_verified", "verify_cache"]
