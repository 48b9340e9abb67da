"""ipycanvas/ipywidgets viewer for DICOM stacks in notebooks.

:class:`Viewer` is the widget; :mod:`workbench.widgets.model` holds its state as plain,
testable objects (``viewer.model``).

>>> from workbench.widgets import Viewer                 # doctest: +SKIP
>>> viewer = Viewer("study_folder/", layout=(1, 2))      # doctest: +SKIP
>>> viewer                                               # doctest: +SKIP
>>> viewer.viewports[0].frame = 40                       # doctest: +SKIP
>>> viewer.viewports[0].window = (40, 400)               # doctest: +SKIP
>>> viewer.annotations.table()                           # doctest: +SKIP
>>> viewer.layout = "mpr"               # axial, coronal, sagittal  # doctest: +SKIP
>>> viewer.viewports[1].slab = (20, "mip")                # doctest: +SKIP
>>> viewer.link(window=True)                             # doctest: +SKIP

Mouse and keys on a viewport:

- left button: the active tool (W/L, zoom, pan, scroll, select, crosshair, or a
  measurement);
  middle button: pan; right button: zoom;
- wheel: next/previous frame; Ctrl or Shift + wheel: zoom at the pointer;
- arrow keys: one frame; PageUp/PageDown: ten frames; Home/End: first/last frame;
- Enter or double click: finish a VHS; Escape: cancel a drawing; Delete: remove the
  selected annotation;
- thumbnails: click to show in the active viewport, or drag onto a viewport.
"""

from __future__ import annotations

from workbench.widgets.hanging import DEFAULT_PROTOCOLS, HangingProtocol, load_protocols
from workbench.widgets.model import AnnotationStore, Change, Crosshair, Slab, ViewerModel, Viewport
from workbench.widgets.viewer import Viewer

__all__ = [
    "DEFAULT_PROTOCOLS",
    "AnnotationStore",
    "Change",
    "Crosshair",
    "HangingProtocol",
    "Slab",
    "Viewer",
    "ViewerModel",
    "Viewport",
    "load_protocols",
]
