"""``/{level}/{id}/attachments``: the files a resource has, as Orthanc's REST API lists them.

An instance has its DICOM file (``dicom``, content type 1), read only; any resource may have
user attachments (content types 1024 to 65535), written with ``PUT`` and deleted, each with
a revision that ``If-Match`` checks. Nothing is stored compressed, so the compressed and
uncompressed views of an attachment are the same bytes. Orthanc computes the DICOM file's
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

from ..errors import PacsError, PayloadTooLargeError, UnknownResourceError
from ..index import Index
from ..tags import LEVELS, PLURAL
from .deps import BINARY, body_doc, flag, get_index, index_of
from .metadata import if_match

#: Orthanc's content type of the DICOM file, and the name it is listed by.
DICOM = 1
DICOM_NAME = "dicom"
#: Content types Orthanc names (the others are given by number, user ones from 1024).
NAMED_TYPES = {"dicom": 1, "dicom-until-pixel-data": 2}
FIRST_USER_TYPE, LAST_USER_TYPE = 1024, 65535
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
    """What this server does not do: compress stored files (viewers and pydicom read them in
    place)."""

    http_status = 501


class OutOfUserRangeError(PacsError):
    """Only user content types (1024 to 65535) are written through this route (Orthanc:
    403)."""

    http_status = 403


#: Largest user attachment accepted (they live in the index database).
MAX_USER_ATTACHMENT = 64 * 2**20


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


class UserAttachment:
    """A user attachment of a resource (its bytes read when asked)."""

    def __init__(self, index: Index, level: str, resource_id: str, found) -> None:
        self.index, self.level, self.resource_id = index, level, resource_id
        self.content_type: int = found.content_type
        self.uuid: str = found.uuid
        self.size: int = found.size
        self.md5: str = found.md5
        self.revision: int = found.revision

    @property
    def etag(self) -> str:
        return f'"{self.revision}-{self.md5}"'

    def info(self) -> dict[str, Any]:
        return {"CompressedMD5": self.md5, "CompressedSize": self.size,
                "ContentType": self.content_type, "UncompressedMD5": self.md5,
                "UncompressedSize": self.size, "Uuid": self.uuid}  # fmt: skip

    def data(self) -> bytes:
        found = self.index.user_attachment(self.level, self.resource_id, self.content_type,
                                           with_data=True)  # fmt: skip
        return found.data or b""

    def verify(self) -> None:
        if hashlib.md5(self.data()).hexdigest() != self.md5:
            raise CorruptedFileError(f"Attachment {self.content_type} of {self.resource_id} "
                                     "no longer has the MD5 it was stored with")  # fmt: skip


def find_attachment(index: Index, level: str, resource_id: str,
                    name: str) -> DicomAttachment | UserAttachment:  # fmt: skip
    """The attachment ``name`` of a resource, or the 404 Orthanc answers."""
    kind = content_type(name)
    index.resource(level, resource_id)  # 404 for an unknown resource first
    if level == "Instance" and kind == DICOM:
        return DicomAttachment(index, resource_id)
    if FIRST_USER_TYPE <= kind <= LAST_USER_TYPE:
        found = index.user_attachment(level, resource_id, kind)
        return UserAttachment(index, level, resource_id, found)
    raise UnknownResourceError("Attachment", f"{name} of {level.lower()} {resource_id}")


def attachments_router(level: str) -> APIRouter:
    """The attachment routes of one level."""
    router = APIRouter(prefix=f"/{PLURAL[level]}/{{resource_id}}/attachments",
                       tags=[PLURAL[level]])  # fmt: skip

    def attachment(request: Request, resource_id: str,
                   name: str) -> DicomAttachment | UserAttachment:  # fmt: skip
        return find_attachment(index_of(request), level, resource_id, name)

    def text(found: DicomAttachment | UserAttachment, value: Any) -> PlainTextResponse:
        return PlainTextResponse(str(value), headers={"ETag": found.etag})

    @router.get("", summary="Names of the attachments (?full: name → content type)")
    def listing(resource_id: str, full: str | None = Query(None),
                index: Index = Depends(get_index)) -> Any:  # fmt: skip
        index.resource(level, resource_id)
        names = {DICOM_NAME: DICOM} if level == "Instance" else {}
        names.update((str(found.content_type), found.content_type)
                     for found in index.user_attachments(level, resource_id))  # fmt: skip
        return names if flag(full) else list(names)

    @router.get("/{name}", summary="What can be asked of an attachment")
    def operations(resource_id: str, name: str, request: Request) -> JSONResponse:
        found = attachment(request, resource_id, name)
        return JSONResponse(OPERATIONS, headers={"ETag": found.etag})

    @router.get("/{name}/data", summary="The attachment's bytes")
    @router.get("/{name}/compressed-data", summary="The bytes as stored (never compressed)")
    def data(resource_id: str, name: str, request: Request) -> Response:
        found = attachment(request, resource_id, name)
        if isinstance(found, DicomAttachment):
            return FileResponse(found.path, media_type="application/dicom",
                                headers={"ETag": found.etag})  # fmt: skip
        return Response(found.data(), media_type="application/octet-stream", headers={
            "ETag": found.etag, "Content-Disposition": f'filename="{found.uuid}"'})  # fmt: skip

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
                summary="The attachment's UUID (Orthanc 1.12)")  # fmt: skip
    def file_uuid(resource_id: str, name: str, request: Request) -> Response:
        found = attachment(request, resource_id, name)
        return text(found, found.uuid)

    @router.get("/{name}/info", summary="Sizes, MD5s, content type and UUID")
    def info(resource_id: str, name: str, request: Request) -> JSONResponse:
        found = attachment(request, resource_id, name)
        return JSONResponse(found.info(), headers={"ETag": found.etag})

    @router.post("/{name}/verify-md5", summary="Check the stored bytes")
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
            "This server keeps every attachment uncompressed, so that viewers and pydicom "
            "read DICOM files in place; attachments cannot be compressed"
        )

    @router.put(
        "/{name}",
        summary="Write a user attachment (1024-65535)",
        openapi_extra=body_doc("application/octet-stream", BINARY, "The bytes"),
    )
    async def write(resource_id: str, name: str, request: Request) -> Response:
        kind = content_type(name)
        if not FIRST_USER_TYPE <= kind <= LAST_USER_TYPE:
            raise OutOfUserRangeError(
                f"Attachment {name}: only user attachments (1024 to 65535) are written; "
                "a DICOM file is replaced by storing the instance again"
            )
        body = await request.body()
        if len(body) > MAX_USER_ATTACHMENT:
            raise PayloadTooLargeError(f"An attachment holds at most {MAX_USER_ATTACHMENT} "
                                       "bytes")  # fmt: skip
        stored = await run_in_threadpool(index_of(request).put_attachment, level, resource_id,
                                         kind, body, if_match(request))  # fmt: skip
        return JSONResponse({}, headers={"ETag": f'"{stored.revision}-{stored.md5}"'})

    @router.delete("/{name}", summary="Delete a user attachment")
    async def remove(resource_id: str, name: str, request: Request) -> Response:
        kind = content_type(name)
        if not FIRST_USER_TYPE <= kind <= LAST_USER_TYPE:
            await run_in_threadpool(attachment, request, resource_id, name)
            raise ReadOnlyAttachmentError(
                f"The DICOM file of {level.lower()} {resource_id} cannot be deleted through "
                "its attachment; delete the instance instead"
            )
        await run_in_threadpool(index_of(request).delete_attachment, level, resource_id, kind,
                                if_match(request))  # fmt: skip
        return PlainTextResponse("")

    return router


ROUTERS = [attachments_router(level) for level in LEVELS]
