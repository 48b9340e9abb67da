"""The incoming filter: a Python function that admits or refuses each instance received.

Orthanc has ``ReceivedInstanceFilter`` in Lua and an incoming C-STORE filter in its plugins;
here ``pacs.filter_incoming(fn)`` (or ``index.incoming_filter = fn``) sets one function that
sees every instance before it is stored, whichever way it came (C-STORE, REST, STOW-RS,
import). It runs on the ingest path, so it should be quick: what can wait belongs in a hook
(:mod:`workbench.pacs.hooks`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import PacsError
from .parsing import ParsedInstance

log = logging.getLogger(__name__)


class Refused(PacsError):
    """An instance the incoming filter refused; the sender gets ``dimse_status`` (C-STORE)
    or 403 (REST, STOW-RS). Raise it from a filter to choose the reason and the status.

    Parameters
    ----------
    reason : str
        Said to the sender (REST) and logged.
    dimse_status : int, optional
        The C-STORE status: 0x0124 (Refused: Not Authorized) unless given.
    """

    http_status = 403
    dimse_status = 0x0124

    def __init__(self, reason: str, dimse_status: int | None = None) -> None:
        super().__init__(reason)
        if dimse_status is not None:
            self.dimse_status = dimse_status


@dataclass(frozen=True)
class IncomingInstance:
    """What a filter knows of an instance: the tags the index keeps, and where it came from.

    Attributes
    ----------
    tags : mapping
        Keyword → text of the patient, study, series and instance tags the index keeps
        (``Modality``, ``SOPClassUID``, ``PatientID``...).
    transfer_syntax : str or None
    remote_aet : str or None
        The calling AE title of a C-STORE.
    origin : str
        ``DicomProtocol``, ``RestApi``, ``Plugins``... as Orthanc's ``Origin`` metadata.
    """

    tags: Mapping[str, str | None]
    transfer_syntax: str | None
    remote_aet: str | None
    origin: str


IncomingFilter = Callable[[IncomingInstance], object]


def admit(
    incoming_filter: IncomingFilter | None,
    parsed: ParsedInstance,
    remote_aet: str | None,
    origin: str,
) -> None:
    """Raise :class:`Refused` unless ``incoming_filter`` admits the instance.

    The filter admits by returning anything but ``False``. If it fails, the instance is
    refused (and the error logged): a filter that guards what may be stored fails closed,
    and the sender learns that its instance was not kept.
    """
    if incoming_filter is None:
        return
    tags = {keyword: value for level in parsed.tags.values() for keyword, value in level.items()}
    instance = IncomingInstance(tags, parsed.transfer_syntax, remote_aet, origin)
    try:
        verdict = incoming_filter(instance)
    except Refused:
        raise
    except Exception as exc:
        log.exception("The incoming filter failed on %s", parsed.sop_instance_uid)
        raise Refused(f"The incoming filter failed: {exc}") from exc
    if verdict is False:
        raise Refused(f"Instance {parsed.sop_instance_uid} refused by the incoming filter")
