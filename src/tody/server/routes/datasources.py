"""The Data Sources API (`/v0/datasources`): create, list, describe, rename, truncate, drop."""

from __future__ import annotations

import uuid
from pathlib import Path

from starlette.responses import Response

from tody.server.auth import ANY_TOKEN, ByParam, Call, Needs, api, blocking, datafile_response, json_response
from tody.server.params import is_form, read_body
from tody.services.errors import BadRequest
from tody.services.ingest import url_import
from tody.services.ingest.imports import response
from tody.services.tokens import DATASOURCES_CREATE

DATAFILE_INSTRUCTIONS = (
    "SCHEMA",
    "DESCRIPTION",
    "ENGINE",
    "INDEXES",
    "TOKEN",
    "TAGS",
    "SHARED_WITH",
    "INCLUDE",
)

# What `POST /v0/datasources` needs depends on what it does (Tinybird: a replace needs CREATE).
BY_MODE = ByParam(
    "mode",
    "create",
    {
        "create": Needs(DATASOURCES_CREATE),
        "append": Needs("DATASOURCES:APPEND:{name}", DATASOURCES_CREATE),
        "replace": Needs(DATASOURCES_CREATE),
    },
)
# Its schema and statistics, not its rows: any scope on it will do (`tb datasource append` reads the
# row count afterwards with the append token).
DESCRIBE = Needs(
    "DATASOURCES:READ:{name}", "DATASOURCES:APPEND:{name}", "DATASOURCES:DROP:{name}", DATASOURCES_CREATE
)


async def _datafile_body(call: Call) -> str | None:
    """A whole `.datasource` file sent as the body (raw text, or form field `datasource`)."""
    if "datasource" in call.params:
        return call.params["datasource"]
    if is_form(call.request):
        return None
    body = await read_body(call.request)
    if not body.strip():
        return None
    text = body.decode(errors="replace")
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
    if call.params.get("format") == "datasource" or first.split(" ")[0].upper() in DATAFILE_INSTRUCTIONS:
        return text
    return None


@api("/v0/datasources", ["GET"], needs=ANY_TOKEN)
async def list_datasources(call: Call):
    svc = call.platform.datasources
    records = svc.visible(call.principal)
    stats = await blocking(svc.statistics, call.principal.workspace)
    listed = [svc.describe(r, stats) for r in records]
    for origin, rec in call.platform.sharing.readable_shared(call.principal):
        shared = svc.describe(rec, await blocking(svc.statistics, origin))
        shared.update(name=f"{origin.name}.{rec.name}", shared_from={"id": origin.id, "name": origin.name})
        shared["shared_with"] = []  # other destinations are not this workspace's business
        listed.append(shared)
    return json_response({"datasources": listed})


@api("/v0/datasources", ["POST"], needs=BY_MODE)
async def create_datasource(call: Call):
    mode = call.params.get("mode", "create")
    if mode not in ("create", "append", "replace"):
        raise BadRequest(f"Unknown mode '{mode}': use create, append or replace")
    svc = call.platform.datasources
    name = call.params.get("name")
    if not name:
        raise BadRequest("Missing 'name': the name of the Data Source")
    if call.params.get("url"):
        return await _import_url(call, name, mode, call.params["url"])
    spooled = await _spool_upload(call)
    if spooled is not None:
        return await _import(call, name, mode, *spooled)
    if mode != "create":
        raise BadRequest(f"mode={mode} needs data: a file part (csv, ndjson or parquet), a body, or url")
    call.principal.require(DATASOURCES_CREATE)
    datafile = await _datafile_body(call)
    rec = await blocking(svc.create, call.principal, name, call.params, datafile)
    return json_response({"datasource": await _described(call, rec)})


async def _spool_upload(call: Call) -> tuple[Path, str | None, str] | None:
    """Write the uploaded data (any single file part, or a raw body that is not a datafile) to the
    spool directory without holding it in memory. Returns (path, filename, import_id)."""
    imports = call.platform.imports
    import_id = uuid.uuid4().hex
    path = imports.spool_path(import_id)
    if call.params.files:
        upload = next(iter(call.params.files.values()))
        with path.open("wb") as out:
            while chunk := await upload.read(1 << 20):
                out.write(chunk)
        return path, upload.filename, import_id
    if is_form(call.request) or call.params.get("format") == "datasource":
        return None
    # Only a create can carry a .datasource body; appends stream straight to disk, never whole in memory.
    if call.params.get("mode", "create") == "create" and await _datafile_body(call) is not None:
        return None
    size = 0
    with path.open("wb") as out:
        async for chunk in call.request.stream():
            out.write(chunk)
            size += len(chunk)
    if size == 0:
        path.unlink(missing_ok=True)
        return None
    return path, call.params.get("filename"), import_id


