"""Damaged and hostile files through REST upload, C-STORE and ``workbench.io.open_series``.

Every variant must be either refused clearly (HTTP 400 with a JSON reason, a DIMSE failure
status, a ``workbench.io`` error naming the file) or stored exactly as sent; between batches
the server must still answer C-ECHO and ``GET /system`` with bounded memory, and what was
stored before the corpus arrived must be byte-for-byte unchanged at the end.
"""

from __future__ import annotations

import collections
import io
import json
import warnings
from pathlib import Path

import pydicom
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from tests.reliability.corpus import Variant
from tests.reliability.support import (
    CLIENT_AET,
    TEMPLATE,
    associate,
    echo,
    sha1,
    store_status,
    stored_files,
)

pytestmark = pytest.mark.slow  # over a thousand damaged files through every channel

#: A generous bound: the server idles near 110 MB; a leak or a file read whole into memory
#: per request would pass it quickly over 1,000+ requests.
RSS_LIMIT = 1024 * 1024 * 1024
BATCH = 100
#: DIMSE failure statuses that mean "refused, with a reason" (out of resources, cannot
#: understand, data set does not match SOP class, identifier mismatch).
REFUSALS = {0xA700, 0xA900, 0xC210}


class Outcomes:
    """What each channel did with each variant, by kind, for the failure messages."""

    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()
        self.problems: list[str] = []

    def add(self, outcome: str, variant: Variant, problem: str | None = None) -> None:
        self.counts[(variant.kind, outcome)] += 1
        if problem is not None:
            self.problems.append(f"[{variant.kind}] {variant.description}: {problem}")

    def summary(self) -> str:
        return "\n".join(
            f"{kind:>14} {outcome:<24} {count}"
            for (kind, outcome), count in sorted(self.counts.items())
        )


@pytest.fixture(scope="module")
def baseline(server, seeds):
    """The seed files stored cleanly first: their IDs → SHA-1 of the stored file."""
    hashes = {}
    for path in seeds:
        answer = server.post("/instances", data=path.read_bytes())
        assert answer.status_code == 200, (path, answer.text)
        instance_id = answer.json()["ID"]
        hashes[instance_id] = sha1(server.get(f"/instances/{instance_id}/file").content)
    return {"hashes": hashes, "statistics": server.get("/statistics").json()}


@pytest.fixture(scope="module")
def accepted():
    """Instances newly stored from the corpus: REST IDs and C-STORE SOP Instance UIDs."""
    return {"rest": set(), "dimse": set(), "damaged": set()}


def _still_serving(server) -> None:
    assert server.process.poll() is None, f"server died:\n{server.log()[-5000:]}"
    assert echo(server.dicom_port), "C-ECHO failed after a batch of bad files"
    assert server.get("/system").status_code == 200
    rss = server.rss()
    assert rss < RSS_LIMIT, f"server RSS {rss / 1e6:.0f} MB exceeds {RSS_LIMIT / 1e6:.0f} MB"


