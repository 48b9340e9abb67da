"""Open a series as a lazy :class:`xarray.DataArray` backed by dask, one chunk per frame.

Headers are read once up front (see :mod:`workbench.io.headers`). Each dask chunk calls
:class:`FrameStack` to read one frame from its file, so nothing is decoded until asked and the
array pickles as a short list of file names and per-frame numbers: ``dask.distributed``
workers open the files themselves.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut
from xarray.backends import BackendArray
from xarray.core import indexing

from workbench.io.catalog import Series, Skipped, header_kind, iter_headers
from workbench.io.dicomweb import DicomWeb, is_dicomweb_url
from workbench.io.display import DISPLAY_TABLES, DisplayTables
from workbench.io.errors import (
    InconsistentSeriesError,
    InvalidDicomError,
    NotAnImageError,
    PixelDataError,
    blaming,
)
from workbench.io.frames import FrameSource, check_decodable
from workbench.io.geometry import FrameInfo, frame_infos, stack_geometry
from workbench.io.headers import SERIES_KEYWORDS, InstanceHeader, read_header
from workbench.io.objects import not_an_image_message
from workbench.io.sources import Source
from workbench.io.wholearray import WholeReadArray

_COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"}
_INTEGER_DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64]


@dataclass(frozen=True)
class FramePlan:
    """How to turn stored values into the array's values (same for every frame)."""

    mode: str  # "stored", "rescale" or "lut"
    dtype: str
    frame_shape: tuple[int, ...]
    as_rgb: bool
    modality_lut: Dataset | None = None  # the (0028,3000) Modality LUT Sequence holder


class FrameStack(BackendArray):
    """A read-only ``(frame, y, x[, channel])`` array that decodes frames on demand.

    Picklable (files are named, never held open) and thread-safe (every read opens its own
    file handle). Supports numpy basic indexing and xarray's explicit indexers. A source is
    anything with a ``file`` (named in errors) and ``decode(index, as_rgb=...)`` giving the
    stored values of one of its frames: a :class:`~workbench.io.frames.FrameSource` for
    files, a :class:`~workbench.io.webseries.WebFrameSource` over DICOMweb.
    """

    def __init__(
        self,
        sources: Sequence[FrameSource],
        frames: Sequence[tuple[int, int, float, float]],
        plan: FramePlan,
    ) -> None:
        self.sources = list(sources)
        self.frames = list(frames)  # (source index, frame index in file, slope, intercept)
        self.plan = plan
        self.shape = (len(self.frames), *plan.frame_shape)
        self.dtype = np.dtype(plan.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, indexing.ExplicitIndexer):
            return indexing.explicit_indexing_adapter(
                key, self.shape, indexing.IndexingSupport.OUTER_1VECTOR, self._getitem
            )
        return self._getitem(key)

    def _getitem(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
        key = key + (slice(None),) * (self.ndim - len(key))
        frame_key, rest = key[0], key[1:]
        indices = np.arange(self.shape[0])[frame_key]
        if indices.ndim == 0:
            return self.read(int(indices))[rest]
        out = np.empty((len(indices), *np.empty(self.plan.frame_shape)[rest].shape), self.dtype)
        for n, i in enumerate(indices):
            out[n] = self.read(int(i))[rest]
        return out

    def read(self, i: int) -> np.ndarray:
        """Frame ``i`` of the stack, with the modality transform applied (unless raw)."""
        source_index, frame_index, _, _ = self.frames[i]
        source = self.sources[source_index]
        return self.values(i, source.decode(frame_index, as_rgb=self.plan.as_rgb), source)

    def values(self, i: int, stored: np.ndarray, source) -> np.ndarray:
        """Frame ``i``'s values from its ``stored`` values (decoded from ``source``, which
        errors name), with the modality transform applied (unless raw)."""
        _, frame_index, slope, intercept = self.frames[i]
        if stored.shape != self.plan.frame_shape:
            raise PixelDataError(
                f"frame {frame_index} decoded to shape {stored.shape}, expected "
                f"{self.plan.frame_shape}",
                source.file,
            )
        if self.plan.mode == "rescale":
            if slope == 1 and intercept == 0:
                return stored.astype(self.dtype, copy=False)
            if self.dtype.kind in "iu" and _in_range(slope, self.dtype):
                # The plan chose an integer type holding every result of an integral slope
                # and intercept: integer arithmetic wrapping modulo 2**bits lands exactly on
                # it, at a third of the float64 round trip's cost.
                values = stored.astype(self.dtype)
                if slope != 1:
                    values *= int(slope)
                values += int(intercept)  # in range: it is the value of a stored 0
                return values
            values = stored.astype(np.float64) * slope + intercept
            return values.astype(self.dtype)
        if self.plan.mode == "lut":
            with blaming(source.file):
                return apply_modality_lut(stored, self.plan.modality_lut).astype(self.dtype)
        return stored.astype(self.dtype, copy=False)


def _in_range(number: float, dtype: np.dtype) -> bool:
    info = np.iinfo(dtype)
    return info.min <= number <= info.max


# (0028,3000) Modality LUT Sequence and (0028,1053) Rescale Slope.
_MODALITY_LUT_SEQUENCE, _RESCALE_SLOPE = 0x00283000, 0x00281053


def _stored_range(ds: Dataset | InstanceHeader) -> tuple[int, int]:
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 16)
    if int(ds.get("PixelRepresentation") or 0) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _stored_dtype(ds: Dataset | InstanceHeader) -> np.dtype:
    bits = int(ds.get("BitsAllocated") or 16)
    if bits == 1:
        return np.dtype(np.uint8)
    size = {8: 1, 16: 2, 32: 4, 64: 8}.get(bits, 4)
    kind = "i" if int(ds.get("PixelRepresentation") or 0) == 1 else "u"
    return np.dtype(f"{kind}{size}")


