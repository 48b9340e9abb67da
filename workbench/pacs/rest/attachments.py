"""``/{level}/{id}/attachments``: the files a resource has, as Orthanc's REST API lists them.

An instance has one attachment, its DICOM file (``dicom``, content type 1); other levels have
none. The store keeps files as received, never compressed, so the compressed and
uncompressed views of an attachment are the same bytes. Orthanc computes an attachment's
MD5 on reception; we compute it from the file when first asked (files never change once
stored, so it is kept per path).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from ..errors import PacsError, UnknownResourceError
from ..index import Index
from ..tags import LEVELS, PLURAL
from .deps import flag, get_index, index_of

#: Orthanc's content type of the DICOM file, and the name it is listed by.
DICOM = 1
DICOM_NAME = "dicom"
#: Content types Orthanc names (the others are given by number, user ones from 1024).
NAMED_TYPES = {"dicom": 1, "dicom-until-pixel-data": 2}
FIRST_USER_TYPE = 1024
#: What ``GET .../attachments/{name}`` lists, as Orthanc 1.10 answers.
OPERATIONS = ["compress", "compressed-data", "compressed-md5", "compressed-size", "data",
              "info", "is-compressed", "md5", "size", "uncompress", "verify-md5",
              "uuid"]  # fmt: skip


class InexistentItemError(PacsError):
    """An attachment name that is neither a known content type nor a number (Orthanc: 404,
    "Accessing an inexistent item")."""

    http_status = 404
    orthanc_status = 7


class ReadOnlyAttachmentError(PacsError):
    """The DICOM file of an instance is not replaced or deleted through its attachment."""

    http_status = 403


class CorruptedFileError(PacsError):
    """A stored file no longer matches what was received."""

    http_status = 500
    orthanc_status = 20


class NotKeptError(PacsError):
    """What this server does not keep: compressed files (viewers and pydicom read them in
    place) and user attachments (Orthanc's content types from 1024)."""

    http_status = 501


def content_type(name: str) -> int:
    """The content type an attachment name stands for (``dicom`` → 1, ``"1025"`` → 1025)."""
    if name in NAMED_TYPES:
        return NAMED_TYPES[name]
    if name.isdigit():
        return int(name)
    raise InexistentItemError(f"No attachment type is called {name!r}")


@lru_cache(maxsize=4096)
def file_md5(path: Path) -> str:
    """The MD5 of a stored file, in hex (stored files never change, so it is kept)."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class DicomAttachment:
    """The DICOM file of one instance, as Orthanc describes an attachment."""

    def __init__(self, index: Index, instance_id: str) -> None:
        info = index.resource("Instance", instance_id)
        self.instance_id = instance_id
        self.path = index.instance_path(instance_id)
        self.uuid: str = info["FileUuid"]
        self.size: int = info["FileSize"]
        self.md5 = file_md5(self.path)

    @property
    def etag(self) -> str:
        # Orthanc's "revision-md5"; the DICOM file is never rewritten, so always revision 0.
        return f'"0-{self.md5}"'

    def info(self) -> dict[str, Any]:
        return {"CompressedMD5": self.md5, "CompressedSize": self.size, "ContentType": DICOM,
                "UncompressedMD5": self.md5, "UncompressedSize": self.size,
                "Uuid": self.uuid}  # fmt: skip

    def verify(self) -> None:
        """Check the file against what was recorded on reception (its size: no MD5 is kept
        then), as Orthanc's ``verify-md5`` checks its attachments."""
        actual = self.path.stat().st_size
        if actual != self.size:
            raise CorruptedFileError(f"The file of instance {self.instance_id} holds {actual} "
                                     f"bytes, {self.size} were received")  # fmt: skip


def dicom_attachment(index: Index, level: str, resource_id: str, name: str) -> DicomAttachment:
    """The attachment ``name`` of a resource, or the 404 Orthanc answers."""
    kind = content_type(name)
    index.resource(level, resource_id)  # 404 for an unknown resource first
    if level != "Instance" or kind != DICOM:
        raise UnknownResourceError("Attachment", f"{name} of {level.lower()} {resource_id}")
    return DicomAttachment(index, resource_id)


def attachments_router(level: str) -> APIRouter:
    """The attachment routes of one level."""
    router = APIRouter(prefix=f"/{PLURAL[level]}/{{resource_id}}/attachments",
                       tags=[PLURAL[level]])  # fmt: skip

    def attachment(request: Request, resource_id: str, name: str) -> DicomAttachment:
        return dicom_attachment(index_of(request), level, resource_id, name)

    def text(found: DicomAttachment, value: Any) -> PlainTextResponse:
        return PlainTextResponse(str(value), headers={"ETag": found.etag})

    @router.get("", summary="Names of the attachments (?full: name → content type)")
    def listing(resource_id: str, full: str | None = Query(None),
                index: Index = Depends(get_index)) -> Any:  # fmt: skip
        index.resource(level, resource_id)
        names = {DICOM_NAME: DICOM} if level == "Instance" else {}
        return names if flag(full) else list(names)

    @router.get("/{name}", summary="What can be asked of an attachment")
    def operations(resource_id: str, name: str, request: Request) -> JSONResponse:
        found = attachment(request, resource_id, name)
        return JSONResponse(OPERATIONS, headers={"ETag": found.etag})

    @router.get("/{name}/data", summary="The attachment's bytes")
    @router.get("/{name}/compressed-data", summary="The bytes as stored (never compressed)")
    def data(resource_id: str, name: str, request: Request) -> FileResponse:
        found = attachment(request, resource_id, name)
        return FileResponse(found.path, media_type="application/dicom",
                            headers={"ETag": found.etag})  # fmt: skip

    @router.get("/{name}/md5", response_class=PlainTextResponse, summary="MD5 of the bytes")
    @router.get("/{name}/compressed-md5", response_class=PlainTextResponse,
                summary="MD5 of the bytes as stored")  # fmt: skip
    def md5(resource_id: str, name: str, request: Request) -> Response:
        found = attachment(request, resource_id, name)
        return text(found, found.md5)

    @router.get("/{name}/size", response_class=PlainTextResponse, summary="Size in bytes")
    @router.get("/{name}/compressed-size", response_class=PlainTextResponse,
                summary="Size in bytes as stored")  # fmt: skip
    def size(resource_id: str, name: str, request: Request) -> Response:
        found = attachment(request, resource_id, name)
        return text(found, found.size)

    @router.get("/{name}/is-compressed", response_class=PlainTextResponse,
                summary="1 if stored compressed (never: 0)")  # fmt: skip
    def is_compressed(resource_id: str, name: str, request: Request) -> Response:
        return text(attachment(request, resource_id, name), 0)

    @router.get("/{name}/uuid", response_class=PlainTextResponse,
                summary="The stored file's UUID (Orthanc 1.12)")  # fmt: skip
    def file_uuid(resource_id: str, name: str, request: Request) -> Response:
        found = attachment(request, resource_id, name)
        return text(found, found.uuid)

    @router.get("/{name}/info", summary="Sizes, MD5s, content type and UUID")
    def info(resource_id: str, name: str, request: Request) -> JSONResponse:
        found = attachment(request, resource_id, name)
        return JSONResponse(found.info(), headers={"ETag": found.etag})

    @router.post("/{name}/verify-md5", summary="Check the stored file")
    def verify(resource_id: str, name: str, request: Request) -> dict:
        attachment(request, resource_id, name).verify()
        return {}

    @router.post("/{name}/uncompress", summary="Store uncompressed (it always is)")
    def uncompress(resource_id: str, name: str, request: Request) -> dict:
        attachment(request, resource_id, name)
        return {}

    @router.post("/{name}/compress", summary="Store compressed: refused, files stay readable")
    def compress(resource_id: str, name: str, request: Request) -> dict:
        attachment(request, resource_id, name)
        raise NotKeptError(
            "This server keeps every DICOM file uncompressed, so that viewers and pydicom "
            "read it in place; attachments cannot be compressed"
        )

    @router.put("/{name}", summary="Replace an attachment: refused for the DICOM file")
    @router.delete("/{name}", summary="Delete an attachment: refused for the DICOM file")
    async def write(resource_id: str, name: str, request: Request) -> dict:
        if content_type(name) >= FIRST_USER_TYPE:
            await run_in_threadpool(index_of(request).resource, level, resource_id)
            raise NotKeptError(
                f"Attachment {name}: this server keeps no user attachments; "
                "keep such data in user metadata (/metadata) instead"
            )
        await run_in_threadpool(attachment, request, resource_id, name)
        raise ReadOnlyAttachmentError(
            f"The DICOM file of {level.lower()} {resource_id} cannot be replaced or deleted "
            "through its attachment; delete the instance instead"
        )

    return router


ROUTERS = [attachments_router(level) for level in LEVELS]
