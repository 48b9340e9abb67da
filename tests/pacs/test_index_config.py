"""Configuration: Orthanc option names, typos refused, unsupported options refused clearly."""

from __future__ import annotations

import json

import pytest

from workbench.pacs.config import Config


def test_orthanc_style_file_with_overrides(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"Name": "teaching", "DicomAet": "TEACH", "HttpPort": 9000}))
    config = Config.load(path, HttpPort=9100, DicomPort=None)
    assert (config.Name, config.DicomAet, config.HttpPort, config.DicomPort) == (
        "teaching",
        "TEACH",
        9100,
        4242,
    )
    assert config.BindAddress == "127.0.0.1"


def test_a_misspelt_option_is_an_error_naming_it(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"MaximumStorageSise": 10}))
    with pytest.raises(ValueError, match="MaximumStorageSise"):
        Config.load(path)


def test_storage_compression_is_refused_rather_than_ignored():
    with pytest.raises(ValueError, match="StorageCompression is not supported"):
        Config.load(StorageCompression=True)
    assert Config.load(StorageCompression=False).StorageCompression is False