async def _import(call: Call, name: str, mode: str, path: Path, filename: str | None, import_id: str):
    try:
        out = await blocking(
            call.platform.imports.run, call.principal, name, mode, path, call.params, filename, import_id
        )
    finally:
        path.unlink(missing_ok=True)
    call.request.app.state.metrics.rows_ingested.inc(out["result"].rows_stored)
    described = await _described(call, out["datasource"])
    return json_response(response(described, out["result"], import_id, out["discarded_rows"]))


async def _import_url(call: Call, name: str, mode: str, url: str):
    """Queue a job that downloads `url` and imports it; answer at once with the job (Tinybird's shape)."""
    platform = call.platform
    job, import_id = await blocking(
        url_import.submit,
        platform.imports,
        platform.jobs,
        call.principal,
        name,
        mode,
        url,
        call.params,
        url_import.UrlLimits.from_config(platform.config),
        on_rows=call.request.app.state.metrics.rows_ingested.inc,
    )
    rec = platform.catalog.datasource(call.principal.workspace.id, name)
    described = job.params["datasource"] if rec is None else await _described(call, rec)
    body = platform.jobs.describe(job, call.host)
    return json_response(
        {
            "id": job.id,
            "job_id": job.id,
            "job_url": body["job_url"],
            "job": body,
            "datasource": described,
            "status": job.status,
            "import_id": import_id,
        }
    )


@api("/v0/datasources/{name}.datasource", ["GET"], needs=DESCRIBE)
async def datasource_file(call: Call):
    svc = call.platform.datasources
    rec = _readable(call)
    return datafile_response(svc.datafile(rec))


@api("/v0/datasources/{name}", ["GET"], needs=DESCRIBE)
async def get_datasource(call: Call):
    svc = call.platform.datasources
    rec = _readable(call)
    if call.params.get("format") == "datasource":
        return datafile_response(svc.datafile(rec))
    return json_response(await _described(call, rec))


@api("/v0/datasources/{name}", ["PUT"], needs=DATASOURCES_CREATE)
async def update_datasource(call: Call):
    svc = call.platform.datasources
    rec = svc.get(call.principal.workspace, call.path("name"))
    rec = await blocking(
        svc.rename, call.principal, rec, call.params.get("name"), call.params.get("description")
    )
    return json_response(await _described(call, rec))


@api("/v0/datasources/{name}", ["DELETE"], needs=Needs("DATASOURCES:DROP:{name}"))
async def delete_datasource(call: Call):
    svc = call.platform.datasources
    rec = svc.get(call.principal.workspace, call.path("name"))
    if call.params.flag("dry_run"):
        return json_response({"dependent_pipes": svc.dependents(call.principal.workspace, rec)})
    await blocking(svc.drop, call.principal, rec, force=call.params.flag("force"))
    return Response(status_code=204)


@api("/v0/datasources/{name}/truncate", ["POST"], needs=Needs("DATASOURCES:DROP:{name}"))
async def truncate_datasource(call: Call):
    svc = call.platform.datasources
    rec = svc.get(call.principal.workspace, call.path("name"))
    await blocking(svc.truncate, call.principal, rec)
    return json_response({"datasource": {"id": rec.id, "name": rec.name}, "truncated": True})


async def _described(call: Call, rec) -> dict:
    """The Data Source object with its current row count and size."""
    svc = call.platform.datasources
    return svc.describe(rec, await blocking(svc.statistics, call.principal.workspace))


def _readable(call: Call):
    return call.platform.datasources.get(call.principal.workspace, call.path("name"))


@api("/v0/datasources/{name}/delete", ["POST"], needs=Needs("DATASOURCES:DROP:{name}"))
async def delete_rows(call: Call):
    svc = call.platform.datasources
    rec = svc.get(call.principal.workspace, call.path("name"))
    out = await blocking(
        svc.delete_rows,
        call.principal,
        rec,
        call.params.get("delete_condition", ""),
        call.platform.jobs,
        dry_run=call.params.flag("dry_run"),
    )
    if isinstance(out, dict):
        return json_response(out)
    job = call.platform.jobs.describe(out, call.host)
    return json_response(
        {"id": out.id, "job_id": out.id, "job_url": job["job_url"], "status": out.status, "job": job}
    )


@api("/v0/datasources/{name}/alter", ["POST"], needs=DATASOURCES_CREATE)
async def alter_datasource(call: Call):
    """Safe in-place changes (new columns at the end, description, TTL); `dry=true` only lists them."""
    platform = call.platform
    rec = platform.datasources.get(call.principal.workspace, call.path("name"))
    out = await blocking(platform.alter.alter, call.principal, rec, call.params, dry=call.params.flag("dry"))
    return json_response(out)


routes = [
    alter_datasource,
    list_datasources,
    create_datasource,
    datasource_file,
    get_datasource,
    update_datasource,
    delete_datasource,
    truncate_datasource,
    delete_rows,
]