def _narrowest_exact(lows: Sequence[float], highs: Sequence[float]) -> np.dtype:
    low, high = min(lows), max(highs)
    for dtype in _INTEGER_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.float64)


def _plan(first: InstanceHeader, infos: list[FrameInfo], raw: bool) -> FramePlan:
    # Values through the header's own converters: the data set's conversion of each element
    # costs several times more, and a frame rendered on its own pays it on every request.
    get = first.get
    photometric = first.text("PhotometricInterpretation").strip()
    samples = int(get("SamplesPerPixel") or 1)
    shape = (int(get("Rows")), int(get("Columns")), *((samples,) if samples > 1 else ()))
    keyword = first.pixel_keyword
    if keyword in ("FloatPixelData", "DoubleFloatPixelData"):
        dtype = "float32" if keyword == "FloatPixelData" else "float64"
        return FramePlan("stored", dtype, shape, as_rgb=False)
    stored = _stored_dtype(first)
    if raw or samples > 1 or photometric == "PALETTE COLOR":
        return FramePlan("stored", stored.str, shape, as_rgb=not raw and photometric in _COLOUR)
    if _MODALITY_LUT_SEQUENCE in first.elements and _RESCALE_SLOPE not in first.elements:
        ds = first.dataset
        lut = ds.ModalityLUTSequence[0]
        bits = int(lut.LUTDescriptor[2])
        holder = Dataset()
        holder.ModalityLUTSequence = ds.ModalityLUTSequence
        holder.PixelRepresentation = ds.get("PixelRepresentation", 0)
        holder.BitsStored = ds.get("BitsStored", bits)
        return FramePlan("lut", "uint8" if bits <= 8 else "uint16", shape, False, holder)
    low, high = _stored_range(first)
    integral = all(
        float(f.rescale_slope).is_integer() and float(f.rescale_intercept).is_integer()
        for f in infos
    )
    if integral:
        ends = [
            (
                low * f.rescale_slope + f.rescale_intercept,
                high * f.rescale_slope + f.rescale_intercept,
            )
            for f in infos
        ]
        dtype = _narrowest_exact([min(e) for e in ends], [max(e) for e in ends])
    else:
        # float32 holds every value of stored data up to 24 bits times a slope exactly
        # enough for display and statistics; wider stored data needs float64.
        bits = int(get("BitsStored") or 16)
        dtype = np.dtype(np.float32 if bits <= 24 else np.float64)
    return FramePlan("rescale", dtype.str, shape, as_rgb=False)


