"""Window/level presets offered per modality, and the file's own windows.

Values are (center, width) in modality units. The CT presets are the usual radiology reading
windows (Hounsfield units).
"""

from __future__ import annotations

from collections.abc import Mapping

#: Presets per modality, in the order shown to the user.
MODALITY_PRESETS: dict[str, dict[str, tuple[float, float]]] = {
    "CT": {
        "Brain": (40.0, 80.0),
        "Lung": (-600.0, 1500.0),
        "Mediastinum": (50.0, 350.0),
        "Abdomen": (40.0, 400.0),
        "Bone": (400.0, 1800.0),
    },
}


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def file_windows(attrs: Mapping) -> dict[str, tuple[float, float]]:
    """The windows stored in the file, named by (0028,1055) Window Center & Width Explanation.

    (0028,1050) Window Center and (0028,1051) Window Width may hold several values; each pair
    becomes one entry. Windows with a width below 1 are dropped as invalid.
    """
    centers = _as_list(attrs.get("WindowCenter"))
    widths = _as_list(attrs.get("WindowWidth"))
    names = _as_list(attrs.get("WindowCenterWidthExplanation"))
    windows: dict[str, tuple[float, float]] = {}
    for i, (center, width) in enumerate(zip(centers, widths, strict=False)):
        try:
            c, w = float(center), float(width)
        except (TypeError, ValueError):
            continue
        if w < 1 or (c, w) in windows.values():
            continue
        name = str(names[i]).strip() if i < len(names) and str(names[i]).strip() else ""
        label = f"File: {name}" if name else f"File {i + 1}" if len(centers) > 1 else "File"
        windows[label] = (c, w)
    return windows


def window_presets(attrs: Mapping) -> dict[str, tuple[float, float]]:
    """All presets for a stack: the file's own windows first, then the modality's presets."""
    presets = file_windows(attrs)
    presets.update(MODALITY_PRESETS.get(str(attrs.get("Modality") or ""), {}))
    return presets
