"""Data layer: image loading, readers, the stable-id index, splits and the FindingEmo downloader.

See docs/data.md. Modules: ``paths`` (rel paths, image ids), ``images`` (``load_image``),
``readers`` (FindingEmo / generic CSV / folder tree), ``index`` (``ImageIndex``,
``build_index``), ``split`` (``make_split``, ``load_split``), ``findingemo`` (the
findingemo-light annotations and URLs), ``download`` and ``commands`` (CLI), ``atomic``.
"""