# --- choosing and checking the files --------------------------------------------------


@dataclass
class _Instance:
    """What building an array needs from one header; the pydicom dataset is let go, so a
    large series costs about a kilobyte per file while it is being opened."""

    file: object
    series_uid: str
    label: str  # modality and description, for messages
    layout: tuple
    sop_class: str
    transfer_syntax: object
    source: FrameSource | None
    frames: list[FrameInfo]


def _summarize(
    header: InstanceHeader,
    *,
    describe: bool = True,
    frame_source: Callable[[InstanceHeader], FrameSource] = FrameSource.from_header,
) -> _Instance:
    """What building the array needs from one header. Only with ``describe`` are the label
    and SOP class (for messages, which name a series by its first file) filled in: they
    cost as much as a tenth of reading the header. ``frame_source`` makes what reads the
    header's frames later."""
    with blaming(header.file):
        has_pixels = header.pixel_keyword is not None
        instance = _Instance(
            file=header.file,
            series_uid=header.text("SeriesInstanceUID"),
            label="",
            layout=tuple(header.text(k).strip() for k in _LAYOUT_KEYWORDS),
            sop_class="",
            transfer_syntax=header.transfer_syntax,
            source=frame_source(header) if has_pixels else None,
            frames=frame_infos(header) if has_pixels else [],
        )
        if describe:
            _describe_instance(instance, header)
        return instance


def _describe_instance(instance: _Instance, header: InstanceHeader) -> None:
    """Fill in the label and SOP class of ``instance``, for messages."""
    ds = header.dataset
    with blaming(header.file):
        sop = ds.get("SOPClassUID")
        instance.label = (
            f"{ds.get('Modality', '?')}, "
            f"{str(ds.get('SeriesDescription', '')) or 'no description'!r}"
        )
        instance.sop_class = str(getattr(sop, "name", sop) or "instance")


def _collect(source, series_uid: str | None) -> list[_Instance]:
    if isinstance(source, Series):
        if not source.is_image:
            sop_class = source.instances[0].text("SOPClassUID") if source.instances else ""
            message = not_an_image_message(source.kind, f"series {source.uid}", sop_class)
            raise NotAnImageError(message, kind=source.kind)
        return [_summarize(h, describe=i == 0) for i, h in enumerate(source.instances)]
    if isinstance(source, InstanceHeader):
        _refuse_object(source)
        return [_summarize(source)]
    groups: dict[str, list[_Instance]] = defaultdict(list)
    # Series of non-image objects (presentation states, reports...), by kind.
    objects: dict[str, tuple[str, InstanceHeader]] = {}
    images: set[str] = set()
    for item in iter_headers(source, progress=True, keywords=SERIES_KEYWORDS):
        if isinstance(item, Skipped):
            not_dicom = (
                isinstance(item.error, InvalidDicomError) and "not a DICOM file" in item.reason
            )
            # A folder or archive may hold notes and thumbnails; a damaged DICOM file is an
            # error, as is any file the user named explicitly.
            if not_dicom and _is_container(source):
                continue
            raise item.error if item.error else InvalidDicomError(item.reason, item.path)
        instance = _summarize(item, describe=False)  # errors on damaged values name the file
        if instance.series_uid not in groups:  # messages name a series by its first file
            _describe_instance(instance, item)
        groups[instance.series_uid].append(instance)
        kind = header_kind(item)
        if kind is None:
            images.add(instance.series_uid)
        else:
            objects.setdefault(instance.series_uid, (kind, item))
    if not groups:
        raise InvalidDicomError("no DICOM files found", _describe(source))
    for uid in images:
        objects.pop(uid, None)
    if series_uid is None and images:
        # Presentation states, reports and the like beside the images are not series to open.
        groups = {uid: members for uid, members in groups.items() if uid in images}
    if series_uid is not None:
        if series_uid not in groups:
            raise InconsistentSeriesError(
                f"no series {series_uid!r}; found: {_list_series(groups)}", _describe(source)
            )
        chosen = series_uid
    elif len(groups) > 1:
        raise InconsistentSeriesError(
            f"holds {len(groups)} series; pass series_uid= to pick one of: {_list_series(groups)}",
            _describe(source),
        )
    else:
        chosen = next(iter(groups))
    if chosen in objects:
        kind, header = objects[chosen]
        message = not_an_image_message(kind, f"series {chosen}", header.text("SOPClassUID"))
        raise NotAnImageError(message, header.file, kind=kind)
    return groups[chosen]


