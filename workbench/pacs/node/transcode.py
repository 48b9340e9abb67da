"""Pick the transfer syntax to send a stored instance with, re-encoding only when needed.

Stored files are sent as they are whenever the peer accepted their transfer syntax. When it
did not (a viewer that only takes uncompressed data, say), the pixel data is decoded with
pydicom's pixel backends and, if the peer only accepted compressed syntaxes, re-encoded with
pydicom's encoders — lossless ones first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from pydicom import dcmread
from pydicom import uid as dicom_uid
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder, get_encoder
from pynetdicom.presentation import PresentationContext

from .contexts import NATIVE_OUTPUT, is_lossless

LOGGER = logging.getLogger(__name__)

_LITTLE_ENDIAN_NATIVE = {dicom_uid.ExplicitVRLittleEndian, dicom_uid.ImplicitVRLittleEndian}


class TranscodeError(RuntimeError):
    """No accepted presentation context can carry the instance, even after re-encoding."""


def offered_syntaxes(
    contexts: Iterable[PresentationContext], sop_class: str, *, as_scu: bool = True
) -> list[str]:
    """Transfer syntaxes accepted for ``sop_class`` on contexts where we send C-STOREs."""
    found = []
    for context in contexts:
        if context.abstract_syntax != sop_class:
            continue
        if as_scu and not context.as_scu:
            continue
        if context.transfer_syntax:
            found.append(str(context.transfer_syntax[0]))
    return found


def prepare_for_send(path: Path, contexts: Iterable[PresentationContext]) -> Dataset:
    """Read the stored file and make its transfer syntax one the peer accepted.

    Raises
    ------
    TranscodeError
        If the SOP class was not accepted at all, or no accepted syntax can be produced.
    """
    ds = dcmread(path)
    sop_class = str(ds.file_meta.MediaStorageSOPClassUID)
    stored = dicom_uid.UID(str(ds.file_meta.TransferSyntaxUID))
    offered = offered_syntaxes(contexts, sop_class)
    if not offered:
        raise TranscodeError(
            f"{path.name}: the peer accepted no presentation context for SOP class "
            f"{sop_class} ({dicom_uid.UID(sop_class).name})"
        )
    if stored in offered:
        return ds
    native = [syntax for syntax in NATIVE_OUTPUT if syntax in offered]
    if native:
        _to_native(ds, stored, native[0])
        return ds
    return _to_compressed(ds, stored, offered, path)


def can_transcode(stored: str, target: str) -> bool:
    """Whether :func:`transcode` can turn a file stored in ``stored`` into ``target``: a
    little-endian native target from any syntax pydicom decodes here, a compressed one when
    an encoder for it is installed too."""
    stored_uid, target_uid = dicom_uid.UID(stored), dicom_uid.UID(target)
    if stored_uid == target_uid:
        return True
    if not target_uid.is_transfer_syntax or not stored_uid.is_transfer_syntax:
        return False
    if target_uid not in _LITTLE_ENDIAN_NATIVE and not target_uid.is_compressed:
        return False  # big endian and deflate are not produced
    if stored_uid.is_compressed:
        try:
            if not get_decoder(stored_uid).is_available:
                return False
        except NotImplementedError:
            return False
    if target_uid.is_compressed:
        try:
            return get_encoder(target_uid).is_available
        except NotImplementedError:
            return False
    return True


def transcode(ds: Dataset, target: str) -> Dataset:
    """Re-encode a dataset read from a stored file in ``target``, in place; same instance.

    Raises
    ------
    TranscodeError
        If ``target`` cannot be produced (see :func:`can_transcode`) or the encoder refuses
        this image (a bit depth or photometric interpretation it does not take).
    """
    stored = dicom_uid.UID(str(ds.file_meta.TransferSyntaxUID))
    if stored == target:
        return ds
    if not can_transcode(stored, target):
        raise TranscodeError(
            f"An instance stored as {stored.name} cannot be re-encoded as "
            f"{dicom_uid.UID(target).name} here"
        )
    if "PixelData" not in ds and not dicom_uid.UID(target).is_compressed:
        ds.file_meta.TransferSyntaxUID = dicom_uid.UID(target)
        return ds
    if dicom_uid.UID(target).is_compressed:
        try:
            if stored.is_compressed:
                ds.decompress(generate_instance_uid=False)
            ds.compress(target, generate_instance_uid=False)
        except Exception as exc:
            raise TranscodeError(
                f"Cannot encode the instance as {dicom_uid.UID(target).name}: {exc}"
            ) from exc
        return ds
    _to_native(ds, stored, target)
    return ds


def _to_native(ds: Dataset, stored: dicom_uid.UID, target: str) -> None:
    """Make ``ds`` little-endian native; pynetdicom encodes it implicit/explicit as agreed."""
    if stored.is_compressed:
        # Same image, same instance: keep the SOP Instance UID (pydicom would make a new one).
        ds.decompress(generate_instance_uid=False)
    elif stored not in _LITTLE_ENDIAN_NATIVE and "PixelData" in ds:
        # Big endian: the raw OW bytes are in the wrong order for a little-endian encoding.
        array = ds.pixel_array
        ds.PixelData = array.astype(array.dtype.newbyteorder("<")).tobytes()
        if int(ds.get("SamplesPerPixel") or 1) > 1:
            ds.PlanarConfiguration = 0  # pixel_array interleaves the colour planes
    ds.file_meta.TransferSyntaxUID = dicom_uid.UID(target)
    LOGGER.info(
        "Sending %s as %s (stored as %s)",
        ds.get("SOPInstanceUID", "?"),
        dicom_uid.UID(target).name,
        stored.name,
    )


def _to_compressed(ds: Dataset, stored: dicom_uid.UID, offered: list[str], path: Path) -> Dataset:
    for syntax in sorted(offered, key=lambda syntax: not is_lossless(syntax)):
        try:
            encoder = get_encoder(syntax)
        except NotImplementedError:
            continue
        if not encoder.is_available:
            continue
        try:
            if stored.is_compressed:
                ds.decompress(generate_instance_uid=False)
            ds.compress(syntax, generate_instance_uid=False)
        except Exception as exc:  # an encoder can refuse a bit depth or photometric
            LOGGER.info("Cannot encode %s as %s: %s", path.name, dicom_uid.UID(syntax).name, exc)
            continue
        return ds
    names = ", ".join(dicom_uid.UID(syntax).name for syntax in offered)
    raise TranscodeError(
        f"{path.name}: stored as {stored.name}; the peer only accepted {names}, "
        "none of which pydicom can encode here"
    )
