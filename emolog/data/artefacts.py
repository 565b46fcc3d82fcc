"""Reading back what emolog wrote, and refusing in one line what it did not write.

Every reader of an artefact (a cache manifest, a run's results.json, an experiment's tables,
a checkpoint, a shard record, a model's weights) goes through these helpers, so a file that
is missing, empty, truncated, overwritten with other bytes, lacks a field or was written by a
newer emolog stops the command with one line naming the file and what is wrong with it, and
the exit code of that kind (docs/reliability.md):

* missing -> ``ArtefactMissing`` (a ``MissingError``, exit 4);
* present but not what emolog writes -> ``ArtefactError`` (an ``InputError``, exit 3);
* different from the sha256 recorded for it when it was written -> ``ChecksumError``
  (a ``VerificationError``, exit 5).

Files whose damage could still parse (a CSV cut at a line end, a weights file with a flipped
byte) are recorded by sha256 in the file written last (a run's results.json, an
experiment's experiment.json, a cache's manifest): ``record`` writes that, ``check_record``
checks it.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from emolog.errors import InputError, MissingError, VerificationError

# The format tag of each JSON artefact: "<name>/<version>". A reader accepts its version and
# older ones (and a file without a tag: written before tags existed); a newer version is
# refused, naming both, instead of being half understood.
FORMATS: dict[str, str] = {
    "cache": "emolog-cache/1",  # cache manifest.json
    "run": "emolog-run/1",  # a run's results.json (and config.json)
    "experiment": "emolog-experiment/1",  # experiment.json
    "shard-record": "emolog-shard/1",  # an experiment shard's shards/shard-i-of-N.json
    "checkpoint": "emolog-checkpoint/1",  # a run's checkpoint.pt
}


class ArtefactError(InputError, ValueError):
    """A file emolog reads is present but is not what emolog writes (the message says how)."""


class ArtefactMissing(MissingError, FileNotFoundError):
    """A file emolog needs (and wrote, or should have written) is not there."""


class ChecksumError(VerificationError):
    """A file differs from the sha256 recorded when it was written."""


def sha256_file(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes (read in 1 MiB chunks; never memoised: checks that
    a file is unchanged must read it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_bytes(path: str | Path, what: str = "") -> bytes:
    """The file's bytes; ArtefactMissing when absent, ArtefactError when empty."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise ArtefactMissing(f"{path}: missing{f' ({what})' if what else ''}") from None
    except IsADirectoryError:
        raise ArtefactError(f"{path}: is a directory, not a file") from None
    if not data:
        raise ArtefactError(f"{path}: empty file (0 bytes){f'; expected {what}' if what else ''}")
    return data


def _text(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArtefactError(f"{path}: not UTF-8 text (byte {e.start}): overwritten with other data?") from None


def check_format(obj: Mapping[str, Any], kind: str, path: str | Path) -> None:
    """Refuse an object whose ``format`` tag is another artefact's or a newer version's."""
    tag = obj.get("format")
    if tag is None:
        return
    name, _, version = FORMATS[kind].partition("/")
    got_name, _, got_version = str(tag).partition("/")
    if got_name != name or not got_version.isdigit():
        raise ArtefactError(f"{path}: format {tag!r} is not {FORMATS[kind]!r}: not this kind of emolog file")
    if int(got_version) > int(version):
        raise ArtefactError(
            f"{path}: written by a newer emolog (format {tag}; this emolog reads up to "
            f"{FORMATS[kind]}): upgrade emolog to read it"
        )


_TYPES = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number", bool: "true/false"}


def check_fields(obj: Mapping[str, Any], required: Mapping[str, type | tuple[type, ...]], path: str | Path) -> None:
    """Every key of ``required`` present with a value of its type(s) (None never passes)."""
    for key, types in required.items():
        if key not in obj:
            raise ArtefactError(f"{path}: lacks field {key!r}")
        want = types if isinstance(types, tuple) else (types,)
        value = obj[key]
        if not isinstance(value, want) or (isinstance(value, bool) and bool not in want):
            raise ArtefactError(
                f"{path}: field {key!r} is {type(value).__name__} {json.dumps(value)[:40]}, "
                f"expected {' or '.join(_TYPES.get(t, t.__name__) for t in want)}"
            )


def read_json(
    path: str | Path,
    kind: str | None = None,
    required: Mapping[str, type | tuple[type, ...]] | None = None,
    what: str = "",
) -> dict:
    """A JSON object from ``path``, its format tag (``kind``) and ``required`` fields checked."""
    path = Path(path)
    text = _text(path, read_bytes(path, what))
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ArtefactError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}): truncated or overwritten?"
        ) from None
    if not isinstance(obj, dict):
        raise ArtefactError(f"{path}: holds a JSON {type(obj).__name__}, not an object")
    if kind is not None:
        check_format(obj, kind, path)
    if required:
        check_fields(obj, required, path)
    return obj


def read_csv(path: str | Path, required: Iterable[str] = (), what: str = "", **kwargs: Any) -> Any:
    """A pandas DataFrame from ``path`` with the ``required`` columns (kwargs go to
    ``pandas.read_csv``); a row with too few or too many fields is refused, never padded."""
    import pandas as pd

    path = Path(path)
    text = _text(path, read_bytes(path, what))
    try:
        df = pd.read_csv(io.StringIO(text), **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ArtefactError(f"{path}: not a readable CSV table ({first}): truncated or overwritten?") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ArtefactError(f"{path}: lacks column(s) {missing}")
    # pandas pads a short last row with NaN: a file cut inside its last line would pass
    n_fields = {len(line.split(",")) for line in text.splitlines()[1:] if line and '"' not in line}
    if text and not text.endswith("\n"):
        raise ArtefactError(f"{path}: the last line is incomplete (no line end): truncated?")
    if len(n_fields) > 1 and "sep" not in kwargs:
        raise ArtefactError(f"{path}: rows with different numbers of fields {sorted(n_fields)}: truncated or edited?")
    return df


def load_torch(path: str | Path, what: str = "") -> Any:
    """``torch.load`` of a file emolog wrote (tensors and plain data only), on the CPU."""
    import torch

    path = Path(path)
    data = read_bytes(path, what)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - zip, pickle and torch each raise their own errors
        raise ArtefactError(
            f"{path}: not a readable torch file ({type(e).__name__}): truncated or overwritten?"
        ) from None


def record(directory: str | Path, names: Iterable[str]) -> dict[str, str]:
    """``{name: sha256}`` of the files ``names`` that exist in ``directory`` (to store in the
    file written last, which then vouches for them)."""
    d = Path(directory)
    return {n: sha256_file(d / n) for n in sorted(names) if (d / n).is_file()}


def check_record(
    path: str | Path, recorded: Mapping[str, str] | None, recorded_in: str | Path, key: str | None = None
) -> None:
    """ChecksumError when ``path`` differs from the sha256 ``recorded`` (``{name: sha256}``, read
    from ``recorded_in``; ``key`` names the file there, default its file name) holds for it;
    ArtefactMissing when a recorded file is gone. A file the record does not list (or no
    record: an older emolog) is not checked."""
    path = Path(path)
    want = (recorded or {}).get(key or path.name)
    if want is None:
        return
    if not path.is_file():
        raise ArtefactMissing(f"{path}: missing, though {recorded_in} records it as written")
    if sha256_file(path) != want:
        raise ChecksumError(
            f"{path}: differs from the sha256 {recorded_in} records for it "
            "(truncated, overwritten or edited after it was written)"
        )