def _refuse_object(header: InstanceHeader) -> None:
    kind = header_kind(header)
    if kind is not None:
        message = not_an_image_message(kind, "the file", header.text("SOPClassUID"))
        raise NotAnImageError(message, header.file, kind=kind)


def _is_container(source) -> bool:
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        return os.path.isdir(path) or path.lower().endswith(".zip")
    return False


def _describe(source) -> str | None:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return None


def _list_series(groups: dict[str, list[_Instance]]) -> str:
    return "; ".join(
        f"{uid} ({members[0].label}, {len(members)} files)" for uid, members in groups.items()
    )


_LAYOUT_KEYWORDS = (
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "PixelRepresentation",
)


def _check_consistent(instances: list[_Instance]) -> None:
    layouts = Counter(i.layout for i in instances)
    if len(layouts) == 1:
        return
    differing = [k for i, k in enumerate(_LAYOUT_KEYWORDS) if len({lay[i] for lay in layouts}) > 1]
    examples = {}
    for instance in instances:
        examples.setdefault(instance.layout, instance.file)
    described = "; ".join(
        ", ".join(f"{k}={lay[_LAYOUT_KEYWORDS.index(k)]}" for k in differing)
        + f": {count} files (e.g. {examples[lay]})"
        for lay, count in layouts.most_common()
    )
    raise InconsistentSeriesError(
        f"the files cannot form one array because {', '.join(differing)} differ: {described}. "
        "Open each group separately (pass the list of its files)."
    )


# --- the public entry point -----------------------------------------------------------


def open_series(
    source: Source | Series,
    series_uid: str | None = None,
    *,
    raw: bool = False,
    dicomweb: DicomWeb | None = None,
) -> xr.DataArray:
    """Open one series as a lazy ``xarray.DataArray`` with one dask chunk per frame.

    Parameters
    ----------
    source : path, list of paths, ZIP archive, or catalog Series
        A folder, one file, a list of files, a ZIP archive, or a
        :class:`~workbench.io.catalog.Series` from :func:`~workbench.io.scan`.
    series_uid : str, optional
        Which series to open when ``source`` holds several.
    raw : bool
        Return stored values (no modality LUT / rescale, no YBR to RGB conversion).
    dicomweb : DicomWeb, optional
        How to reach the server when ``source`` is a DICOMweb series URL
        (``https://host/dicom-web/studies/{study}/series/{series}``): authentication,
        retries, connection limit, timeouts, frame cache (see
        :class:`~workbench.io.dicomweb.DicomWeb`). The array is then built from one WADO-RS
        metadata request, and each chunk fetches its frame (see :mod:`workbench.io.webseries`).

    Returns
    -------
    xarray.DataArray
        Dims ``("frame", "y", "x")`` plus ``"channel"`` for colour. Coords ``y``/``x`` in mm
        (pixel indices when there is no pixel spacing); per-frame ``position`` (mm along the
        slice normal, NaN without geometry), ``instance_number`` (-1 when absent),
        ``frame_number`` (1-based inside its file), ``sop_instance_uid``, ``sop_class_uid``,
        ``rescale_slope``/``rescale_intercept`` and ``window_center``/``window_width``
        (NaN when absent). ``attrs`` hold the main DICOM attributes, window presets,
        ``affine`` (4x4 list mapping ``(x, y, frame, 1)`` to LPS mm) and geometry flags
        (0 or 1), only values netCDF and Zarr store: an unknown one is absent, and
        ``to_netcdf`` / ``to_zarr`` work as they are. Values are modality values (HU for CT)
        in the narrowest dtype that holds them exactly; palette colour images keep their
        indices. The palette, VOI LUTs and ``raw`` are
        :class:`~workbench.io.display.DisplayTables` in ``encoding``; render with
        :func:`~workbench.io.display.display_attrs`.

    Raises
    ------
    InconsistentSeriesError
        Several series without ``series_uid``, or files of different sizes / layouts.
    PixelDataError
        Not an image (a presentation state, report, segmentation...: the message says which
        and what reads it), or pixel data shorter than needed. A folder holding one image
        series beside such objects opens that series.
    MissingCodecError, UnsupportedTransferSyntaxError
        The pixel data cannot be decoded with the installed packages.
    InvalidDicomError
        A file named in ``source`` is not DICOM or is damaged.
    """
    return series_array(build_series(source, series_uid, raw=raw, dicomweb=dicomweb))


