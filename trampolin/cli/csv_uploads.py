"""``trampolin csv``: import, list, show, export and clean up CSV uploads."""

from __future__ import annotations

import json
import math
import sys
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from trampolin.cli.context import Context, human_size, pass_context

if TYPE_CHECKING:
    from trampolin.csv_uploads import CsvUpload


@click.group("csv")
def csv_group() -> None:
    """CSV uploads: import with COPY, inspect, export, clean up."""


def _user_id(uploads: Any, email: str) -> Any:
    from trampolin.errors import NotFound

    user_id = uploads.user_id_by_email(email)
    if user_id is None:
        raise NotFound(f"no user with email {email}")
    return user_id


def _summary(upload: CsvUpload) -> str:
    created = upload.created_at.strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{upload.id:>8}  {upload.status:<10}  {upload.total_rows:>10}  "
        f"{human_size(upload.file_size):>10}  {created}  {upload.filename}"
    )


@csv_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", "email", required=True, metavar="EMAIL", help="The uploading user.")
@click.option("--encoding", default="utf-8", show_default=True, help="The file's text encoding.")
@click.option("--filename", help="Name to record (default: the file's name).")
@pass_context
def csv_import(ctx: Context, file: Path, email: str, encoding: str, filename: str | None) -> None:
    """Import FILE (CSV with a header row) for the user, all or nothing."""
    from trampolin.csv_uploads import CsvUploads
    from trampolin.db import connect
    from trampolin.errors import CsvFormatError

    total = file.stat().st_size
    with connect(ctx.url, autocommit=True) as conn:
        uploads = CsvUploads(conn)
        user_id = _user_id(uploads, email)
        shown = 0
        with click.progressbar(
            length=total, label=f"importing {file.name}", file=sys.stderr, show_pos=False
        ) as bar:

            def progress(done: int) -> None:
                nonlocal shown
                bar.update(done - shown)
                shown = done

            try:
                upload = uploads.import_csv(
                    user_id=user_id,
                    source=file,
                    filename=filename,
                    encoding=encoding,
                    progress=progress,
                )
            except CsvFormatError as exc:
                bar.render_finish()
                click.echo(f"error: {file}: {exc} (upload {exc.upload_id} failed)", err=True)
                sys.exit(exc.exit_code)
    click.echo(
        f"upload {upload.id}: {upload.total_rows} rows x {len(upload.headers)} columns "
        f"({human_size(upload.file_size)}) from {file}"
    )


@csv_group.command("list")
@click.option("--user", "email", required=True, metavar="EMAIL", help="Whose uploads.")
@pass_context
def csv_list(ctx: Context, email: str) -> None:
    """List a user's uploads, newest first."""
    from trampolin.csv_uploads import CsvUploads
    from trampolin.db import connect

    with connect(ctx.url, autocommit=True) as conn:
        uploads = CsvUploads(conn)
        items = uploads.list_for_user(_user_id(uploads, email))
    click.echo(
        f"{'id':>8}  {'status':<10}  {'rows':>10}  {'size':>10}  {'created (UTC)':<19}  filename"
    )
    for upload in items:
        click.echo(_summary(upload))


@csv_group.command("show")
@click.argument("upload_id", type=int)
@click.option(
    "--rows",
    "count",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many rows to print.",
)
@pass_context
def csv_show(ctx: Context, upload_id: int, count: int) -> None:
    """Print an upload's metadata and its first rows (as JSON, one per line)."""
    from trampolin.csv_uploads import CsvUploads
    from trampolin.db import connect
    from trampolin.errors import NotFound

    with connect(ctx.url, autocommit=True) as conn:
        uploads = CsvUploads(conn)
        upload = uploads.get(upload_id)
        if upload is None:
            raise NotFound(f"no CSV upload {upload_id}")
        rows = uploads.rows(upload_id, limit=count) if count > 0 else []
    click.echo(f"upload:   {upload.id}")
    click.echo(f"file:     {upload.filename} ({human_size(upload.file_size)})")
    click.echo(f"user:     {upload.user_id}")
    click.echo(f"status:   {upload.status}")
    if upload.error_message:
        click.echo(f"error:    {upload.error_message}")
    click.echo(f"rows:     {upload.total_rows}")
    click.echo(f"columns:  {len(upload.headers)}: {', '.join(upload.headers)}")
    click.echo(f"created:  {upload.created_at.isoformat()}")
    click.echo(f"updated:  {upload.updated_at.isoformat()}")
    for row in rows:
        click.echo(f"{row.row_index:>6}  {json.dumps(row.data, ensure_ascii=False)}")


@csv_group.command("export")
@click.argument("upload_id", type=int)
@click.option(
    "-o", "--output", required=True, metavar="FILE", help="Where to write the CSV ('-': stdout)."
)
@pass_context
def csv_export(ctx: Context, upload_id: int, output: str) -> None:
    """Write a completed upload back as CSV (UTF-8, header first)."""
    from trampolin.csv_uploads import CsvUploads
    from trampolin.db import connect
    from trampolin.errors import InvalidInput

    with connect(ctx.url, autocommit=True) as conn:
        uploads = CsvUploads(conn)
        if output == "-":
            count = uploads.export_csv(upload_id, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            target = Path(output)
            partial = target.with_name(f".{target.name}.partial")
            try:
                with partial.open("wb") as out:
                    count = uploads.export_csv(upload_id, out)
                partial.replace(target)  # no half-written file under the real name
            except OSError as exc:
                raise InvalidInput(f"cannot write {output}: {exc.strerror or exc}") from None
            finally:
                with suppress(OSError):
                    partial.unlink(missing_ok=True)
    click.echo(f"exported {count} rows of upload {upload_id} to {output}", err=True)


class _Seconds(click.FloatRange):
    """A finite number of seconds within the range (FloatRange alone lets NaN through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number of seconds.", param, ctx)
        return number


@csv_group.command("cleanup")
@click.option(
    "--older-than",
    type=_Seconds(min=1, max=30 * 24 * 3600),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Only uploads idle for this long.",
)
@pass_context
def csv_cleanup(ctx: Context, older_than: float) -> None:
    """Mark uploads left 'processing' by a dead importer as failed."""
    from trampolin.csv_uploads import CsvUploads
    from trampolin.db import connect

    with connect(ctx.url, autocommit=True) as conn:
        failed = CsvUploads(conn).cleanup(older_than=older_than)
    for upload in failed:
        click.echo(f"failed abandoned upload {upload.id} ({upload.filename})")
    click.echo(f"{len(failed)} abandoned upload(s) marked failed")
