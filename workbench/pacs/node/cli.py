"""``workbench echo | find | move | send``: the node's client side from a shell.

``MODALITY`` is a name declared in ``DicomModalities`` of the configuration (in the index's
database with ``DicomModalitiesInDatabase``), or an ad-hoc ``AET@host:port``, as on the
settings page of a viewer.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _modality_name(config: Any, text: str) -> str:
    """Declare an ``AET@host:port`` modality on the fly; return the name to use."""
    if config.DicomModalitiesInDatabase:
        from workbench.pacs.index import Index

        Index(config, reconcile=False).close()  # opening it reads them into the config
    if "@" not in text:
        return text
    aet, _, address = text.partition("@")
    host, _, port = address.rpartition(":")
    if not aet or not host or not port.isdigit():
        raise SystemExit(f"workbench: expected a modality name or AET@host:port, got {text!r}")
    config.DicomModalities[text] = [aet, host, int(port)]
    return text


def _pairs(items: list[str], command: str) -> dict[str, str]:
    query = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"workbench {command}: expected KEYWORD=VALUE, got {item!r}")
        query[key] = value
    return query


def _node(config: Any, index: Any = None):
    from .dicom_node import DicomNode

    return DicomNode(index, config)


def _run(command: str, action: Callable[[], int]) -> int:
    from .scu import DicomNetworkError  # here: the other commands do not need pynetdicom

    try:
        return action()
    except (DicomNetworkError, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"workbench {command}: {message}", file=sys.stderr)
        return 1


def cmd_echo(args: argparse.Namespace, config: Any) -> int:
    name = _modality_name(config, args.modality)

    def action() -> int:
        _node(config).echo(name)
        print(f"C-ECHO {name}: success")
        return 0

    return _run("echo", action)


def cmd_find(args: argparse.Namespace, config: Any) -> int:
    from workbench.pacs.dicomjson import dataset_to_json

    name = _modality_name(config, args.modality)
    query = _pairs(args.query, "find")

    def action() -> int:
        answers = _node(config).find(name, args.level, query)
        for answer in answers:
            simplified = dataset_to_json(answer, form="simplify")
            if args.json:
                print(json.dumps(simplified))
            else:
                shown = {
                    k: v
                    for k, v in simplified.items()
                    if k not in ("SpecificCharacterSet", "QueryRetrieveLevel") and v
                }
                print("  ".join(f"{k}={v}" for k, v in shown.items()))
        print(f"{len(answers)} answer(s)", file=sys.stderr)
        return 0

    return _run("find", action)


def cmd_move(args: argparse.Namespace, config: Any) -> int:
    name = _modality_name(config, args.modality)
    query = _pairs(args.query, "move")

    def action() -> int:
        result = _node(config).move(name, query, args.target, level=args.level)
        print(
            f"C-MOVE {name} -> {args.target or config.DicomAet}: {result.completed} completed, "
            f"{result.failed} failed, {result.warning} warning(s)"
        )
        return 0 if result.failed == 0 else 1

    return _run("move", action)


def cmd_send(args: argparse.Namespace, config: Any) -> int:
    name = _modality_name(config, args.modality)
    files: list[Path | str] = []
    for item in args.resources:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            files.append(path if path.is_file() else item)
    index = None
    if any(isinstance(item, str) for item in files):
        from workbench.pacs.index import Index

        index = Index(config, reconcile=False)

    def action() -> int:
        result = _node(config, index).store(name, files)
        print(f"C-STORE {name}: {len(result.sent)} sent, {len(result.failed)} failed")
        for uid, reason in list(result.failed.items())[:20]:
            print(f"  {uid}: {reason}", file=sys.stderr)
        return 0 if result.ok else 1

    return _run("send", action)


def register_commands(sub: Any, add_config_args: Callable, config_from: Callable) -> None:
    """Add ``echo``, ``find``, ``move`` and ``send`` to the ``workbench`` subcommands."""

    def bind(function: Callable) -> Callable:
        return lambda args: function(args, config_from(args))

    echo = sub.add_parser("echo", help="C-ECHO a modality (name or AET@host:port)")
    add_config_args(echo)
    echo.add_argument("modality")
    echo.set_defaults(func=bind(cmd_echo))

    find = sub.add_parser("find", help="C-FIND a modality, e.g. find PACS study PatientName=DOE*")
    add_config_args(find)
    find.add_argument("modality")
    find.add_argument("level", help="patient, study, series or instance")
    find.add_argument("query", nargs="*", help="KEYWORD=PATTERN; KEYWORD= asks for a value")
    find.add_argument("--json", action="store_true", help="one JSON object per answer")
    find.set_defaults(func=bind(cmd_find))

    move = sub.add_parser("move", help="C-MOVE from a modality, e.g. move PACS StudyInstanceUID=…")
    add_config_args(move)
    move.add_argument("modality")
    move.add_argument("query", nargs="+", help="KEYWORD=VALUE unique keys")
    move.add_argument("--target", help="destination AE title (default: our DicomAet)")
    move.add_argument("--level", help="retrieve level (default: deepest unique key given)")
    move.set_defaults(func=bind(cmd_move))

    send = sub.add_parser("send", help="C-STORE files, folders or index IDs to a modality")
    add_config_args(send)
    send.add_argument("modality")
    send.add_argument("resources", nargs="+", help="files, folders, or resource IDs")
    send.set_defaults(func=bind(cmd_send))