def series_array(parts: SeriesParts) -> xr.DataArray:
    """The lazy DataArray of a series described by :func:`build_series`: one dask chunk per
    frame."""
    stack = parts.stack
    # Names joined and frames as one array tokenize several times faster than lists.
    files = "\0".join(str(s.file) for s in stack.sources)
    data = da.from_array(
        stack,
        chunks=(1, *stack.plan.frame_shape),
        name="dicom-" + tokenize(files, np.array(stack.frames), stack.plan),
        lock=False,
        asarray=False,
        fancy=False,
        meta=np.empty((0,) * stack.ndim, dtype=stack.dtype),
    )
    if parts.whole is not None:
        data = WholeReadArray.of(data, partial(parts.whole, stack))
    array = xr.DataArray(
        data, dims=parts.dims, coords=parts.coords, attrs=parts.attrs, name=parts.name
    )
    array.encoding.update(parts.encoding)
    return array


@dataclass(frozen=True)
class SeriesParts:
    """One series described without reading pixels: what its array is built from.

    :func:`open_series` wraps ``stack`` in dask, the xarray backend in a lazily indexed
    variable; both take the rest as they are.
    """

    stack: FrameStack
    dims: tuple[str, ...]
    coords: dict
    attrs: dict  # only values netCDF and Zarr store as attributes
    tables: DisplayTables
    name: str
    #: Reads every frame of ``stack`` at once, when that is cheaper than frame by frame
    #: (one request for a whole series over DICOMweb); a module-level function, so that
    #: arrays still pickle.
    whole: Callable[[FrameStack], np.ndarray] | None = None

    @property
    def encoding(self) -> dict:
        """The array's ``encoding``: where :func:`~workbench.io.display.display_attrs` finds
        the display tables."""
        return {DISPLAY_TABLES: self.tables}


def build_series(
    source: Source | Series,
    series_uid: str | None = None,
    *,
    raw: bool = False,
    dicomweb: DicomWeb | None = None,
) -> SeriesParts:
    """Read the headers of one series and describe it without reading pixels."""
    if is_dicomweb_url(source) or _is_web_series(source):
        from workbench.io.webseries import build_web_series  # imports this module

        return build_web_series(source, raw=raw, dicomweb=dicomweb)
    instances = _collect(source, series_uid)
    return build_from_instances(
        instances,
        lambda first: read_header(first.file, full=True, check_pixels=False),
        raw=raw,
        where=_describe(source),
    )


