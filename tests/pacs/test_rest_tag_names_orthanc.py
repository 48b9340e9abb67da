"""Every attribute of every real file named, typed and valued as a real Orthanc 1.10 shows it
in ``/instances/{id}/tags`` (private names from the dictionary Orthanc loads, retired names,
group lengths), and ``/file`` in the DICOM JSON and XML models when ``Accept`` asks for them,
as Orthanc answers."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

pytestmark = pytest.mark.peers

#: Where we knowingly answer otherwise than Orthanc 1.10, by attribute name: an AT with several
#: values (Orthanc shows the first only), palette descriptors of implicit VR files (Orthanc:
#: null; ours: their values).
KEPT_DIFFERENT = {"FrameIncrementPointer", "RedPaletteColorLookupTableDescriptor",
                  "GreenPaletteColorLookupTableDescriptor",
                  "BluePaletteColorLookupTableDescriptor"}  # fmt: skip


def differences(theirs: dict, ours: dict, path: str = "") -> list[str]:
    """Where two full ``/tags`` listings differ (name, type or value), sequences walked."""
    found = []
    for key in sorted(set(theirs) | set(ours)):
        a, b = theirs.get(key), ours.get(key)
        if a is None or b is None:
            found.append(f"{path}{key}: only in {'ours' if a is None else 'Orthanc'}")
            continue
        if a["Name"] in KEPT_DIFFERENT:
            continue
        described = ("Name", "Type", "PrivateCreator")
        if [a.get(k) for k in described] != [b.get(k) for k in described]:
            found.append(f"{path}{key}: {a} != {b}"[:300])
        elif a["Type"] == "Sequence":
            for n, (x, y) in enumerate(zip(a["Value"], b["Value"], strict=True)):
                found += differences(x, y, f"{path}{key}/{n}/")
        elif a["Value"] != b["Value"]:
            found.append(f"{path}{key} ({a['Name']}): {a['Value']!r} != {b['Value']!r}")
    return found


def test_tag_names_types_and_values_as_orthanc(orthanc_loaded, live_server):
    import requests

    instances = orthanc_loaded.get("/instances").json()
    assert instances
    named_private = 0
    for instance in instances:
        theirs = orthanc_loaded.get(f"/instances/{instance}/tags").json()
        ours = requests.get(f"{live_server}/instances/{instance}/tags", timeout=30).json()
        assert not differences(theirs, ours), (instance, differences(theirs, ours)[:10])
        named_private += sum(1 for key, entry in ours.items()
                             if int(key[:4], 16) % 2 and entry["Name"] not in (
                                 "Unknown Tag & Data", "PrivateCreator"))  # fmt: skip
        simplified = requests.get(f"{live_server}/instances/{instance}/simplified-tags",
                                  timeout=30).json()  # fmt: skip
        theirs_simplified = orthanc_loaded.get(f"/instances/{instance}/simplified-tags").json()
        assert set(simplified) == set(theirs_simplified), instance
        for name, value in theirs_simplified.items():
            if name not in KEPT_DIFFERENT and not isinstance(value, list):
                assert simplified[name] == value, (instance, name)
    assert named_private > 0  # the vendor files' private attributes are named


#: Values Orthanc 1.10 writes otherwise in the DICOM JSON model, by tag: 64-bit integers
#: (null), DS values it rounds, and private attributes whose VR it does not know (UN).
def _comparable(element: dict) -> bool:
    return element.get("vr") not in ("SV", "UV", "DS", "UN", None)


def test_file_as_dicom_json_and_xml_by_accept(orthanc_loaded, live_server):
    import requests

    for instance in orthanc_loaded.get("/instances").json():
        theirs = orthanc_loaded.get(f"/instances/{instance}/file",
                                    headers={"Accept": "application/dicom+json"})  # fmt: skip
        ours = requests.get(f"{live_server}/instances/{instance}/file", timeout=30,
                            headers={"Accept": "application/dicom+json"})  # fmt: skip
        assert ours.status_code == theirs.status_code == 200
        assert ours.headers["content-type"] == theirs.headers["content-type"]
        mine, model = ours.json(), theirs.json()
        # Orthanc leaves out what 1.10 cannot write; everything it writes we write.
        assert not set(model) - set(mine), instance
        for key, element in model.items():
            if key in mine and int(key[:4], 16) % 2 == 0 and _comparable(element):
                assert mine[key] == element, (instance, key)
        # Pixel data: inline when native, left out when compressed, as Orthanc.
        assert ("7FE00010" in mine) == ("7FE00010" in model), instance
        xml = requests.get(f"{live_server}/instances/{instance}/file", timeout=30,
                           headers={"Accept": "application/dicom+xml"})  # fmt: skip
        assert xml.headers["content-type"] == "application/dicom+xml"
        root = ElementTree.fromstring(xml.content)
        assert len(root) == len(mine)
    # Without those types in Accept, the file itself.
    plain = requests.get(f"{live_server}/instances/{instance}/file", timeout=30,
                         headers={"Accept": "application/json"})  # fmt: skip
    assert (
        plain.headers["content-type"] == "application/dicom" and plain.content[128:132] == b"DICM"
    )
