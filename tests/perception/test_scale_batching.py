"""Batched perception equals the per-image path: images prepared in DataLoader workers, the
backbone over whole batches, every face of a batch through the recogniser at once, give each
image the rows it gets when perceived alone (CPU here; the same code runs on a GPU)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from emolog.cache.build import BuildOptions, build_cache
from emolog.cache.store import load_cache
from emolog.data.index import build_index
from emolog.data.readers import RECORD_COLUMNS
from emolog.labels import get_mapping
from helpers.cache import TENSORS
from helpers.photos import six_photos


def test_batched_build_in_workers_equals_each_image_alone(perception, tmp_path) -> None:
    root = tmp_path / "images"
    recs = []
    for rel, (im, lab) in six_photos().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        im.save(root / rel, quality=92)
        recs.append({"path": rel, "label_raw": lab, "source": rel})
    index = build_index(
        pd.DataFrame(recs).reindex(columns=RECORD_COLUMNS, fill_value=""), get_mapping(), root=root, progress=False
    ).index
    build_cache(
        perception,
        index,
        index.ids,
        root,
        tmp_path / "cache",
        options=BuildOptions(batch_size=6, workers=2, progress=False),
    )
    cache = load_cache(tmp_path / "cache")
    assert len(cache) == 6 and int(cache.n_faces.sum()) >= 5  # faces from several images in one call
    for row, rel in enumerate(index.rel_path_of(cache.ids)):
        alone = perception.perceive_batch([Image.open(root / rel)])
        for k in TENSORS:
            got = getattr(cache, k)[row].numpy()
            # float32 convolutions of a batch of 6 and of 1 may sum in another order
            assert np.allclose(got, alone[k][0], rtol=1e-5, atol=1e-5), (rel, k)
