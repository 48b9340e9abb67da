"""Orthanc-compatible REST API (FastAPI): one router per resource, wired by :mod:`.app`."""
