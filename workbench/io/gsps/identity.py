"""How the presentation states we write identify themselves (General Equipment, series).

Kept apart from :mod:`workbench.io.gsps.writer` so that reading and listing states does not
import highdicom.
"""

from __future__ import annotations

#: What our objects say about where they came from (General Equipment module).
MANUFACTURER = "workbench"
MODEL_NAME = "workbench.io.gsps"

#: Series Number of new presentation-state series: high, so they sort after the images.
DEFAULT_SERIES_NUMBER = 9901

#: Series Description of new presentation-state series.
SERIES_DESCRIPTION = "Annotations"
