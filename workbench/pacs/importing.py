"""Finding DICOM files to import: files, folders (recursively) and ZIP archives."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .results import IngestResult


@dataclass
class ImportSummary:
    """Result of :meth:`Index.import_path`."""

    results: list[IngestResult] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def stored(self) -> int:
        """Instances newly stored."""
        return sum(r.status == "Success" for r in self.results)

    @property
    def already_stored(self) -> int:
        """Instances that were already in the store."""
        return sum(r.status == "AlreadyStored" for r in self.results)

    def __repr__(self) -> str:
        return (f"ImportSummary(stored={self.stored}, already_stored={self.already_stored}, "
                f"errors={len(self.errors)})")


def iter_sources(paths: Iterable[str | Path], *, recursive: bool) -> Iterator[tuple[str, Any]]:
    """Yield ``(label, opener)`` for every candidate file; ZIP members open as bytes."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(path.rglob("*") if recursive else path.iterdir())
            for item in files:
                if item.is_file():
                    yield from iter_sources([item], recursive=recursive)
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [info.filename for info in archive.infolist() if not info.is_dir()]
            for name in names:
                yield f"{path}:{name}", _zip_opener(path, name)
        else:
            yield str(path), (lambda p=path: p)


def _zip_opener(path: Path, name: str):
    def open_member() -> bytes:
        with zipfile.ZipFile(path) as archive:
            return archive.read(name)
    return open_member
