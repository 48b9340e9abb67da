"""Grayscale Softcopy Presentation States: annotations and display settings as DICOM objects.

- :func:`write` builds a GSPS object (PS3.3 A.33.1) from a
  :class:`~workbench.io.presentation.PresentationState`, with highdicom.
- :func:`read` turns a GSPS, ours or another program's, back into a ``PresentationState``;
  what the viewer cannot show is listed in ``state.not_shown``.
- :func:`render` shows an image through a state's display settings (VOI, polarity, rotation
  and flip, displayed area), as a GSPS-conformant display would.
"""

from __future__ import annotations

from workbench.io.gsps.writer import content_label, write

__all__ = ["content_label", "write"]