def build_from_headers(
    headers: Sequence[InstanceHeader],
    frame_source: Callable[[InstanceHeader], FrameSource],
    full_header: Callable[[InstanceHeader], InstanceHeader],
    *,
    raw: bool = False,
    where: str | None = None,
) -> SeriesParts:
    """Describe one series from headers read elsewhere (a DICOMweb server's metadata).

    Parameters
    ----------
    headers : sequence of InstanceHeader
        One per instance of the series.
    frame_source : callable
        Makes, from a header, what reads its frames (``file`` and ``decode``).
    full_header : callable
        The complete header of an instance (LUT data included), for the series' attributes
        and display tables, which come from the first image.
    raw : bool
        Stored values instead of modality values.
    where : str, optional
        What errors about the whole series name.
    """
    kinds = [header_kind(header) for header in headers]
    if headers and None not in kinds:  # presentation states, reports...: not images
        first = headers[0]
        what = f"series {first.text('SeriesInstanceUID')}"
        message = not_an_image_message(kinds[0], what, first.text("SOPClassUID"))
        raise NotAnImageError(message, first.file, kind=kinds[0])
    by_header = {}
    instances = []
    for i, header in enumerate(headers):
        instance = _summarize(header, describe=i == 0, frame_source=frame_source)
        by_header[id(instance)] = header
        instances.append(instance)
    return build_from_instances(
        instances, lambda first: full_header(by_header[id(first)]), raw=raw, where=where
    )


def _is_web_series(source) -> bool:
    """Whether ``source`` is a catalog series found by a DICOMweb search."""
    return (
        isinstance(source, Series)
        and bool(source.instances)
        and is_dicomweb_url(str(source.instances[0].file))
    )


def build_from_instances(
    instances: list[_Instance],
    full_header: Callable[[_Instance], InstanceHeader],
    *,
    raw: bool,
    where: str | None,
) -> SeriesParts:
    """Describe a series from the summaries of its instances; ``full_header`` gives the
    complete header of the first image."""
    with_pixels = [i for i in instances if i.source is not None]
    if not with_pixels:
        raise PixelDataError(
            f"no pixel data to open: the instance is a {instances[0].sop_class} "
            f"({instances[0].label}); it holds no image",
            instances[0].file if len(instances) == 1 else where,
        )
    without = [i for i in instances if i.source is None]
    instances = with_pixels
    _check_consistent(instances)
    for ts in sorted({i.transfer_syntax for i in instances}):
        check_decodable(ts, next(i.file for i in instances if i.transfer_syntax == ts))

    sources, frames, infos = [], [], []
    for source_index, instance in enumerate(instances):
        sources.append(instance.source)
        for frame_index, info in enumerate(instance.frames):
            frames.append((source_index, frame_index))
            infos.append(info)
    geometry = stack_geometry(infos)
    infos = [infos[i] for i in geometry.order]
    frames = [frames[i] for i in geometry.order]
    # The attributes and display tables are those of the first frame's instance, so that
    # they do not depend on the order the files (or a server's metadata) came in.
    first = full_header(instances[frames[0][0]])
    with blaming(first.file):
        plan = _plan(first, infos, raw)
    stack = FrameStack(
        sources,
        [
            (s, f, info.rescale_slope, info.rescale_intercept)
            for (s, f), info in zip(frames, infos, strict=True)
        ],
        plan,
    )
    dims = ("frame", "y", "x", "channel")[: stack.ndim]
    stored_photometric = str(first.dataset.get("PhotometricInterpretation", "")).strip()
    coords = _coords(infos, geometry, plan, stored_photometric)
    with blaming(first.file):
        attrs = _attrs(first, infos, geometry, plan, without)
        tables = _display_tables(first.dataset, raw)
        name = str(first.dataset.get("SeriesDescription") or "") or "pixels"
    return SeriesParts(stack, dims, coords, attrs, tables, name)


