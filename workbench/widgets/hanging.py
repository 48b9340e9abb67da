"""Hanging protocols: which series go in which viewport, chosen from the study.

A protocol is a small declarative rule — which series it applies to (``match`` on their
attributes) and how to arrange them (``arrange``) — tried in order; the first that applies
lays the viewer out. The defaults (:data:`DEFAULT_PROTOCOLS`) do what reading rooms expect:

=================  ============================================================================
``current_vs_prior`` the current study beside the prior one of the same patient, series matched
                   by description, linked (scroll by the same distance, window, zoom)
``mpr``            a CT volume as axial + coronal + sagittal, crossing at its centre
``side_by_side``   series side by side, ordered by words of their descriptions (MR: T1, T2...)
``one_per_viewport`` every image in its own viewport, in a near-square grid (CR/DX)
=================  ============================================================================

Users add rules in Python (:class:`HangingProtocol`) or JSON (:func:`load_protocols`), e.g.
``{"name": "PET MIP", "match": {"Modality": "PT"}, "arrange": "mpr"}``, and put them before
the defaults: ``viewer.hang([my_rule, *DEFAULT_PROTOCOLS])``.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import xarray as xr

from workbench.widgets import mpr
from workbench.widgets.model import MAX_GRID, ViewerModel

#: What a protocol can do with the series it matched.
ARRANGEMENTS = ("current_vs_prior", "mpr", "side_by_side", "one_per_viewport")
#: What linked viewports share (see :meth:`ViewerModel.link`).
LINKS = ("scroll", "window", "zoom")


@dataclass(frozen=True)
class HangingProtocol:
    """One rule: which series it hangs and how.

    Parameters
    ----------
    name
        Shown to the user.
    match
        Attribute (keyword of the series' ``attrs``, e.g. ``"Modality"``) → value or list of
        values, any of which matches (case-insensitive, ``*`` and ``?`` wildcards). A series
        matches when every attribute does.
    arrange
        One of :data:`ARRANGEMENTS`.
    order
        Words of (0008,103E) Series Description putting matched series in order: a series
        whose description contains ``order[0]`` comes first, and so on; the rest after, by
        series number.
    link
        What the viewports share (:data:`LINKS`).
    max_viewports
        At most this many viewports.
    """

    name: str
    match: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    arrange: str = "side_by_side"
    order: Sequence[str] = ()
    link: Sequence[str] = ()
    max_viewports: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string, not {self.name!r}")
        if not isinstance(self.match, Mapping):
            raise TypeError(f"match must be a mapping of attribute to values, not {self.match!r}")
        if self.arrange not in ARRANGEMENTS:
            raise ValueError(f"arrange must be one of {ARRANGEMENTS}, not {self.arrange!r}")
        unknown = [name for name in self.link if name not in LINKS]
        if unknown:
            raise ValueError(f"link must name some of {LINKS}, not {unknown}")
        if not 1 <= int(self.max_viewports) <= MAX_GRID * MAX_GRID:
            raise ValueError(f"max_viewports must be in 1..{MAX_GRID**2}, not {self.max_viewports}")

    @classmethod
    def from_dict(cls, rule: Mapping) -> HangingProtocol:
        """A protocol from plain data (what :func:`load_protocols` reads from JSON)."""
        known = {"name", "match", "arrange", "order", "link", "max_viewports"}
        extra = set(rule) - known
        if extra:
            raise ValueError(f"unknown keys {sorted(extra)} in hanging protocol; known: {known}")
        return cls(**rule)

    def to_dict(self) -> dict:
        """Plain data (JSON-compatible)."""
        data = asdict(self)
        data["match"] = {k: v if isinstance(v, str) else list(v) for k, v in self.match.items()}
        data["order"], data["link"] = list(self.order), list(self.link)
        return data

    def matches(self, stack: xr.DataArray) -> bool:
        """Whether ``stack``'s attributes match every entry of :attr:`match`."""
        for keyword, wanted in self.match.items():
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            value = str(stack.attrs.get(keyword, "")).lower()
            if not any(fnmatch.fnmatchcase(value, str(v).lower()) for v in values):
                return False
        return True

    def sort_key(self, stack: xr.DataArray) -> tuple:
        description = str(stack.attrs.get("SeriesDescription", "")).lower()
        rank = next((i for i, w in enumerate(self.order) if w.lower() in description), None)
        try:
            number = float(stack.attrs.get("SeriesNumber") or math.inf)
        except ValueError:
            number = math.inf
        return (rank is None, rank or 0, number)


DEFAULT_PROTOCOLS: tuple[HangingProtocol, ...] = (
    HangingProtocol(
        "Current and prior", arrange="current_vs_prior", link=("scroll", "window", "zoom")
    ),
    HangingProtocol(
        "CT volume in three planes", {"Modality": "CT"}, arrange="mpr", link=("window",)
    ),
    HangingProtocol(
        "MR series side by side",
        {"Modality": "MR"},
        arrange="side_by_side",
        order=("t1", "t2", "flair", "dwi", "adc"),
        link=("scroll",),
    ),
    HangingProtocol(
        "Radiographs one per viewport", {"Modality": ["CR", "DX", "RG"]}, "one_per_viewport"
    ),
)


def load_protocols(source: str | os.PathLike | Sequence[Mapping]) -> list[HangingProtocol]:
    """Protocols from a JSON file (a list of rules), JSON text or plain data."""
    if isinstance(source, (str, os.PathLike)) and os.path.exists(source):
        with open(source, encoding="utf-8") as fp:
            rules = json.load(fp)
    elif isinstance(source, str):
        rules = json.loads(source)
    else:
        rules = source
    if isinstance(rules, Mapping):
        rules = [rules]
    return [HangingProtocol.from_dict(rule) for rule in rules]


def _studies(stacks: Sequence[xr.DataArray]) -> list[list[int]]:
    """Indices of stacks per study, the most recent study first."""
    by_study: dict[str, list[int]] = {}
    for index, stack in enumerate(stacks):
        by_study.setdefault(str(stack.attrs.get("StudyInstanceUID") or index), []).append(index)
    return sorted(
        by_study.values(), key=lambda ix: str(stacks[ix[0]].attrs.get("StudyDate") or ""),
        reverse=True,
    )  # fmt: skip


def _grid(count: int, square: bool) -> tuple[int, int]:
    if not square:
        return (1, count) if count <= 4 else (2, math.ceil(count / 2))
    columns = math.ceil(math.sqrt(count))
    return (math.ceil(count / columns), columns)


def _prior_match(current: xr.DataArray, prior: list[xr.DataArray]) -> xr.DataArray | None:
    def same(key: str, stack: xr.DataArray) -> bool:
        return str(stack.attrs.get(key, "")).lower() == str(current.attrs.get(key, "")).lower()

    for keys in (("Modality", "SeriesDescription"), ("Modality",)):
        found = [s for s in prior if all(same(k, s) for k in keys)]
        if found:
            return found[0]
    return None


def hang(
    model: ViewerModel, protocols: Sequence[HangingProtocol] = DEFAULT_PROTOCOLS
) -> HangingProtocol | None:
    """Lay ``model`` out by the first protocol that applies to its stacks.

    Returns
    -------
    HangingProtocol or None
        The protocol used (``None``: none applied and the layout is unchanged).
    """
    stacks = model.stacks
    studies = _studies(stacks)
    if not studies:
        return None
    current = [stacks[i] for i in studies[0]]
    for protocol in protocols:
        matched = sorted((s for s in current if protocol.matches(s)), key=protocol.sort_key)
        if not matched:
            continue
        if protocol.arrange == "current_vs_prior":
            patient = current[0].attrs.get("PatientID")
            priors = [
                [stacks[i] for i in study]
                for study in studies[1:]
                if stacks[study[0]].attrs.get("PatientID") == patient
            ]
            pair = next(
                ((s, p) for s in matched for p in [_prior_match(s, priors[0])] if p is not None),
                None,
            ) if priors else None  # fmt: skip
            if pair is None:
                continue
            _show(model, list(pair), (1, 2))
        elif protocol.arrange == "mpr":
            volume = next((s for s in matched if mpr.is_volume(s)), None)
            if volume is None:
                continue
            model.show_mpr(volume)
        else:
            chosen = matched[: protocol.max_viewports]
            _show(model, chosen, _grid(len(chosen), protocol.arrange == "one_per_viewport"))
        if protocol.link:
            shown = model.viewports[: 2 if protocol.arrange == "current_vs_prior" else None]
            model.link(shown, **{name: name in protocol.link for name in LINKS})
        else:
            model.unlink()
        return protocol
    return None


def _show(model: ViewerModel, stacks: list[xr.DataArray], grid: tuple[int, int]) -> None:
    model.layout = grid
    for index, stack in enumerate(stacks):
        model.show(stack, index)
    model.active = 0
