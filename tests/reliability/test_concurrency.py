"""Many writers at once: 8 DICOM associations and 8 REST uploaders, 2,000 instances in all,
while C-FINDs and REST reads run. Every acknowledged instance must be there exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from tests.reliability.support import (
    CLIENT_AET,
    associate,
    chunks,
    client_ae,
    retag,
    store_status,
    stored_files,
    template,
    to_bytes,
)

pytestmark = pytest.mark.slow  # writers by the dozen against one server

ASSOCIATIONS = 8
UPLOADERS = 8
INSTANCES = 2000
PATIENTS = 10
SERIES_PER_STUDY = 2
LOCKED = "database is locked"


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    """2,000 small instances from a real MR header, 10 patients x 1 study x 2 series.

    Instances of one series are dealt to every writer, so all writers create and update the
    same patients, studies and series at the same moment.
    """
    folder = tmp_path_factory.mktemp("concurrency-files")
    ds = template()
    layout = []
    for p in range(PATIENTS):
        study = generate_uid()
        for _ in range(SERIES_PER_STUDY):
            layout.append((f"CONC-{p:02d}", study, generate_uid()))
    items = []
    for number in range(INSTANCES):
        patient, study, series = layout[number % len(layout)]
        # One data set rewritten in place: deep copies would dominate the set-up time.
        retag(ds, patient=patient, study=study, series=series, number=number + 1)
        path = folder / f"{number:05d}.dcm"
        data = to_bytes(ds)
        path.write_bytes(data)
        items.append((str(ds.SOPInstanceUID), path, data))
    return items


class Recorder:
    """Thread-safe record of acknowledgements and errors."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acknowledged: list[str] = []
        self.errors: Counter = Counter()
        self.samples: list[str] = []
        self.reads = Counter()

    def ack(self, uid: str) -> None:
        with self.lock:
            self.acknowledged.append(uid)

    def error(self, kind: str, detail: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.samples) < 20:
                self.samples.append(f"{kind}: {detail[:300]}")


def _dimse_writer(server, items, recorder: Recorder) -> None:
    ae = client_ae()
    assoc = associate(ae, server.dicom_port)
    if not assoc.is_established:
        recorder.error("association refused", "")
        return
    try:
        for uid, path, _data in items:
            status = store_status(assoc, path)
            if status == 0:
                recorder.ack(uid)
            else:
                recorder.error("c-store", f"{uid}: status {status}")
                if status is None:
                    return
    finally:
        if assoc.is_established:
            assoc.release()


def _rest_writer(server, items, recorder: Recorder) -> None:
    import requests

    with requests.Session() as session:
        for uid, _path, data in items:
            try:
                answer = session.post(server.url + "/instances", data=data, timeout=120)
            except requests.RequestException as exc:
                recorder.error("rest transport", repr(exc))
                continue
            if answer.status_code == 200 and answer.json().get("Status") == "Success":
                recorder.ack(uid)
            else:
                kind = "locked" if LOCKED in answer.text else f"HTTP {answer.status_code}"
                recorder.error(kind, answer.text)


def _finder(server, stop: threading.Event, recorder: Recorder) -> None:
    ae = AE(ae_title=CLIENT_AET)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    while not stop.is_set():
        assoc = associate(ae, server.dicom_port)
        if not assoc.is_established:
            recorder.error("find association", "refused")
            time.sleep(0.2)
            continue
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.PatientID = "CONC-*"
        query.StudyInstanceUID = ""
        query.SeriesInstanceUID = ""
        query.NumberOfSeriesRelatedInstances = ""
        for status, _identifier in assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind
        ):
            if not status or status.Status not in (0x0000, 0xFF00, 0xFF01):
                recorder.error("c-find", str(status))
                break
        recorder.reads["c-find"] += 1
        assoc.release()
        stop.wait(0.2)