def _cut_inside_pixel_data(data: bytes) -> bool:
    """Whether pydicom, reading everything, finds the file cut short (inside its pixel data
    or inside a sequence)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(io.BytesIO(data))
            raw = ds.get_item(0x7FE00010)
        except Exception:
            return False  # not readable at all: a refusal is expected anyway
    if any("End of file reached before delimiter" in str(w.message) for w in caught):
        return True
    length = getattr(raw, "length", None)
    tell = getattr(raw, "value_tell", None)
    return length not in (None, 0xFFFFFFFF) and tell is not None and tell + length > len(data)


def _check_rest_answer(
    server, variant: Variant, answer, outcomes: Outcomes, accepted: dict
) -> None:
    try:
        body = answer.json()
    except json.JSONDecodeError:
        outcomes.add("not json", variant, f"HTTP {answer.status_code}: {answer.text[:200]}")
        return
    if answer.status_code == 400:
        details = body.get("Details", "") if isinstance(body, dict) else ""
        if str(server.storage.parent) in details:
            outcomes.add("path disclosed", variant, f"error names a server path: {details}")
            return
        if body.get("HttpStatus") != 400 or len(details) < 10:
            outcomes.add("vague 400", variant, f"{body}")
        else:
            outcomes.add("refused 400", variant)
        return
    if answer.status_code != 200:
        outcomes.add(f"HTTP {answer.status_code}", variant, str(body)[:300])
        return
    if isinstance(body, list):  # a ZIP: its DICOM members (none in the corpus)
        outcomes.add("zip answered", variant, None if not body else f"stored {body}")
        return
    if body.get("Status") not in ("Success", "AlreadyStored"):
        outcomes.add("odd status", variant, str(body))
        return
    # "AlreadyStored" keeps the intact first copy; storing a damaged one is what must not be.
    if body["Status"] == "Success" and _cut_inside_pixel_data(variant.data):
        outcomes.add(
            "truncated, accepted",
            variant,
            f"a file cut inside its pixel data was acknowledged ({body['Status']})",
        )
        return
    stored = server.get(f"/instances/{body['ID']}/file")
    if stored.status_code != 200:
        outcomes.add("stored, unreadable", variant, f"/file answered {stored.status_code}")
        return
    if body["Status"] == "Success":
        accepted["rest"].add(body["ID"])
        if stored.content != variant.data and not _part10_of(variant.data, stored.content):
            outcomes.add("stored, altered", variant, "stored bytes differ from the upload")
            return
        preview = server.get(f"/instances/{body['ID']}/preview")
        if preview.status_code not in (200, 400, 404):
            outcomes.add("preview crash", variant, f"/preview answered {preview.status_code}")
            return
        accepted["damaged"].add(body["ID"])
        for method, route in (("GET", "tags"), ("GET", "simplified-tags"), ("GET", "archive")):
            other = requests.request(
                method, f"{server.url}/instances/{body['ID']}/{route}", timeout=60
            )
            if other.status_code >= 500:
                outcomes.add(
                    f"{route} crash",
                    variant,
                    f"{method} /{route} answered {other.status_code}: {other.text[:200]}",
                )
                return
        if preview.status_code != 200 and str(server.storage.parent) in preview.text:
            outcomes.add(
                "path disclosed",
                variant,
                f"/preview error names a server path: {preview.text[:200]}",
            )
            return
    outcomes.add(f"stored ({body['Status']})", variant)


def _part10_of(upload: bytes, stored: bytes) -> bool:
    """Whether ``stored`` is a bare data set ``upload`` given a preamble and file meta and
    otherwise kept byte for byte (as Orthanc stores such uploads)."""
    return upload[128:132] != b"DICM" and stored[128:132] == b"DICM" and stored.endswith(upload)


def test_rest_upload_refuses_or_stores_every_variant(server, baseline, corpus, accepted):
    outcomes = Outcomes()
    for start in range(0, len(corpus), BATCH):
        for variant in corpus[start : start + BATCH]:
            answer = server.post("/instances", data=variant.data)
            _check_rest_answer(server, variant, answer, outcomes, accepted)
        _still_serving(server)
    print(outcomes.summary())
    assert not outcomes.problems, "\n".join(outcomes.problems[:40])
    assert sum(n for (_, o), n in outcomes.counts.items() if o == "refused 400") > 500


def _storage_ae(seeds: list[Path]) -> AE:
    """An SCU proposing the (SOP class, transfer syntax) of every seed, as a modality would."""
    ae = AE(ae_title=CLIENT_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    ae.add_requested_context(Verification)
    pairs = set()
    for path in [*seeds, TEMPLATE]:
        meta = pydicom.filereader.read_file_meta_info(path)
        pairs.add((str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)))
    for sop_class, syntax in sorted(pairs)[:127]:
        ae.add_requested_context(sop_class, syntax)
    return ae


def _sop_instance_uid(path: Path) -> str | None:
    """The SOP Instance UID of a data set the node accepted (so pydicom can read it)."""
    try:
        return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    except Exception:  # the node stored something pydicom cannot read back: reported later
        return None


def test_c_store_refuses_or_stores_every_variant(
    server, baseline, corpus, seeds, accepted, tmp_path
):
    """Each variant is sent as its raw bytes (pynetdicom streams a Part-10 file as is).

    What pynetdicom cannot even send (no readable file meta, or no context for it) is
    counted as refused client-side: a real modality could not send it either.
    """
    ae = _storage_ae(seeds)
    outcomes = Outcomes()
    assoc = associate(ae, server.dicom_port)
    assert assoc.is_established
    path = tmp_path / "variant.dcm"
    for start in range(0, len(corpus), BATCH):
        for variant in corpus[start : start + BATCH]:
            path.write_bytes(variant.data)
            try:
                status = store_status(assoc, path)
            except Exception:  # pynetdicom could not read or encode it: never sent
                if not assoc.is_established:
                    outcomes.add("association lost", variant, "the association ended")
                    assoc = associate(ae, server.dicom_port)
                    continue
                outcomes.add("refused client-side", variant)
                continue
            if status is None:
                # A C-STORE-RQ without Affected SOP Instance UID (Type 1) breaks pynetdicom's
                # DIMSE decoder on the node, which then drops the association: a refusal, if
                # not a graceful one. Anything else must get a status.
                invalid_request = _sop_instance_uid(path) in (None, "")
                outcomes.add(
                    "association dropped",
                    variant,
                    None if invalid_request else "association aborted or timed out",
                )
                assoc = associate(ae, server.dicom_port)
                assert assoc.is_established
            elif status == 0:
                outcomes.add("stored", variant)
                accepted["dimse"].add(_sop_instance_uid(path))
            elif status in REFUSALS:
                outcomes.add(f"refused {status:#06x}", variant)
            else:
                outcomes.add(f"status {status:#06x}", variant, f"unexpected status {status:#06x}")
        _still_serving(server)
    assoc.release()
    print(outcomes.summary())
    assert not outcomes.problems, "\n".join(outcomes.problems[:40])
    refused = sum(n for (_, o), n in outcomes.counts.items() if o.startswith("refused 0x"))
    assert refused > 100  # the node itself refused many (not only the client)


def test_open_series_refuses_or_reads_every_variant(corpus, tmp_path):
    from workbench.io import DicomIOError, open_series

    outcomes = Outcomes()
    for number, variant in enumerate(corpus):
        path = tmp_path / f"variant-{number:05d}.dcm"
        path.write_bytes(variant.data)
        try:
            volume = open_series(path)
            values = volume.values
        except DicomIOError as exc:
            named = (exc.path is not None and path.name in exc.path) or path.name in str(exc)
            outcomes.add(
                "refused", variant, None if named else f"error does not name the file: {exc!r}"
            )
        except Exception as exc:  # anything else is a crash of the io layer
            outcomes.add(type(exc).__name__, variant, f"{type(exc).__name__}: {exc}"[:300])
        else:
            problem = None
            if values.shape[0] != volume.sizes["frame"] or values.size == 0:
                problem = f"odd array {values.shape}"
            outcomes.add("read", variant, problem)
        finally:
            path.unlink()
    print(outcomes.summary())
    assert not outcomes.problems, "\n".join(outcomes.problems[:40])


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    edits=st.lists(
        st.tuples(st.integers(128, 1600), st.binary(min_size=1, max_size=6)), min_size=1, max_size=6
    )
)
def test_rest_upload_of_header_edits(server, baseline, accepted, edits):
    """Hypothesis rewrites bytes of a real header (meta and data set elements)."""
    data = bytearray(TEMPLATE.read_bytes())
    for offset, replacement in edits:
        data[offset : offset + len(replacement)] = replacement
    variant = Variant("hypothesis", f"edits {edits}", bytes(data))
    outcomes = Outcomes()
    _check_rest_answer(
        server, variant, server.post("/instances", data=variant.data), outcomes, accepted
    )
    assert not outcomes.problems, outcomes.problems


def test_previously_stored_instances_unchanged(server, baseline, accepted):
    _still_serving(server)
    for instance_id, digest in baseline["hashes"].items():
        answer = server.get(f"/instances/{instance_id}/file")
        assert answer.status_code == 200, instance_id
        assert sha1(answer.content) == digest, f"stored instance {instance_id} changed"
    listed = server.get("/instances", params={"expand": "1"}).json()
    ids = {item["ID"] for item in listed}
    assert set(baseline["hashes"]) <= ids
    # Everything else present came from an acknowledged variant, and nothing twice.
    for item in listed:
        if item["ID"] in baseline["hashes"] or item["ID"] in accepted["rest"]:
            continue
        assert item["MainDicomTags"]["SOPInstanceUID"] in accepted["dimse"], item
    statistics = server.get("/statistics").json()
    assert statistics["CountInstances"] == len(listed) == len(ids)
    before = baseline["statistics"]["CountInstances"]
    assert statistics["CountInstances"] >= before + len(accepted["rest"] - set(baseline["hashes"]))
    # Every row has its file, every file its row, no temporary file left behind.
    files = stored_files(server.storage)
    assert len(files) == statistics["CountInstances"]
    assert int(statistics["TotalDiskSize"]) == sum(p.stat().st_size for p in files)
    leftovers = list((server.storage / "incoming").iterdir())
    assert not leftovers, f"{len(leftovers)} temporary files left in incoming/"


def test_bad_files_are_not_read_whole_into_memory(server):
    """A body declaring gigabytes in one element must not make the server allocate them."""
    data = bytearray(TEMPLATE.read_bytes())
    pixel = data.rfind(b"\xe0\x7f\x10\x00")
    data[pixel + 8 : pixel + 12] = (0xFFFFFFF0).to_bytes(4, "little")
    before = server.rss()
    for _ in range(20):
        answer = server.post("/instances", data=bytes(data))
        assert answer.status_code in (200, 400), answer.text
    assert server.rss() - before < 200 * 1024 * 1024
    _still_serving(server)


def test_media_and_anonymization_of_damaged_stored_instances(server, accepted):
    """What the upload accepted (damaged but storable) can be exported or refused with a
    reason, never a server error."""
    crashes = []
    for instance_id in sorted(accepted["damaged"]):
        for method, route in (("GET", "media"), ("POST", "anonymize")):
            body = {} if method == "POST" else None
            answer = requests.request(
                method, f"{server.url}/instances/{instance_id}/{route}", json=body, timeout=60
            )
            if answer.status_code >= 500:
                crashes.append(f"{method} /instances/{instance_id}/{route}: {answer.text[:150]}")
    assert accepted["damaged"], "the corpus stored no damaged instance to export"
    assert not crashes, "\n".join(crashes[:20])
