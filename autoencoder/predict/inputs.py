"""predict's inputs: the files named on the command line, checked before TensorFlow loads
(arrays from their headers alone), and the outputs they would write."""

from __future__ import annotations

import contextlib
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autoencoder.data.folder import image_files
from autoencoder.data.images import SUFFIXES, is_image
from autoencoder.errors import UserError, named

log = logging.getLogger(__name__)

ARRAY_SUFFIXES = (".npy", ".npz")


@dataclass
class Source:
    """One input file and the name its output keeps (relative to --out, without suffix)."""

    path: Path
    name: str
    kind: str  # "image", "npy" or "npz"
    # Arrays: member ("" for .npy) -> (shape, dtype), read from the headers alone.
    members: dict = field(default_factory=dict)

    @property
    def suffix(self) -> str:
        return ".png" if self.kind == "image" else f".{self.kind}"

    def count(self) -> int:
        """How many images the file holds."""
        if self.kind == "image":
            return 1
        return sum(stack_length(shape) for shape, _ in self.images())

    def images(self) -> list:
        """(shape, dtype) of the members that hold images (2-D to 4-D arrays)."""
        return [m for m in self.members.values() if len(m[0]) >= 2]


def one_image(shape: tuple) -> bool:
    """Whether an array of this shape is one image: (H, W), or (H, W, C) with C = 1 or 3."""
    # (H, W, 3) could be read as H images 3 pixels wide, which no one means: a colour picture,
    # or x[0] of an (N, H, W, 1) stack, is one image.
    return len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3))


def stack_length(shape: tuple) -> int:
    """How many images an array of this shape holds: one image is one, else the first axis."""
    return 1 if one_image(shape) else shape[0]


def out_named(out: Path) -> str:
    """The output folder as the reader gave it: --out DIR, or out='DIR'."""
    return named(f"--out {out}", f"out='{out}'")


def collect_inputs(inputs: list[str | Path], out: Path | None = None) -> list[Source]:
    """The files named on the command line, folders expanded to the images inside them."""
    # A folder's images, but not those under --out: its earlier outputs are not new inputs.
    skip = out.resolve() if out is not None else None
    sources = []
    for given in map(Path, inputs):
        if given.is_dir() and skip is not None and given.resolve() == skip:
            raise UserError(
                f"{out_named(out)}: is the input folder {given} itself, whose images the outputs "
                f"would replace; choose another folder, e.g. {given / 'reconstructed'}"
            )
        if given.is_dir():
            sources += _folder_sources(given, skip)
        elif given.is_file():
            sources.append(_file_source(given))
        else:
            raise UserError(f"{given}: no such file or folder; check the path")
    _refuse_clashes(sources)
    return sources


def _folder_sources(given: Path, skip: Path | None) -> list[Source]:
    """A folder's images as training reads them (hidden files left out, linked folders
    followed), less --out and earlier predictions inside it; a warning names the other files."""
    earlier = _earlier_outputs(given)

    def new(path):
        return (skip is None or skip not in path.resolve().parents) and not any(
            folder in path.parents for folder in earlier
        )

    images, others = image_files(given)
    found = [p for p in map(Path, images) if new(p)]
    others = [p for p in map(Path, others) if new(p)]
    if not found:
        raise UserError(
            f"{given}: no image files ({', '.join(SUFFIXES)}) in this folder or its "
            f"subfolders; pass image files, a folder of them, or an .npy/.npz array"
        )
    if others:
        log.warning(
            "%s: left out %d file(s) that are not images (%s%s); name .npy/.npz arrays on the "
            "command line to predict them",
            *(given, len(others), ", ".join(p.name for p in others[:3])),
            " ..." if len(others) > 3 else "",
        )
    if earlier:
        log.info(
            "%s: left out %d earlier prediction folder(s) inside it (%s)",
            *(given, len(earlier), ", ".join(str(f) for f in earlier[:3])),
        )
    names = [path.relative_to(given).with_suffix("").as_posix() for path in found]
    return [Source(path, name, "image") for path, name in zip(found, names)]


def _earlier_outputs(folder: Path) -> list[Path]:
    """Folders under `folder` that a predict wrote (a scores.csv of its columns): not inputs."""
    found = []
    for scores in sorted(folder.rglob("scores.csv")):
        try:
            with open(scores, encoding="utf-8") as handle:
                header = handle.readline()
        except (OSError, UnicodeDecodeError):
            continue
        if header.startswith("input,output,"):
            found.append(scores.parent)
    return found