def _reader(server, stop: threading.Event, recorder: Recorder) -> None:
    import requests

    paths = ["/patients?expand", "/studies", "/statistics", "/series?expand", "/changes?limit=50"]
    with requests.Session() as session:
        while not stop.is_set():
            for path in paths:
                answer = session.get(server.url + path, timeout=60)
                if answer.status_code != 200:
                    kind = "locked" if LOCKED in answer.text else f"read HTTP {answer.status_code}"
                    recorder.error(kind, answer.text)
                recorder.reads["rest"] += 1
            stop.wait(0.2)  # steady read traffic, not a busy loop starving the writers
            answer = session.post(
                server.url + "/tools/find",
                timeout=60,
                json={"Level": "Instance", "Query": {"PatientID": "CONC-0*"}, "Limit": 20},
            )
            if answer.status_code != 200:
                recorder.error(f"find HTTP {answer.status_code}", answer.text)


@pytest.fixture(scope="module")
def ingested(server, workload) -> Recorder:
    """The server after 8 associations and 8 uploaders stored the workload, with reads running.

    Both tests of this module look at the same run, whichever of them runs first.
    """
    recorder = Recorder()
    halves = workload[::2], workload[1::2]
    stop = threading.Event()
    background = [
        threading.Thread(target=_finder, args=(server, stop, recorder)),
        threading.Thread(target=_reader, args=(server, stop, recorder)),
    ]
    for thread in background:
        thread.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(ASSOCIATIONS + UPLOADERS) as pool:
            futures = [
                pool.submit(_dimse_writer, server, part, recorder)
                for part in chunks(halves[0], ASSOCIATIONS)
            ]
            futures += [
                pool.submit(_rest_writer, server, part, recorder)
                for part in chunks(halves[1], UPLOADERS)
            ]
            for future in futures:
                future.result()
    finally:
        stop.set()
        for thread in background:
            thread.join(60)
    elapsed = time.monotonic() - started
    print(
        f"{len(recorder.acknowledged)} acknowledged in {elapsed:.1f} s "
        f"({len(recorder.acknowledged) / elapsed:.0f}/s) with {dict(recorder.reads)} reads"
    )
    return recorder


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(server, workload, ingested):
    recorder = ingested
    assert not recorder.errors, f"{dict(recorder.errors)}\n" + "\n".join(recorder.samples)
    assert len(recorder.acknowledged) == INSTANCES
    assert recorder.reads["c-find"] > 0 and recorder.reads["rest"] > 0

    listed = server.get("/instances", params={"expand": "1"}).json()
    present = Counter(item["MainDicomTags"]["SOPInstanceUID"] for item in listed)
    duplicated = [uid for uid, count in present.items() if count > 1]
    missing = set(recorder.acknowledged) - set(present)
    assert not duplicated, f"{len(duplicated)} instances present more than once"
    assert not missing, f"{len(missing)} acknowledged instances missing"
    assert set(present) == {uid for uid, _, _ in workload}

    statistics = server.get("/statistics").json()
    assert statistics["CountInstances"] == INSTANCES
    assert statistics["CountPatients"] == PATIENTS
    assert statistics["CountStudies"] == PATIENTS
    assert statistics["CountSeries"] == PATIENTS * SERIES_PER_STUDY
    files = stored_files(server.storage)
    assert len(files) == INSTANCES
    assert int(statistics["TotalDiskSize"]) == sum(path.stat().st_size for path in files)
    per_series = INSTANCES // (PATIENTS * SERIES_PER_STUDY)
    for series in server.get("/series", params={"expand": "1"}).json():
        assert len(series["Instances"]) == per_series, series["ID"]
    assert LOCKED not in server.log()


def test_c_find_counts_match_after_concurrent_ingest(server, ingested):
    """The node's own answers agree with the index once writers are done."""
    ae = AE(ae_title=CLIENT_AET)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = associate(ae, server.dicom_port)
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.PatientID = "CONC-*"
    query.SeriesInstanceUID = ""
    query.NumberOfSeriesRelatedInstances = ""
    answers = [
        identifier
        for status, identifier in assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind
        )
        if status.Status == 0xFF00
    ]
    assoc.release()
    assert len(answers) == PATIENTS * SERIES_PER_STUDY
    per_series = INSTANCES // (PATIENTS * SERIES_PER_STUDY)
    # The key was asked for, so every answer carries it, with the count the index holds.
    assert [int(answer.NumberOfSeriesRelatedInstances) for answer in answers] == [per_series] * len(
        answers
    )
