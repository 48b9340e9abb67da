"""Lazy volumes over DICOMweb: the array from one metadata request, each frame on demand.

:func:`build_web_series` asks the server once for the series' metadata (WADO-RS
``.../series/{uid}/metadata``, DICOM JSON read by pydicom's ``Dataset.from_json``) and builds
the same description of the series as headers read from files give: the same dims, coords,
affine, attributes and display tables. Bulk data in the metadata (private blobs, LUTs) is
left on the server, except the LUTs of the first image, which the display mapping needs.

Each dask chunk then reads one frame through a :class:`WebFrameSource`: one WADO-RS
``.../frames/{n}`` request, asking for the stored (compressed) transfer syntax when an
installed decoder reads it (less traffic) and for Explicit VR Little Endian otherwise, and
decodes it with pydicom's pixel decoders, exactly as a frame read from a file. The array
computed as a whole comes instead from one series request (:mod:`workbench.io.webvolume`).
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pydicom
import xarray as xr
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
    RLELossless,
)

from workbench.io.catalog import Catalog, Series
from workbench.io.dicomweb import (
    DicomWeb,
    DicomWebError,
    Resource,
    dataset_from_json,
    media_parameters,
    multipart_parts,
)
from workbench.io.errors import (
    DicomIOError,
    InconsistentSeriesError,
    MissingCodecError,
    PixelDataError,
    UnsupportedTransferSyntaxError,
)
from workbench.io.frames import check_decodable
from workbench.io.headers import HEADER_KEYWORDS, SERIES_KEYWORDS, InstanceHeader
from workbench.io.objects import object_kind
from workbench.io.series import SeriesParts, build_from_headers, series_array
from workbench.io.webvolume import read_series

_PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
# Bulk data the array needs: LUT Data (modality and VOI LUTs), the palette's descriptors'
# data and its segmented form.
_NEEDED_BULK_DATA = {
    0x00283006,
    *(0x00281201, 0x00281202, 0x00281203),
    *(0x00281221, 0x00281222, 0x00281223),
}
_TRANSFER_SYNTAX_UID, _AVAILABLE_SYNTAXES = 0x00020010, 0x00083002
#: The media type of frames in each compressed transfer syntax (PS3.18 table 8.7.3-5).
_FRAME_MEDIA_TYPES = {
    **dict.fromkeys(JPEGTransferSyntaxes, "image/jpeg"),
    **dict.fromkeys(JPEGLSTransferSyntaxes, "image/jls"),
    **dict.fromkeys(JPEG2000TransferSyntaxes, "image/jp2"),
    RLELossless: "image/dicom-rle",
}
_FRAMES = 'multipart/related; type="{}"; transfer-syntax={}'
_UNCOMPRESSED = _FRAMES.format("application/octet-stream", ExplicitVRLittleEndian)
_AS_STORED = _FRAMES.format("application/octet-stream", "*")
# Series whose server failed to send a frame as stored, in this process.
_STORED_REFUSED: set[str] = set()


@dataclass(frozen=True)
class WebInstance:
    """One instance on a DICOMweb server: where its frames are, and how to ask for them.

    Stands where a file would be (``header.file``, ``source.file``); ``str()`` is its URL.
    """

    url: str
    client: DicomWeb = field(compare=False, repr=False)

    def __str__(self) -> str:
        return self.url

    @property
    def series_url(self) -> str:
        return self.url.rsplit("/instances/", 1)[0]


@dataclass(frozen=True)
class WebFrameSource:
    """Reads the frames of one instance with WADO-RS; small and picklable.

    ``stored_syntax`` is the instance's transfer syntax when the metadata tells it; frames
    are asked for in it when a local decoder reads it, otherwise uncompressed. When the
    metadata does not tell, the server is asked for the frame as stored, and a frame in a
    syntax nothing here decodes is asked for again, uncompressed.
    """

    file: WebInstance
    number_of_frames: int
    stored_syntax: str | None
    frame_shape: tuple[int, ...]
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    planar_configuration: int
    pixel_keyword: str = "PixelData"

    @classmethod
    def from_header(cls, header: InstanceHeader) -> WebFrameSource:
        get = header.get
        samples = int(get("SamplesPerPixel") or 1)
        shape = (int(get("Rows") or 0), int(get("Columns") or 0))
        bits = int(get("BitsAllocated") or 0)
        stored = _stored_syntax(header)
        return cls(
            file=header.file,
            number_of_frames=header.number_of_frames,
            stored_syntax=stored,
            frame_shape=(*shape, samples) if samples > 1 else shape,
            photometric=header.text("PhotometricInterpretation").strip(),
            bits_allocated=bits,
            bits_stored=int(get("BitsStored") or bits),
            pixel_representation=int(get("PixelRepresentation") or 0),
            planar_configuration=int(get("PlanarConfiguration") or 0),
            pixel_keyword=header.pixel_keyword or "PixelData",
        )

    @property
    def accept(self) -> str:
        """The ``Accept`` header frames are asked for with."""
        if self.stored_syntax is None:
            return _AS_STORED
        syntax = UID(self.stored_syntax)
        if syntax in _FRAME_MEDIA_TYPES and decodable(syntax):
            return _FRAMES.format(_FRAME_MEDIA_TYPES[syntax], syntax)
        return _UNCOMPRESSED

    def frame_url(self, index: int) -> str:
        return f"{self.file.url}/frames/{index + 1}"

    def fetch(self, index: int, accept: str | None = None) -> tuple[bytes, UID]:
        """The encoded frame ``index`` (0-based) and its transfer syntax, as the server sent it.

        Raises
        ------
        DicomWebError
            The request failed, or the answer is not one frame in a multipart answer.
        """
        accept = accept or self.accept
        url = self.frame_url(index)
        client = self.file.client
        cached = client.cache.get(url, accept) if client.cache is not None else None
        if cached is not None:
            return cached[0], UID(cached[1])
        response = client.get(url, accept, compressed=False)
        parts = multipart_parts(response)
        if len(parts) != 1:
            raise DicomWebError(f"expected one frame in the answer, got {len(parts)} parts", url)
        headers, data = parts[0]
        syntax = UID(
            media_parameters(headers.get("content-type", "")).get("transfer-syntax")
            or media_parameters(accept).get("transfer-syntax", "*").replace("*", "")
            or ExplicitVRLittleEndian
        )
        if client.cache is not None:
            client.cache.put(url, accept, data, str(syntax))
        return data, syntax

    def decode(self, index: int, *, as_rgb: bool = True) -> np.ndarray:
        """Stored values of frame ``index`` (0-based), fetched and decoded.

        Raises
        ------
        DicomWebError
            The frame could not be fetched.
        PixelDataError
            The frame the server sent cannot be decoded (or is not as large as the image).
        """
        if not 0 <= index < self.number_of_frames:
            raise PixelDataError(
                f"frame index {index} out of range: the instance has {self.number_of_frames} "
                "frames",
                self.file,
            )
        data, syntax = self._fetch_decodable(index)
        try:
            return self._decode(data, syntax, as_rgb)
        except DicomIOError:
            raise
        except Exception as exc:
            raise PixelDataError(
                f"cannot decode frame {index + 1} sent as {syntax.name}: {exc}",
                self.frame_url(index),
            ) from exc

    def _fetch_decodable(self, index: int) -> tuple[bytes, UID]:
        """The frame in a transfer syntax decoded here: as stored when possible, else asked
        for again uncompressed (and the series' later frames asked for uncompressed at once,
        once a server failed to send one as stored)."""
        accept = self.accept
        series = self.file.series_url
        if accept == _AS_STORED and series in _STORED_REFUSED:
            accept = _UNCOMPRESSED
        if accept == _UNCOMPRESSED:
            return self.fetch(index, accept)
        try:
            data, syntax = self.fetch(index, accept)
        except DicomWebError as exc:
            if exc.status is None or exc.status in (401, 403, 404):
                raise
            # Some servers fail to send some syntaxes as stored (Orthanc's plugin answers
            # 500 for big-endian frames) yet transcode them.
            _STORED_REFUSED.add(series)
            return self.fetch(index, _UNCOMPRESSED)
        if decodable(syntax) or syntax == DeflatedExplicitVRLittleEndian:
            return data, syntax
        return self.fetch(index, _UNCOMPRESSED)

    def _decode(self, data: bytes, syntax: UID, as_rgb: bool) -> np.ndarray:
        if syntax == DeflatedExplicitVRLittleEndian:
            syntax = ExplicitVRLittleEndian  # a frame's bytes are never deflated by themselves
        check_decodable(syntax, self.file)
        samples = self.frame_shape[2] if len(self.frame_shape) == 3 else 1
        photometric = self.photometric
        if syntax.is_encapsulated:
            data = encapsulate([data])
        elif photometric == "YBR_FULL_422" and len(data) >= self._full_frame_bytes(samples):
            # Sent at full resolution: servers that decode frames for an uncompressed answer
            # (DCMTK's decoders, ours) give 4:2:2 colour as RGB.
            photometric = "RGB"
        array, _ = get_decoder(syntax).as_array(
            data,
            raw=not as_rgb,
            rows=self.frame_shape[0],
            columns=self.frame_shape[1],
            samples_per_pixel=samples,
            photometric_interpretation=photometric,
            bits_allocated=self.bits_allocated,
            bits_stored=self.bits_stored,
            pixel_representation=self.pixel_representation,
            planar_configuration=self.planar_configuration,
            number_of_frames=1,
            pixel_keyword=self.pixel_keyword,
        )
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        return array

    def _full_frame_bytes(self, samples: int) -> int:
        rows, columns = self.frame_shape[:2]
        return rows * columns * samples * max(self.bits_allocated // 8, 1)


def decodable(syntax: UID) -> bool:
    """Whether frames in ``syntax`` are decoded here."""
    try:
        check_decodable(syntax)
    except (MissingCodecError, UnsupportedTransferSyntaxError):
        return False
    return True


def _stored_syntax(header: InstanceHeader) -> str | None:
    """The instance's transfer syntax, when the metadata says it: (0002,0010), or the one
    (0008,3002) Available Transfer Syntax UID names."""
    for tag in (_TRANSFER_SYNTAX_UID, _AVAILABLE_SYNTAXES):
        element = header.elements.get(tag)
        value = element.value if element is not None else None
        if value is not None and not isinstance(value, str):  # a multi-valued element
            value = value[0] if len(value) else None
        if value:
            return str(value).strip()
    return None


# --- headers from DICOM JSON ----------------------------------------------------------


def _instance_url(item: Mapping, root: str) -> str:
    def first(tag: str) -> str:
        values = item.get(tag, {}).get("Value") or [""]
        return str(values[0])

    study, series, instance = first("0020000D"), first("0020000E"), first("00080018")
    if not (study and series and instance):
        raise DicomWebError("a DICOM JSON object lacks its Study, Series or SOP Instance UID", root)
    return f"{root}/studies/{study}/series/{series}/instances/{instance}"


def web_header(
    item: Mapping, root: str, client: DicomWeb, *, bulk_data=None, keep=None
) -> InstanceHeader:
    """The header of one instance from its DICOM JSON object (QIDO-RS or WADO-RS metadata).

    The transfer syntax given is the one frames will arrive in when the stored one is unknown
    or cannot be decoded here: Explicit VR Little Endian. ``keep`` (tags as DICOM JSON
    writes them) limits the header to those attributes: pydicom makes each element of the
    JSON in Python, which for a whole series' metadata takes longer than the request.
    """
    url = _instance_url(item, root)
    file = WebInstance(url, client)
    if keep is not None:
        item = {tag: value for tag, value in item.items() if tag in keep}
    try:
        dataset = dataset_from_json(dict(item), bulk_data)
    except DicomIOError:
        raise
    except Exception as exc:
        raise DicomWebError(f"damaged DICOM JSON ({type(exc).__name__}: {exc})", url) from exc
    # Bulk data (LUTs, palettes) comes as Explicit VR Little Endian values.
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    pixel_keyword = next((k for t, k in _PIXEL_TAGS.items() if t in dataset), None)
    if pixel_keyword is None and "Rows" in dataset:  # servers may leave pixel data out
        pixel_keyword = "PixelData"
    if pixel_keyword is None and "Rows" not in dataset:
        # A search answer names no pixel attributes: the SOP class says whether it is an image.
        sop_class = str(dataset.get("SOPClassUID", ""))
        if sop_class and object_kind(sop_class, True) is None and "Image" in UID(sop_class).name:
            pixel_keyword = "PixelData"
    header = InstanceHeader.from_dataset(
        file, dataset, ExplicitVRLittleEndian, False, pixel_keyword, None, None
    )
    header.read_encoding = (False, True)
    stored = _stored_syntax(header)
    if stored is not None and decodable(UID(stored)):
        header.transfer_syntax = UID(stored)
    return header


def _lut_fetcher(client: DicomWeb):
    def bulk_data(tag: str, vr: str, uri: str) -> bytes | None:
        return client.bulk(uri) if int(tag, 16) in _NEEDED_BULK_DATA else None

    return bulk_data


def _lacks_lut_descriptors(dataset) -> bool:
    """Whether the JSON left out LUT descriptors the display needs (some servers drop the
    US-or-SS elements, such as (0028,1101) Red Palette Color LUT Descriptor)."""
    palette = str(dataset.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR"
    if palette and "RedPaletteColorLookupTableDescriptor" not in dataset:
        return True
    items = [*(dataset.get("VOILUTSequence") or []), *(dataset.get("ModalityLUTSequence") or [])]
    return any("LUTDescriptor" not in item or "LUTData" not in item for item in items)


def _header_of_instance(header: InstanceHeader) -> InstanceHeader:
    """``header`` read again from the instance itself (WADO-RS, as stored): one more request,
    only for a series whose metadata lacks what its display needs."""
    instance = header.file
    response = instance.client.get(
        instance.url,
        'multipart/related; type="application/dicom"; transfer-syntax=*',
        compressed=False,
    )
    parts = multipart_parts(response)
    if not parts:
        raise DicomWebError("the answer holds no instance", instance.url)
    try:
        dataset = pydicom.dcmread(io.BytesIO(parts[0][1]), stop_before_pixels=True)
    except Exception as exc:
        raise DicomWebError(f"the instance sent is not DICOM: {exc}", instance.url) from exc
    full = InstanceHeader.from_dataset(
        instance, dataset, header.transfer_syntax, False, header.pixel_keyword, None, None
    )
    full.read_encoding = dataset.original_encoding
    return full


# --- series, studies and searches ------------------------------------------------------


def dicomweb_client(dicomweb=None) -> DicomWeb:
    """``dicomweb`` as a :class:`DicomWeb`: as it is, or wrapping a ``requests.Session`` or
    ``dicomweb_client.DICOMwebClient``; a default one when ``None``."""
    if dicomweb is None:
        return DicomWeb()
    if isinstance(dicomweb, DicomWeb):
        return dicomweb
    return DicomWeb(session=dicomweb)


#: What each instance's header keeps for building a series (the first image's is read in
#: full): what files give (``SERIES_KEYWORDS``), and what tells the pixels and syntax.
_SERIES_TAGS = frozenset(
    [f"{tag_for_keyword(k):08X}" for k in (*SERIES_KEYWORDS, "StudyInstanceUID")]
    + [f"{tag:08X}" for tag in (*_PIXEL_TAGS, _TRANSFER_SYNTAX_UID, _AVAILABLE_SYNTAXES)]
)


def _parts_of(items: list[dict], root: str, client: DicomWeb, raw: bool, where: str) -> SeriesParts:
    headers = [web_header(item, root, client, keep=_SERIES_TAGS) for item in items]
    by_url = {header.file.url: item for header, item in zip(headers, items, strict=True)}

    def full_header(header: InstanceHeader) -> InstanceHeader:
        # The first image's LUTs and palette, which the JSON may only point to.
        full = web_header(by_url[header.file.url], root, client, bulk_data=_lut_fetcher(client))
        if _lacks_lut_descriptors(full.dataset):
            return _header_of_instance(full)
        return full

    parts = build_from_headers(
        headers, WebFrameSource.from_header, full_header, raw=raw, where=where
    )
    if _reads_whole_series(parts.stack.sources):
        parts = replace(parts, whole=read_series)
    return parts


def _reads_whole_series(sources: Sequence[WebFrameSource]) -> bool:
    """Whether the whole array can come from one series retrieve: its instances are of one
    series, none known to be stored in a syntax nothing here decodes, and there is no frame
    cache (which frames fetched one by one are kept in)."""
    client, series = sources[0].file.client, sources[0].file.series_url
    return (
        client.cache is None
        and all(s.file.client is client and s.file.series_url == series for s in sources)
        and all(s.stored_syntax is None or decodable(UID(s.stored_syntax)) for s in sources)
    )


def build_web_series(source, *, raw: bool = False, dicomweb=None) -> SeriesParts:
    """Describe a series on a DICOMweb server from one WADO-RS metadata request.

    ``source`` is the series URL, or a :class:`~workbench.io.catalog.Series` from
    :func:`scan_dicomweb` (whose instances know their server).
    """
    if isinstance(source, Series):
        instance = source.instances[0].file
        url = instance.series_url
        client = instance.client if dicomweb is None else dicomweb_client(dicomweb)
    else:
        url, client = str(source), dicomweb_client(dicomweb)
    resource = Resource.parse(url)
    if resource.series is None or resource.instance is not None:
        raise DicomWebError(
            "not a series URL: open a study with open_study(), a series with "
            "'.../studies/<StudyInstanceUID>/series/<SeriesInstanceUID>'",
            url,
        )
    items = client.json(f"{resource.url}/metadata")
    if not items:
        raise DicomWebError("the server holds no instance of this series", resource.url)
    return _parts_of(items, resource.root, client, raw, resource.url)


def open_web_study(url: str, *, raw: bool = False, dicomweb=None) -> dict[str, xr.DataArray]:
    """Each image series of a study on a DICOMweb server, from one WADO-RS study-metadata
    request; keyed by Series Instance UID in (Series Number, UID) order."""
    client = dicomweb_client(dicomweb)
    resource = Resource.parse(url)
    if resource.series is not None:
        raise DicomWebError("not a study URL: open a series with open_series()", url)
    items = client.json(f"{resource.url}/metadata")
    if not items:
        raise InconsistentSeriesError("the server holds no instance of this study", resource.url)
    groups: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        groups[(item.get("0020000E", {}).get("Value") or [""])[0]].append(item)
    catalog = Catalog()
    for members in groups.values():
        catalog.add(web_header(members[0], resource.root, client))
    image_series = sorted(
        (s for s in catalog.series),
        key=lambda s: (s.number if s.number is not None else 1 << 31, s.uid),
    )
    return {
        s.uid: series_array(_parts_of(groups[s.uid], resource.root, client, raw, resource.url))
        for s in image_series
    }


#: What a search asks the server to return for each instance: what the catalog shows and
#: what tells an image from other objects. Sequences are left out (servers rarely return
#: them in search answers).
_SEARCH_TAGS = tuple(
    f"{tag_for_keyword(k):08X}" for k in HEADER_KEYWORDS if not k.endswith("Sequence")
)


def scan_dicomweb(root: str, *, dicomweb=None, **query: str) -> Catalog:
    """Catalog what a DICOMweb server holds from a QIDO-RS instance search; no pixel data,
    no metadata request.

    Parameters
    ----------
    root : str
        The service root, e.g. ``https://host/dicom-web``.
    dicomweb : DicomWeb, requests.Session or dicomweb_client.DICOMwebClient, optional
        How to reach the server.
    **query
        Search keys by keyword or tag, e.g. ``PatientID="123"``, ``Modality="CT"``,
        ``StudyDate="20200101-20201231"``; QIDO-RS matching (wildcards, ranges) applies.

    Returns
    -------
    Catalog
        Patients, studies, series of the matching instances. Its series open with
        :func:`~workbench.io.open_series` (one metadata request each).
    """
    client = dicomweb_client(dicomweb)
    root = root.rstrip("/")
    if not root.startswith(("http://", "https://")):
        raise DicomWebError("not a DICOMweb service root URL", root)
    params = {**query, "includefield": ",".join(_SEARCH_TAGS)}
    catalog = Catalog()
    for item in client.json(f"{root}/instances", params=params):
        catalog.add(web_header(item, root, client))
    return catalog
