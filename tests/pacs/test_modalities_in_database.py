"""``DicomModalitiesInDatabase``: modalities declared over REST outlive a restart, as in a real
Orthanc with the same option; nodes on one database start with the same modalities."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import requests

from tests.pacs.node_support import dcmtk
from tests.peers import free_port, start_orthanc
from workbench.pacs import serve

FROM_FILE = {"fromfile": ["FILEAET", "127.0.0.1", 104]}
ADDED = {"AET": "ADDED", "Host": "127.0.0.1", "Port": 11112}
SHORT = ["SHORTAET", "localhost", 2000]


def _ours(config):
    return serve(config, HttpPort=0, DicomPort=free_port())


def _declared(url: str) -> dict:
    """Every modality a server knows, as ``GET /modalities?expand`` shows its AET, host and
    port (the fields both servers show)."""
    answer = requests.get(f"{url}/modalities?expand", timeout=30)
    answer.raise_for_status()
    return {
        name: (fields["AET"], fields["Host"], fields["Port"])
        for name, fields in answer.json().items()
    }


def _change(url: str) -> None:
    for name, body in (("added", ADDED), ("short", SHORT), ("gone", ADDED)):
        requests.put(f"{url}/modalities/{name}", json=body, timeout=30).raise_for_status()
    requests.delete(f"{url}/modalities/gone", timeout=30).raise_for_status()


@pytest.mark.peers
@pytest.mark.parametrize("in_database", [True, False], ids=["in-database", "in-configuration"])
def test_modalities_declared_over_rest_outlive_a_restart_as_in_orthanc(
    tmp_path, database, in_database, caplog
):
    option = {"DicomModalitiesInDatabase": in_database}
    config = database.config(tmp_path / "ours", DicomModalities=dict(FROM_FILE), **option)
    ours = _ours(replace(config))
    theirs = start_orthanc(tmp_path / "theirs", modalities=FROM_FILE, extra=option)
    try:
        at_start = {"ours": _declared(ours.url), "theirs": _declared(theirs.url)}
        _change(ours.url)
        _change(theirs.url)
        changed = {"ours": _declared(ours.url), "theirs": _declared(theirs.url)}
    finally:
        ours.stop()
        theirs.stop()

    ours = _ours(replace(config, DicomModalities=dict(FROM_FILE)))  # the same database again
    theirs = start_orthanc(tmp_path / "theirs", modalities=FROM_FILE, extra=option)
    try:
        restarted = {"ours": _declared(ours.url), "theirs": _declared(theirs.url)}
    finally:
        ours.stop()
        theirs.stop()

    file_only = {"fromfile": ("FILEAET", "127.0.0.1", 104)}
    declared = {"added": ("ADDED", "127.0.0.1", 11112), "short": ("SHORTAET", "localhost", 2000)}
    assert at_start == {"ours": {} if in_database else file_only, "theirs": at_start["ours"]}
    # Ours says which declarations of the configuration it sets aside.
    set_aside = "not DicomModalities of the configuration (fromfile)"
    assert (set_aside in caplog.text) == in_database
    assert changed["ours"] == changed["theirs"] == {**at_start["ours"], **declared}
    assert restarted["ours"] == restarted["theirs"] == (declared if in_database else file_only)


def _eventually(read, expected, timeout: float = 30.0):
    """What ``read()`` gives once it gives ``expected`` (or at ``timeout``)."""
    deadline = time.monotonic() + timeout
    while (seen := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


def _find_from(aet: str, port: int, out: Path) -> str:
    out.mkdir()
    return dcmtk("findscu", "-v", "-S", "-aet", aet, "-aec", "WORKBENCH", "-X", "-od", str(out),
                 "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
                 "127.0.0.1", str(port), check=False)  # fmt: skip


@pytest.mark.peers
def test_servers_on_one_database_follow_each_others_modalities(tmp_path, database):
    worklists = {"Enable": True, "Directory": str(tmp_path / "worklists")}
    (tmp_path / "worklists").mkdir()
    config = database.config(
        tmp_path / "store", DicomModalitiesInDatabase=True, Worklists=worklists
    )
    first = _ours(replace(config))
    # The second serves associations in worker processes: they learn the modalities too.
    second = _ours(replace(config, DicomWorkerProcesses=2))
    try:
        refused = _find_from("FINDSCU", second.node.port, tmp_path / "before")
        assert "0x124" in refused.lower(), refused  # Refused: Not Authorized

        finder = ["FINDSCU", "127.0.0.1", 104]
        requests.put(f"{first.url}/modalities/finder", json=finder, timeout=30).raise_for_status()
        requests.put(f"{second.url}/modalities/b", json=SHORT, timeout=30).raise_for_status()
        both = ["b", "finder"]
        # The first, asked nothing, learns the second's change by following the database.
        assert _eventually(lambda: sorted(first.config.DicomModalities), both) == both
        assert sorted(_declared(second.url)) == both
        for n in range(2):  # one association after the other: one to each worker
            output = _find_from("FINDSCU", second.node.port, tmp_path / f"after{n}")
            assert "0x124" not in output.lower(), output

        requests.delete(f"{second.url}/modalities/finder", timeout=30).raise_for_status()
        assert _eventually(lambda: sorted(first.config.DicomModalities), ["b"]) == ["b"]
        # A REST request reads them again at once.
        requests.put(f"{first.url}/modalities/c", json=SHORT, timeout=30).raise_for_status()
        assert sorted(_declared(second.url)) == ["b", "c"]
        requests.delete(f"{second.url}/modalities/c", timeout=30).raise_for_status()
        # So do the routes that talk to one modality: the second asks the first (declared a
        # moment ago on the first) for its worklist.
        item = {"PatientID": "WL-1", "AccessionNumber": "ACC1"}
        made = requests.post(f"{first.url}/worklists/create", json={"Tags": item}, timeout=30)
        made.raise_for_status()
        itself = [first.config.DicomAet, "127.0.0.1", first.node.port]
        requests.put(f"{first.url}/modalities/w", json=itself, timeout=30).raise_for_status()
        asked = requests.post(f"{second.url}/modalities/w/find-worklist",
                              json={"Query": {"PatientID": "", "AccessionNumber": ""}},
                              timeout=60)  # fmt: skip
        assert asked.status_code == 200, asked.text
        assert [answer["AccessionNumber"] for answer in asked.json()] == ["ACC1"]
        requests.delete(f"{second.url}/modalities/w", timeout=30).raise_for_status()

        third = _ours(replace(config))
        try:
            assert third.index.stored_modalities() == {"b": SHORT}
            assert sorted(_declared(third.url)) == ["b"]
        finally:
            third.stop()
    finally:
        first.stop()
        second.stop()


def test_shell_commands_use_the_modalities_of_the_database(tmp_path, database):
    config = database.config(tmp_path / "store", DicomModalitiesInDatabase=True)
    pacs = _ours(replace(config))
    try:
        itself = [pacs.config.DicomAet, "127.0.0.1", pacs.node.port]
        requests.put(f"{pacs.url}/modalities/itself", json=itself, timeout=30).raise_for_status()
        settings = tmp_path / "pacs.json"
        settings.write_text(json.dumps({**asdict(config), "DicomModalities": {}}))
        done = subprocess.run(
            [sys.executable, "-m", "workbench.cli", "echo", "--config", str(settings), "itself"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        pacs.stop()
    assert done.returncode == 0, done.stderr
    assert "C-ECHO itself: success" in done.stdout
