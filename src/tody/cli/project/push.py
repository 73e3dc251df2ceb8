"""`tody push`: create or update a project's data sources, pipes and tokens on the server.

`push_project` is the whole operation as a function (`tody test` and `tody dev` call it too):

- the resources are read (all of the project, or FILES) and pushed in dependency order (see `graph`);
- a resource the server does not have is created: data sources with `POST /v0/datasources` (the
  .datasource as the body), pipes with `POST /v0/pipes` (the .pipe as the body; a pipe without a typed
  node is published at its last node, as `tb push` does);
- an existing resource that compares equal (see `compare`) is "unchanged"; a changed one is refused with
  a unified diff unless `force`: then a pipe is replaced in place (`POST /v0/pipes?force=true`), and a
  data source is altered when the change is safe: columns added at the end go through
  `POST /v0/datasources/{name}/alter` (`schema`, `dry`), a new description through
  `PUT /v0/datasources/{name}`; any other change is refused with the diff;
- `TOKEN "name" READ|APPEND` lines create the token (`POST /v0/tokens`) or add the scope to the existing
  token of that name (`PUT /v0/tokens/{id}` with its scopes plus the new one);
- `fixtures`: data sources with fixtures (fixtures/<name>.csv|ndjson|parquet) get them appended when
  they are empty (replaced with `force`);
- `dry_run` reads from the server but changes nothing, and says what would happen.

Whatever happens to one resource, the others go on, except those that depend on a failed one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import click

from tody.cli.client import ApiError, Client, client_options, wait_for_job
from tody.cli.project import compare as cmp
from tody.cli.project.graph import CycleError, dependencies, push_order
from tody.cli.project.layout import FOLDER_OPTION, Project, Resource, duplicates, find_root, load_project
from tody.datafiles import DatasourceFile, render_datasource, render_schema
from tody.datafiles.pipe import PipeFile, render_pipe

Echo = Callable[[str], object]

FAILED = "failed"
# statuses that count as done (the dry-run ones say what a real push would do)
DONE = ("created", "updated", "unchanged", "would create", "would update")


@dataclasses.dataclass
class Outcome:
    kind: str  # datasource | pipe | token | fixture | project
    name: str
    status: str  # created | updated | unchanged | skipped | failed | appended | would create | ...
    detail: str = ""

    def line(self) -> str:
        detail = f"  ({self.detail})" if self.detail else ""
        return f"{self.status:<13} {self.kind:<10} {self.name}{detail}"


@dataclasses.dataclass
class Summary:
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)
    dry_run: bool = False

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed

    def of(self, kind: str) -> dict[str, str]:
        """{name: status} for the outcomes of one kind."""
        return {o.name: o.status for o in self.outcomes if o.kind == kind}

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes:
            out[o.status] = out.get(o.status, 0) + 1
        return out

    def line(self) -> str:
        counts = self.counts()
        parts = ", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing to push"
        prefix = "Dry run, nothing changed: " if self.dry_run else ""
        return f"{prefix}{parts}" + (f". {len(self.failed)} failed." if self.failed else ".")


class _Push:
    def __init__(
        self,
        client: Client,
        project: Project,
        *,
        force: bool,
        dry_run: bool,
        populate: bool,
        wait: bool,
        echo: Echo,
        confirm: Callable[[str], bool] | None,
    ):
        self.client = client
        self.project = project
        self.force = force
        self.dry_run = dry_run
        self.populate = populate
        self.wait = wait
        self.echo = echo
        self.confirm = confirm
        self.summary = Summary(dry_run=dry_run)
        self._tokens: dict[str, dict] | None = None

    def record(self, kind: str, name: str, status: str, detail: str = "") -> Outcome:
        outcome = Outcome(kind, name, status, detail)
        self.summary.outcomes.append(outcome)
        self.echo(outcome.line())
        return outcome

    def label(self, res: Resource) -> str:
        return res.label(self.project.root)

    # -- resources ----------------------------------------------------------------------------------

    def resource(self, res: Resource) -> str:
        try:
            remote = cmp.fetch(self.client, res.kind, res.name)
            comparison = cmp.compare(res, remote)
            if not comparison.exists:
                status = self.create(res)
            elif not comparison.changed:
                status = self.record(res.kind, res.name, "unchanged").status
            elif not self.force:
                self.echo(cmp.colour_diff(comparison.diff(self.label(res))))
                status = self.record(
                    res.kind,
                    res.name,
                    FAILED,
                    "differs from the server (diff above): push --force to update it",
                ).status
            elif res.kind == "pipe":
                status = self.update_pipe(res, comparison)
            else:
                status = self.update_datasource(res, comparison)
        except (ApiError, click.ClickException, ValueError) as exc:
            message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
            status = self.record(res.kind, res.name, FAILED, message).status
        if status != FAILED:
            self.tokens(res)
        return status

    def create(self, res: Resource) -> str:
        if self.dry_run:
            return self.record(res.kind, res.name, "would create").status
        if isinstance(res.parsed, DatasourceFile):
            self.client.json(
                "POST",
                "/v0/datasources",
                params={"name": res.name, "mode": "create", "format": "datasource"},
                content=render_datasource(res.parsed).encode(),
                headers={"Content-Type": "text/plain"},
            )
            return self.record(res.kind, res.name, "created").status
        assert isinstance(res.parsed, PipeFile)
        return self.send_pipe(res, cmp.for_server_pipe(res.parsed), force=False, status="created")

    def send_pipe(self, res: Resource, pipe: PipeFile, *, force: bool, status: str) -> str:
        materialized = any(n.type == "materialized" for n in pipe.nodes)
        params = {"name": res.name}
        if force:
            params["force"] = "true"
        if self.populate and materialized:
            params["populate"] = "true"
        body = self.client.json(
            "POST",
            "/v0/pipes",
            params=params,
            content=render_pipe(pipe).encode(),
            headers={"Content-Type": "text/plain"},
        )
        detail = ""
        job = body.get("job") if isinstance(body, dict) else None
        if job:
            detail = f"populating: job {job.get('id') or job.get('job_id')}"
            if self.wait:
                done = wait_for_job(self.client, job.get("id") or job.get("job_id"))
                if done.get("status") != "done":
                    return self.record(
                        res.kind,
                        res.name,
                        FAILED,
                        f"populate job {done.get('status')}: {done.get('error') or ''}".rstrip(": "),
                    ).status
                detail = "populated"
        return self.record(res.kind, res.name, status, detail).status

    def update_pipe(self, res: Resource, comparison: cmp.Comparison) -> str:
        assert isinstance(comparison.local_file, PipeFile)
        if self.dry_run:
            self.echo(cmp.colour_diff(comparison.diff(self.label(res))))
            return self.record(res.kind, res.name, "would update").status
        return self.send_pipe(res, comparison.local_file, force=True, status="updated")

    def update_datasource(self, res: Resource, comparison: cmp.Comparison) -> str:
        local, remote = comparison.local_file, comparison.remote_file
        assert isinstance(local, DatasourceFile) and isinstance(remote, DatasourceFile)
        diff = comparison.diff(self.label(res))
        form, reason = alter_form(remote, local)
        if reason is not None:
            self.echo(cmp.colour_diff(diff))
            return self.record(res.kind, res.name, FAILED, f"cannot be altered in place: {reason}").status
        operations = self.alter(res.name, form, dry=True)
        if self.dry_run:
            self.echo(cmp.colour_diff(diff))
            return self.record(res.kind, res.name, "would update", "; ".join(operations)).status
        if self.confirm is not None and not self.confirm(
            f"Alter data source '{res.name}': {'; '.join(operations)}?"
        ):
            return self.record(res.kind, res.name, "skipped", "not confirmed").status
        operations = self.alter(res.name, form, dry=False)
        return self.record(res.kind, res.name, "updated", "; ".join(operations)).status

    def alter(self, name: str, form: dict[str, str], *, dry: bool) -> list[str]:
        """`POST /v0/datasources/{name}/alter`: the operations it does (or would do, `dry`)."""
        try:
            body = self.client.json(
                "POST", f"/v0/datasources/{name}/alter", data={**form, "dry": "true" if dry else "false"}
            )
        except ApiError as exc:
            if exc.status in (404, 405):  # the data source was just read: the route is what is missing
                raise click.ClickException(
                    "this server cannot alter data sources (it has no POST /v0/datasources/{name}/alter); "
                    "drop and recreate the data source to change it"
                ) from None
            raise click.ClickException(f"the server refused the change: {exc.format_message()}") from None
        return [str(op) for op in (body.get("operations") or [])] if isinstance(body, dict) else []

    # -- tokens -------------------------------------------------------------------------------------

    def existing_tokens(self) -> dict[str, dict]:
        if self._tokens is None:
            body = self.client.json("GET", "/v0/tokens")
            self._tokens = {t["name"]: t for t in body.get("tokens", []) if t.get("name")}
        return self._tokens

    def tokens(self, res: Resource) -> None:
        parsed = res.parsed
        declared = parsed.tokens if isinstance(parsed, DatasourceFile | PipeFile) else []
        for name, scope in declared:
            wanted = f"{'DATASOURCES' if res.kind == 'datasource' else 'PIPES'}:{scope}:{res.name}"
            try:
                self.token(name, wanted)
            except (ApiError, click.ClickException) as exc:
                self.record("token", name, FAILED, f"{wanted}: {exc.format_message()}")

    def token(self, name: str, scope: str) -> None:
        existing = self.existing_tokens().get(name)
        if existing is None:
            if self.dry_run:
                self.record("token", name, "would create", scope)
                return
            created = self.client.json("POST", "/v0/tokens", params={"name": name, "scope": scope})
            self.existing_tokens()[name] = created if isinstance(created, dict) else {"name": name}
            self.record("token", name, "created", scope)
            return
        scopes = [scope_text(s) for s in existing.get("scopes", [])]
        if scope in scopes:
            self.record("token", name, "unchanged", scope)
            return
        if self.dry_run:
            self.record("token", name, "would update", f"add {scope}")
            return
        updated = self.client.json(
            "PUT", f"/v0/tokens/{existing.get('id') or name}", params={"scope": [*scopes, scope]}
        )
        self.existing_tokens()[name] = updated if isinstance(updated, dict) else existing
        self.record("token", name, "updated", f"add {scope}")

    # -- fixtures -----------------------------------------------------------------------------------

    def fixtures(self, res: Resource) -> None:
        files = self.project.fixtures_for(res.name)
        if not files:
            return
        labels = ", ".join(cmp.relabel(f, self.project.root) for f in files)
        try:
            if self.dry_run and self.summary.of("datasource").get(res.name) == "would create":
                rows = 0
            else:
                rows = self.client.json("GET", f"/v0/datasources/{res.name}")["statistics"]["row_count"]
            if rows and not self.force:
                self.record(
                    "fixture", res.name, "skipped", f"it has {rows} rows; push --force to replace them"
                )
                return
            if self.dry_run:
                self.record("fixture", res.name, "would append", labels)
                return
            for index, path in enumerate(files):
                mode = "replace" if rows and index == 0 else "append"
                fmt = path.suffix.lstrip(".")
                with path.open("rb") as f:
                    self.client.json(
                        "POST",
                        "/v0/datasources",
                        params={"name": res.name, "mode": mode, "format": fmt},
                        files={"csv" if fmt == "csv" else "ndjson": (path.name, f)},
                        timeout=None,
                    )
            self.record("fixture", res.name, "replaced" if rows else "appended", labels)
        except (ApiError, click.ClickException) as exc:
            self.record("fixture", res.name, FAILED, f"{labels}: {exc.format_message()}")


def scope_text(scope: dict) -> str:
    return ":".join(str(scope[k]) for k in ("type", "resource", "filter") if scope.get(k))


def alter_form(remote: DatasourceFile, local: DatasourceFile) -> tuple[dict[str, str], str | None]:
    """The alter request (`schema`, `description`, `ttl` form fields) that takes the data source from
    `remote` to `local`, when that is a change in place: columns added after the existing ones, a new
    description, a new TTL. Else ({}, the reason it is not)."""
    old, new = remote.columns, local.columns
    if len(new) < len(old) or new[: len(old)] != old:
        removed = [c.name for c in old if c.name not in {n.name for n in new}]
        if removed:
            return {}, f"column(s) {', '.join(removed)} removed"
        return {}, "existing columns changed or reordered (only new columns after them can be added)"
    for what, a, b in (
        ("engine", dataclasses.replace(remote.engine, ttl=None), dataclasses.replace(local.engine, ttl=None)),
        ("indexes", remote.indexes, local.indexes),
        ("tags", remote.tags, local.tags),
        ("SHARED_WITH", sorted(remote.shared_with), sorted(local.shared_with)),
    ):
        if a != b:
            return {}, f"the {what} changed"
    form: dict[str, str] = {}
    if len(new) > len(old):
        form["schema"] = render_schema(new)
    if (local.description or "") != (remote.description or ""):
        form["description"] = local.description or ""
    if local.engine.ttl != remote.engine.ttl:
        form["ttl"] = local.engine.ttl or ""
    return form, None


def push_project(
    client: Client,
    root: Path,
    files: list[Path] | None = None,
    force: bool = False,
    dry_run: bool = False,
    fixtures: bool = False,
    populate: bool = False,
    echo: Echo = print,
    *,
    wait: bool = False,
    confirm: Callable[[str], bool] | None = None,
) -> Summary:
    """Push the project at `root` (or only `files`) to the server of `client`; see the module docstring.
    `confirm(question)` is asked before a data source is altered (None: go ahead). Never raises for a
    resource that fails: its outcome is "failed" and `Summary.ok` is False."""
    project = load_project(Path(root), [Path(f) for f in files] if files else None)
    push = _Push(
        client,
        project,
        force=force,
        dry_run=dry_run,
        populate=populate,
        wait=wait,
        echo=echo,
        confirm=confirm,
    )
    broken = [r for r in project.resources if r.parsed is None]
    for res in broken:
        push.record(res.kind, res.name, FAILED, str(res.error))
    problems = duplicates(project.resources, project.root)
    for problem in problems:
        push.record("project", str(project.root), FAILED, problem)
    if problems:
        echo(push.summary.line())
        return push.summary
    valid = [r for r in project.resources if r.parsed is not None]
    try:
        order = push_order(valid)
    except CycleError as exc:
        push.record("project", str(project.root), FAILED, str(exc))
        echo(push.summary.line())
        return push.summary
    names = {r.name for r in project.resources}
    status: dict[str, str] = {r.name: FAILED for r in broken}
    for res in order:
        failed = sorted(d for d in dependencies(res, names) if status.get(d) not in DONE)
        if failed:
            status[res.name] = push.record(
                res.kind, res.name, "skipped", f"needs {', '.join(failed)}, which did not push"
            ).status
            continue
        status[res.name] = push.resource(res)
    if fixtures:
        for res in order:
            if res.kind == "datasource" and status.get(res.name) in DONE:
                push.fixtures(res)
    echo(push.summary.line())
    return push.summary


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Update changed resources in place (pipes replaced, data sources altered when the change is safe).",
)
@click.option("--dry-run", is_flag=True, help="Say what would happen; change nothing.")
@click.option(
    "--fixtures",
    is_flag=True,
    help="Append fixtures/<datasource>.csv|ndjson|parquet to empty data "
    "sources (with --force, replace their rows).",
)
@click.option("--populate", is_flag=True, help="Populate materialized views with the data already there.")
@click.option("--wait", is_flag=True, help="With --populate, wait for the populate jobs to finish.")
@click.option("--yes", is_flag=True, help="Do not ask before altering a data source.")
@FOLDER_OPTION
@client_options
def push(
    files: tuple[Path, ...],
    force: bool,
    dry_run: bool,
    fixtures: bool,
    populate: bool,
    wait: bool,
    yes: bool,
    folder: Path | None,
    host: str | None,
    token: str | None,
) -> None:
    """Push the project's datafiles (or FILES) to the server, in dependency order.

    \b
    tody push                      # the whole project
    tody push pipes/top.pipe       # one file (what it reads must exist already)
    tody push --force --yes        # update changed resources in place
    tody push --dry-run            # say what would change
    """
    root = find_root(folder)
    summary = push_project(
        Client(host, token, project_dir=root),
        root,
        list(files) or None,
        force=force,
        dry_run=dry_run,
        fixtures=fixtures,
        populate=populate,
        echo=click.echo,
        wait=wait,
        confirm=None if yes else (lambda q: click.confirm(q, default=False)),
    )
    if not summary.ok:
        raise SystemExit(1)
