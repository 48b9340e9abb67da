"""Grayscale Softcopy Presentation States: annotations and display settings as DICOM objects.

- :func:`write` builds a GSPS object (PS3.3 A.33.1) from a
  :class:`~workbench.io.presentation.PresentationState`, with highdicom.
- :func:`read` turns a presentation state, ours or another program's, back into a
  ``PresentationState``; what the viewer cannot show is listed in ``state.not_shown``.
- :func:`render` shows an image frame through a state's display settings (VOI, polarity,
  rotation and flip, displayed area), as a GSPS-conformant display would.

Examples
--------
>>> import pydicom
>>> from workbench.io import gsps
>>> from workbench.io.presentation import Annotation, DisplaySettings, PresentationState
>>> image = pydicom.dcmread(path, stop_before_pixels=True)  # doctest: +SKIP
>>> state = PresentationState("Findings", [Annotation("length", [(10, 20), (90, 20)])],
...                           DisplaySettings(window=(40, 400)))
>>> gsps.write(state, [image]).save_as("findings.dcm")  # doctest: +SKIP
>>> gsps.read("findings.dcm").annotations[0].points  # doctest: +SKIP
[(10.0, 20.0), (90.0, 20.0)]
"""

from __future__ import annotations

from typing import Any

from workbench.io.gsps.reader import read
from workbench.io.gsps.rendering import render

__all__ = ["content_label", "read", "render", "write"]


def __getattr__(name: str) -> Any:
    # Writing needs highdicom, which takes a while to import; viewers that only list and
    # read states never pay for it.
    if name in ("write", "content_label"):
        from workbench.io.gsps import writer

        return getattr(writer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