def _coords(infos: list[FrameInfo], geometry, plan: FramePlan, photometric: str) -> dict:
    rows, cols = plan.frame_shape[:2]
    spacing = infos[0].pixel_spacing
    y = np.arange(rows) * (spacing[0] if spacing else 1.0)
    x = np.arange(cols) * (spacing[1] if spacing else 1.0)

    def nan(value):
        return np.nan if value is None else value

    coords = {
        "y": ("y", y, {"units": "mm" if spacing else "pixel"}),
        "x": ("x", x, {"units": "mm" if spacing else "pixel"}),
        "position": (
            "frame",
            geometry.position,
            {"units": "mm", "long_name": "position along slice normal"},
        ),
        "instance_number": (
            "frame",
            np.array(
                [f.instance_number if f.instance_number is not None else -1 for f in infos],
                dtype=np.int64,
            ),
        ),
        "frame_number": ("frame", np.array([f.frame_number for f in infos], dtype=np.int64)),
        "sop_instance_uid": ("frame", np.array([f.sop_instance_uid for f in infos], dtype=object)),
        "sop_class_uid": ("frame", np.array([f.sop_class_uid for f in infos], dtype=object)),
        "rescale_slope": ("frame", np.array([f.rescale_slope for f in infos])),
        "rescale_intercept": ("frame", np.array([f.rescale_intercept for f in infos])),
        "window_center": ("frame", np.array([nan(f.window_center) for f in infos], dtype=float)),
        "window_width": ("frame", np.array([nan(f.window_width) for f in infos], dtype=float)),
    }
    if len(plan.frame_shape) == 3:
        if plan.as_rgb or photometric == "RGB":
            names = ["R", "G", "B"]
        elif photometric.startswith("YBR") and plan.frame_shape[2] == 3:
            names = ["Y", "Cb", "Cr"]  # raw=True keeps the stored colour space
        else:
            names = [str(i) for i in range(plan.frame_shape[2])]
        coords["channel"] = ("channel", names)
    return coords


def _integer_text(value) -> str:
    """An integer string value as its number is written (``"04"`` as ``"4"``), so that files
    and DICOM JSON (which has numbers) agree; other text as it is."""
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return "" if value is None else str(value)


def _multi(value) -> list | None:
    if value is None or value == "":
        return None
    values = list(value) if hasattr(value, "__iter__") and not isinstance(value, str) else [value]
    return values


def _aspect_ratio(value) -> list[int] | None:
    """(0028,0034) Pixel Aspect Ratio as ``[vertical, horizontal]``, if it is two positive
    integers (PS3.3 C.7.6.3.1.7)."""
    try:
        vertical, horizontal = (int(v) for v in value)
    except (TypeError, ValueError):
        return None
    return [vertical, horizontal] if vertical > 0 and horizontal > 0 else None


def _lut_array(item: Dataset) -> tuple[int, int, np.ndarray]:
    """(first mapped value, bits, data) of a LUT item, per PS3.3 C.11.1.1."""
    entries, first, bits = (int(v) for v in item.LUTDescriptor)
    entries = entries or 65536
    raw = item.LUTData
    if isinstance(raw, bytes):
        order = "<" if item.is_little_endian in (True, None) else ">"
        data = np.frombuffer(
            raw, dtype=f"{order}u2" if bits > 8 or len(raw) >= 2 * entries else "u1"
        )
    else:
        data = np.asarray(_multi(raw), dtype=np.int64)
    return first, bits, data[:entries].astype(np.uint16 if bits > 8 else np.uint8)


