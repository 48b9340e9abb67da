"""``workbench serve | import | ls`` (and the DIMSE client commands of the node)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from workbench.pacs.config import Config


def _config_from(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {
        "StorageDirectory": getattr(args, "storage", None),
        "HttpPort": getattr(args, "http_port", None),
        "DicomPort": getattr(args, "dicom_port", None),
        "DicomAet": getattr(args, "aet", None),
        "BindAddress": getattr(args, "bind", None),
        "DicomWorkerProcesses": getattr(args, "dicom_workers", None),
    }
    if getattr(args, "remote", False):
        overrides["RemoteAccessAllowed"] = True
    try:
        return Config.load(args.config, **overrides)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"workbench: {exc}") from exc


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", type=Path, help="JSON configuration (Orthanc names)")
    parser.add_argument("--storage", help="StorageDirectory")


def cmd_serve(args: argparse.Namespace) -> int:
    """Run index + REST (+ DIMSE node) in the foreground until Ctrl-C."""
    from workbench.pacs.errors import PacsError
    from workbench.pacs.heap import freeze_startup_objects
    from workbench.pacs.node.dicom_node import receive_on_storage
    from workbench.pacs.ohif import dist_folder as ohif_dist_of
    from workbench.pacs.server import serve

    config = _config_from(args)
    try:
        handle = serve(config, dicom=not args.no_dicom, log_level=args.log_level)
    except (ValueError, RuntimeError, OSError, PacsError) as exc:  # PacsError: database away
        print(f"workbench: cannot start: {exc}", file=sys.stderr)
        return 1
    receive_on_storage(handle.index)
    if handle.header_helpers is not None:
        handle.header_helpers.start()  # a long-running server has them ready for uploads
    stats = handle.index.statistics()
    print(f"workbench PACS {config.Name!r}")
    print(
        f"  storage   {config.storage_path.resolve()} "
        f"({stats['CountInstances']} instances, {stats['CountPatients']} patients)"
    )
    report = handle.index.last_reconcile
    if report is not None and report.repaired:
        print(f"  reconcile {report.summary()}")
    print(
        f"  REST      {handle.url}  (OpenAPI: {handle.url}/docs)"
        + (
            "  [basic auth]"
            if config.RegisteredUsers
            and (config.RemoteAccessAllowed or config.AuthenticationEnabled)
            else ""
        )
    )
    print(f"  web page  {handle.url}/ui/")
    if ohif_dist_of(config) is not None:
        print(f"  OHIF      {handle.url}/ohif/")
    if handle.node is not None:
        workers = handle.node.workers
        print(
            f"  DICOM     {config.DicomAet}@{handle.node.host}:{handle.node.port}"
            + (f"  ({workers.count} worker processes)" if workers else "")
        )
    freeze_startup_objects()
    print("Press Ctrl-C to stop.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    handle.stop()
    print("stopped")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import files, folders and ZIPs into the store."""
    from workbench.pacs.heap import freeze_startup_objects
    from workbench.pacs.index import Index

    index = Index(_config_from(args))
    freeze_startup_objects()  # an import of thousands of files is a long run too
    before = index.statistics()["CountInstances"]
    try:
        summary = index.import_path(*args.paths, progress=not args.quiet)
    except KeyboardInterrupt:
        stored = index.statistics()["CountInstances"] - before
        index.close()
        print(
            f"workbench import: interrupted after {stored} instance(s) were stored; the "
            "files of the batch in progress are indexed or removed when the store next "
            "opens",
            file=sys.stderr,
        )
        return 130
    print(
        f"{summary.stored} stored, {summary.already_stored} already stored, "
        f"{len(summary.errors)} refused"
    )
    for label, message in list(summary.errors.items())[:20]:
        print(f"  refused {label}: {message}", file=sys.stderr)
    if len(summary.errors) > 20:
        print(f"  ... and {len(summary.errors) - 20} more", file=sys.stderr)
    return 0 if not summary.errors or summary.results else 1


def cmd_ls(args: argparse.Namespace) -> int:
    """List patients/studies/series/instances, optionally filtered by a DICOM query."""
    from workbench.pacs.errors import PacsError
    from workbench.pacs.index import Index
    from workbench.pacs.tags import normalize_level

    index = Index(_config_from(args), reconcile=False)
    query = {}
    for item in args.query:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"workbench ls: expected KEY=VALUE, got {item!r}")
        query[key] = value
    try:
        ids = index.find(args.level, query, limit=args.limit)
    except PacsError as exc:
        raise SystemExit(f"workbench ls: {exc}") from exc
    level = normalize_level(args.level)
    for resource in index.resources(level, ids):
        if args.json:
            print(json.dumps(resource))
            continue
        tags = resource["MainDicomTags"]
        patient = resource.get("PatientMainDicomTags", {})
        columns = _LS_COLUMNS.get(resource["Type"], ())
        values = [str({**patient, **tags}.get(key, "")) for key in columns]
        print(resource["ID"], *values, sep="  ")
    return 0


_LS_COLUMNS = {
    "Patient": ("PatientID", "PatientName", "PatientBirthDate"),
    "Study": ("PatientID", "PatientName", "StudyDate", "StudyDescription"),
    "Series": ("Modality", "SeriesNumber", "SeriesDescription"),
    "Instance": ("InstanceNumber", "SOPInstanceUID"),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``workbench`` argument parser (subcommands register themselves here)."""
    parser = argparse.ArgumentParser(prog="workbench", description="DICOM workbench")
    parser.add_argument("--verbose", "-v", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the PACS (index, REST API, DICOM node)")
    _add_config_args(serve)
    serve.add_argument("--http-port", type=int, help="HttpPort")
    serve.add_argument("--dicom-port", type=int, help="DicomPort")
    serve.add_argument("--aet", help="DicomAet")
    serve.add_argument("--bind", help="BindAddress (default 127.0.0.1)")
    serve.add_argument(
        "--remote",
        action="store_true",
        help="RemoteAccessAllowed: bind all interfaces (needs RegisteredUsers)",
    )
    serve.add_argument("--no-dicom", action="store_true", help="REST only, no DICOM node")
    serve.add_argument(
        "--dicom-workers",
        type=int,
        metavar="N",
        help="DicomWorkerProcesses: processes serving DICOM associations (default 1, this one)",
    )
    serve.add_argument("--log-level", default="warning")
    serve.set_defaults(func=cmd_serve)

    imp = sub.add_parser("import", help="import files, folders or ZIPs into the store")
    _add_config_args(imp)
    imp.add_argument("paths", nargs="+", type=Path)
    imp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_import)

    ls = sub.add_parser("ls", help="list resources, e.g. ls studies PatientName='DOE*'")
    _add_config_args(ls)
    ls.add_argument("level", choices=["patients", "studies", "series", "instances"])
    ls.add_argument("query", nargs="*", help="KEYWORD=PATTERN (wildcards, ranges)")
    ls.add_argument("--limit", type=int)
    ls.add_argument("--json", action="store_true", help="one Orthanc JSON resource per line")
    ls.set_defaults(func=cmd_ls)

    # DIMSE client commands (echo, find, move, send) register on ``sub`` here.
    from workbench.pacs.node.cli import register_commands

    register_commands(sub, _add_config_args, _config_from)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``workbench`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
