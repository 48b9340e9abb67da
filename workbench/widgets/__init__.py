"""ipycanvas/ipywidgets viewer for DICOM stacks in notebooks.

:class:`Viewer` is the widget; :mod:`workbench.widgets.model` holds its state as plain,
testable objects.
"""

from __future__ import annotations

from workbench.widgets.model import AnnotationStore, Change, ViewerModel, Viewport
from workbench.widgets.viewer import Viewer

__all__ = ["AnnotationStore", "Change", "Viewer", "ViewerModel", "Viewport"]