def _file_source(path: Path) -> Source:
    if is_image(path):
        return Source(path, path.stem, "image")
    suffix = path.suffix.lower()
    if suffix not in ARRAY_SUFFIXES:
        raise UserError(
            f"{path}: not an image ({', '.join(SUFFIXES)}) nor an .npy/.npz array; "
            f"convert it to PNG first"
        )
    members = _npy_header(path) if suffix == ".npy" else _npz_headers(path)
    source = Source(path, path.stem, suffix[1:], members)
    for member, (shape, dtype) in members.items():
        where = f"{path}:{member}" if member else str(path)
        if suffix == ".npy" and len(shape) < 2:
            raise UserError(f"{where}: a {len(shape)}-D array; {ARRAY_SHAPES}")
        if len(shape) > 4 or (len(shape) == 4 and shape[-1] not in (1, 3)):
            raise UserError(f"{where}: shape {shape}; {ARRAY_SHAPES}")
        if len(shape) >= 2 and not (dtype == np.uint8 or np.issubdtype(dtype, np.floating)):
            raise UserError(
                f"{where}: {dtype} pixels; save uint8 (0-255) or float pixels in [0, 1]"
            )
    if not source.count():
        raise UserError(f"{path}: holds no images; {ARRAY_SHAPES}")
    return source


ARRAY_SHAPES = (
    "arrays of images are (H, W), (H, W, C), (N, H, W) or (N, H, W, C) with C = 1 or 3, "
    "uint8 or float in [0, 1]"
)


def _npy_header(path: Path) -> dict:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(
            f"{path}: not a readable .npy array ({_first_line(exc)}); save it again with "
            f"numpy.save, or leave it out"
        ) from None
    return {"": (tuple(array.shape), array.dtype)}


def _npz_headers(path: Path) -> dict:
    """Member -> (shape, dtype) of an .npz, from each member's header (nothing decompressed)."""
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as handle:
                    version = np.lib.format.read_magic(handle)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(handle)
                if dtype.hasobject:
                    raise ValueError(f"'{info.filename}' is an object array")
                headers[info.filename.removesuffix(".npy")] = (tuple(shape), dtype)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise UserError(
            f"{path}: not a readable .npz archive ({_first_line(exc)}); save it again with "
            f"numpy.savez, or leave it out"
        ) from None
    return headers


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _refuse_clashes(sources: list[Source]) -> None:
    seen: dict[str, Path] = {}
    for source in sources:
        key = source.name + source.suffix
        if key in seen:
            raise UserError(
                f"{seen[key]} and {source.path} would both be written as {key}; rename one, "
                f"or predict them into separate {named('--out', 'out')} folders"
            )
        seen[key] = source.path


def planned_outputs(sources: list[Source], noisy: bool) -> list[str]:
    """Every file predict writes, relative to --out."""
    names = [s.name + s.suffix for s in sources]
    return [*names, *(f"noisy/{n}" for n in names if noisy), "scores.csv"]


def refuse_existing(
    out: Path, outputs: list[str], overwrite: bool, sources: list[Source] = ()
) -> None:
    """Refuse an --out that is a file, an output that is an input, or outputs that exist
    unless overwrite."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out_named(out)}: is a file; give a folder for the outputs")
    inputs = {source.path.resolve() for source in sources}
    replaced = [out / name for name in outputs if (out / name).resolve() in inputs]
    if replaced:  # even with --overwrite: the user's own image would be lost
        raise UserError(
            f"{replaced[0]}: an input, which its output would replace; choose another "
            f"{named('--out', 'out')}"
        )
    existing = [out / name for name in outputs if (out / name).exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more outputs)" if len(existing) > 1 else ""
        raise UserError(
            f"{existing[0]}: already exists{more}; pass {named('--overwrite', 'overwrite=True')} "
            f"to replace, or choose another {named('--out', 'out')}"
        )


@contextlib.contextmanager
def arrays_of(source: Source):
    """The arrays of an .npy (memory-mapped) or .npz (each member read when asked for)."""
    if source.kind == "npy":
        yield {"": np.load(source.path, mmap_mode="r", allow_pickle=False)}
        return
    with np.load(source.path, allow_pickle=False) as archive:
        yield archive
