"""DICOM workbench: lazy volumes, a small PACS and a notebook viewer."""

from __future__ import annotations

__version__ = "0.1.0"
