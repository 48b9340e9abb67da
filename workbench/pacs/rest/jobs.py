"""``/jobs``: follow and control the background jobs, as Orthanc's REST API.

- ``GET /jobs`` (IDs; ``?expand``: the jobs), ``GET /jobs/{id}``;
- ``POST /jobs/{id}/cancel``, ``pause``, ``resume``, ``resubmit``;
- ``GET /jobs/{id}/{output}``: what a job left, e.g. ``archive`` (the ZIP of an archive job).

:func:`now_or_as_job` is how a route offers ``"Asynchronous": true``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ..errors import BadRequestError, UnknownResourceError
from ..jobs import Job, Jobs
from .deps import flag

router = APIRouter(prefix="/jobs", tags=["jobs"])


def jobs_of(request: Request) -> Jobs:
    return request.app.state.jobs


def asynchronous(body: Any) -> bool:
    """Whether a request body asks for a job (``Asynchronous: true`` or ``Synchronous:
    false``, Orthanc's two spellings)."""
    if not isinstance(body, dict):
        return False
    return bool(body.get("Asynchronous")) or body.get("Synchronous") is False


def priority_of(body: Any) -> int:
    priority = body.get("Priority", 0) if isinstance(body, dict) else 0
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise BadRequestError('"Priority" must be an integer')
    return priority


async def now_or_as_job(request: Request, body: Any, job_type: str,
                        work: Callable[[Job], Any]) -> Any:  # fmt: skip
    """Run ``work`` now (its answer is the route's), or as a job when the body asks: then the
    answer is ``{"ID", "Path"}`` and the job's ``Content`` is what ``work`` returns."""
    if asynchronous(body):
        job = jobs_of(request).submit(job_type, work, priority=priority_of(body))
        return {"ID": job.id, "Path": f"/jobs/{job.id}"}
    return await run_in_threadpool(work, Job(job_type, work))


@router.get("", summary="The jobs (IDs, or with ?expand the jobs)")
def list_jobs(request: Request, expand: str | None = Query(None)) -> list[Any]:
    jobs = jobs_of(request).all()
    return [job.as_orthanc() for job in jobs] if flag(expand) else [job.id for job in jobs]


@router.get("/{job_id}", summary="One job: state, progress, content, error")
def get_job(job_id: str, request: Request) -> dict[str, Any]:
    return jobs_of(request).get(job_id).as_orthanc()


def _control(action: str) -> Callable:
    def control(job_id: str, request: Request) -> dict[str, Any]:
        getattr(jobs_of(request), action)(job_id)
        return {}

    control.__name__ = f"{action}_job"
    return control


for _action in ("cancel", "pause", "resume", "resubmit"):
    router.post(f"/{{job_id}}/{_action}", summary=f"{_action.capitalize()} a job")(
        _control(_action)
    )


@router.get("/{job_id}/{output}", summary="An output of a finished job (e.g. archive)")
def job_output(job_id: str, output: str, request: Request) -> FileResponse:
    job = jobs_of(request).get(job_id)
    found = job.outputs.get(output)
    if found is None:
        raise UnknownResourceError("Job output", f"{output} of job {job_id}")
    return FileResponse(found.path, media_type=found.media_type, filename=found.filename)