def _attrs(
    first: InstanceHeader,
    infos,
    geometry,
    plan: FramePlan,
    without_pixels: list[_Instance],
) -> dict:
    """The array's attributes, as netCDF and Zarr store them: an unknown value is left out
    (netCDF has no null) and a flag is 0 or 1 (nor booleans)."""
    ds = first.dataset
    info = infos[0]
    shown = display_values(first, info, plan)

    def text(keyword: str) -> str:
        value = ds.get(keyword)
        return "" if value is None else str(value)

    explanations = [str(v) for v in _multi(ds.get("WindowCenterWidthExplanation")) or []]
    attrs = {
        "Modality": text("Modality"),
        "PatientID": text("PatientID"),
        "PatientName": text("PatientName"),
        "StudyInstanceUID": text("StudyInstanceUID"),
        "SeriesInstanceUID": text("SeriesInstanceUID"),
        "SeriesDescription": text("SeriesDescription"),
        "SeriesNumber": _integer_text(ds.get("SeriesNumber")),
        "StudyDate": text("StudyDate"),
        "StudyDescription": text("StudyDescription"),
        "Manufacturer": text("Manufacturer"),
        "FrameOfReferenceUID": text("FrameOfReferenceUID"),
        "PhotometricInterpretation": shown["PhotometricInterpretation"],
        "StoredPhotometricInterpretation": shown["StoredPhotometricInterpretation"],
        "BitsStored": shown["BitsStored"],
        "BitsAllocated": int(ds.get("BitsAllocated") or 0),
        "PixelRepresentation": int(ds.get("PixelRepresentation") or 0),
        "PixelSpacing": list(info.pixel_spacing) if info.pixel_spacing else None,
        "PixelSpacingSource": info.spacing_source,
        "PixelAspectRatio": _aspect_ratio(ds.get("PixelAspectRatio")),
        "ImageOrientationPatient": list(info.orientation) if info.orientation else None,
        "SliceThickness": info.slice_thickness,
        "WindowCenter": shown["WindowCenter"],
        "WindowWidth": shown["WindowWidth"],
        "WindowCenterWidthExplanation": explanations,
        "VOILUTFunction": shown["VOILUTFunction"],
        "RescaleSlope": info.rescale_slope,
        "RescaleIntercept": info.rescale_intercept,
        "RescaleType": info.rescale_type or ("HU" if text("Modality") == "CT" else "US"),
        "PresentationLUTShape": shown["PresentationLUTShape"],
        "affine": geometry.affine.tolist(),
        "affine_index_order": ["x", "y", "frame"],
        "is_volume": int(geometry.is_volume),
        "gantry_tilt": geometry.gantry_tilt,
        "uneven_spacing": int(geometry.uneven_spacing),
        "slice_spacing": geometry.slice_spacing,
        "files_without_pixels": [str(i.file) for i in without_pixels],
    }
    return {key: value for key, value in attrs.items() if value is not None}


def display_values(first: InstanceHeader, info: FrameInfo, plan: FramePlan) -> dict:
    """What :func:`~workbench.io.display.render` reads from an array's attributes, besides
    the display tables: the photometric interpretation shown and stored, Bits Stored, the
    window presets (those of ``info``, the first frame, when the header has none at its top
    level), the VOI LUT Function and the Presentation LUT Shape of ``first``.

    One function for a series (:func:`build_from_instances`) and a file shown on its own
    (:mod:`workbench.io.preview`), so that both show a frame alike.
    """
    photometric = first.text("PhotometricInterpretation").strip()
    centers = list(first.floats("WindowCenter") or ())
    widths = list(first.floats("WindowWidth") or ())
    if not centers and info.window_center is not None and info.window_width is not None:
        centers, widths = [info.window_center], [info.window_width]
    return {
        "PhotometricInterpretation": "RGB" if plan.as_rgb else photometric,
        "StoredPhotometricInterpretation": photometric,
        "BitsStored": int(first.get("BitsStored") or first.get("BitsAllocated") or 0),
        "WindowCenter": centers,
        "WindowWidth": widths,
        "VOILUTFunction": first.text("VOILUTFunction") or "LINEAR",
        "PresentationLUTShape": first.text("PresentationLUTShape") or None,
    }


def _display_tables(ds: Dataset, raw: bool) -> DisplayTables:
    """The palette and VOI LUTs of the first image, as :func:`~workbench.io.display.render`
    uses them."""
    palette = bits = None
    if str(ds.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR":
        low, high = _stored_range(ds)
        indices = np.arange(max(low, 0), high + 1, dtype=np.int64)
        palette = apply_color_lut(indices.astype(_stored_dtype(ds)), ds)
        bits = 16 if palette.dtype.itemsize > 1 else 8
    luts = []
    for item in ds.get("VOILUTSequence") or []:
        first_mapped, lut_bits, data = _lut_array(item)
        explanation = str(item.get("LUTExplanation", ""))
        luts.append(
            {
                "first_mapped": first_mapped,
                "bits": lut_bits,
                "data": data,
                "explanation": explanation,
            }
        )
    return DisplayTables(raw=raw, palette=palette, palette_bits=bits, voi_luts=tuple(luts))
