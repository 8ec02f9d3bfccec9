"""``trampolin csv``: import, list, show, export, delete and clean up CSV uploads."""

from __future__ import annotations

import json
import math
import os
import sys
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

import click
from psycopg import Connection

from trampolin.auth import AuthAdapter
from trampolin.cli.context import Context, human_size, pass_context
from trampolin.csv_format import parse_delimiter
from trampolin.csv_uploads import IMPORT_START_WINDOW, CsvUpload, CsvUploads
from trampolin.db import connect
from trampolin.errors import CsvFormatError, InvalidInput, NotFound


@click.group("csv")
def csv_group() -> None:
    """CSV uploads: import with COPY, inspect, export, delete, clean up."""


def _delimiter(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """',', ';' or tab as the character (a usage error otherwise)."""
    try:
        return None if value is None else parse_delimiter(value)
    except InvalidInput as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _user_id(conn: Connection[Any], email: str) -> uuid.UUID:
    """The id of the user with that email (AuthAdapter's rule); NotFound if none."""
    user = AuthAdapter(conn).get_user_by_email(email)
    if user is None:
        raise NotFound(f"no user with email {email}")
    return user.id


def _fail_dead(uploads: CsvUploads, **which: Any) -> None:
    """Mark failed, and say so, the uploads in ``which`` whose importer died."""
    for upload in uploads.cleanup(older_than=IMPORT_START_WINDOW, **which):
        click.echo(f"upload {upload.id}: its import died; marked failed", err=True)


def _find(uploads: CsvUploads, upload_id: int | str) -> CsvUpload:
    """The upload by its number or, if adopted, by the app's id (docs/adopt.md)."""
    upload = uploads.get(upload_id)
    if upload is None:
        raise NotFound(f"no CSV upload {upload_id}")
    return upload


def _summary(upload: CsvUpload) -> str:
    created = upload.created_at.strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{upload.id:>8}  {upload.status:<10}  {upload.total_rows:>10}  "
        f"{human_size(upload.file_size):>10}  {created}  {upload.filename}"
    )


@csv_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", "email", required=True, metavar="EMAIL", help="The uploading user.")
@click.option(
    "--encoding", help="The file's text encoding (default: a byte-order mark's, else UTF-8)."
)
@click.option(
    "--delimiter",
    callback=_delimiter,
    metavar="',' | ';' | tab",
    help="The field delimiter (default: detected from the header line).",
)
@click.option("--filename", help="Name to record (default: the file's name).")
@pass_context
def csv_import(
    ctx: Context,
    file: Path,
    email: str,
    encoding: str | None,
    delimiter: str | None,
    filename: str | None,
) -> None:
    """Import FILE (CSV with a header row) for the user, all or nothing."""
    with connect(ctx.url, autocommit=True) as conn:
        user_id = _user_id(conn, email)
        try:
            with _Progress(file) as bar:
                upload = CsvUploads(conn).import_csv(
                    user_id=user_id,
                    source=file,
                    filename=filename,
                    encoding=encoding,
                    delimiter=delimiter,
                    progress=bar.progress,
                    notice=bar.notice,
                )
        except CsvFormatError as exc:
            click.echo(f"error: {file}: {exc} (upload {exc.upload_id} failed)", err=True)
            sys.exit(exc.exit_code)
    click.echo(
        f"upload {upload.id}: {upload.total_rows} rows x {len(upload.headers)} columns "
        f"({human_size(upload.file_size)}) from {file}"
    )


class _Progress:
    """The import's progress bar on stderr, and a way to print a line beside it."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.shown = 0
        size = file.stat().st_size if file.is_file() else 0
        self.bar = click.progressbar(
            length=size, label=f"importing {file.name}", file=sys.stderr, show_pos=False
        )
        self.visible = size > 0 and sys.stderr.isatty()

    def __enter__(self) -> _Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bar.__exit__(None, None, None)

    def progress(self, done: int) -> None:
        if self.visible:
            self.bar.update(done - self.shown)
            self.shown = done

    def notice(self, line: str) -> None:
        """A line on stderr, on a line of its own even while the bar is drawn."""
        click.echo(f"\r\033[K{line}" if self.visible else line, err=True)


@csv_group.command("list")
@click.option("--user", "email", required=True, metavar="EMAIL", help="Whose uploads.")
@pass_context
def csv_list(ctx: Context, email: str) -> None:
    """List a user's uploads, newest first (an upload whose import died is marked failed)."""
    with connect(ctx.url, autocommit=True) as conn:
        user_id = _user_id(conn, email)
        uploads = CsvUploads(conn)
        _fail_dead(uploads, user_id=user_id)
        items = uploads.list_for_user(user_id)
    click.echo(
        f"{'id':>8}  {'status':<10}  {'rows':>10}  {'size':>10}  {'created (UTC)':<19}  filename"
    )
    for upload in items:
        click.echo(_summary(upload))


@csv_group.command("show")
@click.argument("upload_id")
@click.option(
    "--rows",
    "count",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many rows to print.",
)
@pass_context
def csv_show(ctx: Context, upload_id: str, count: int) -> None:
    """Print an upload's metadata and its first rows (as JSON, one per line).

    UPLOAD_ID is the upload's number, or the app's id of an adopted upload.
    """
    with connect(ctx.url, autocommit=True) as conn:
        uploads = CsvUploads(conn)
        _fail_dead(uploads, upload_id=upload_id)
        upload = _find(uploads, upload_id)
        rows = uploads.rows(upload.id, limit=count) if count > 0 else []
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
@click.argument("upload_id")
@click.option(
    "-o", "--output", required=True, metavar="FILE", help="Where to write the CSV ('-': stdout)."
)
@click.option(
    "--delimiter",
    callback=_delimiter,
    default=",",
    metavar="',' | ';' | tab",
    help="The field delimiter.  [default: ',']",
)
@pass_context
def csv_export(ctx: Context, upload_id: str, output: str, delimiter: str) -> None:
    """Write a completed upload back as CSV (UTF-8, header first).

    UPLOAD_ID is the upload's number, or the app's id of an adopted upload.
    """
    with connect(ctx.url, autocommit=True) as conn:
        uploads = CsvUploads(conn)
        if output == "-":
            count = uploads.export_csv(upload_id, sys.stdout.buffer, delimiter=delimiter)
            sys.stdout.buffer.flush()
        else:
            target = Path(output)
            # Our pid in the name: two exports to one path never share a partial file.
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            try:
                with partial.open("wb") as out:
                    count = uploads.export_csv(upload_id, out, delimiter=delimiter)
                partial.replace(target)  # no half-written file under the real name
            except OSError as exc:
                raise InvalidInput(f"cannot write {output}: {exc.strerror or exc}") from None
            finally:
                with suppress(OSError):
                    partial.unlink(missing_ok=True)
    click.echo(f"exported {count} rows of upload {upload_id} to {output}", err=True)


@csv_group.command("delete")
@click.argument("upload_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask first (for scripts).")
@pass_context
def csv_delete(ctx: Context, upload_id: str, yes: bool) -> None:
    """Delete an upload with all its rows (asks first).

    UPLOAD_ID is the upload's number, or the app's id of an adopted upload.
    """
    with connect(ctx.url, autocommit=True) as conn:
        uploads = CsvUploads(conn)
        upload = _find(uploads, upload_id)
        if not yes:
            _confirm(f"delete {_what_goes(upload)}?")
        deleted = uploads.delete(upload.id)
    if deleted is None:
        raise NotFound(f"no CSV upload {upload_id} (deleted meanwhile)")
    click.echo(f"deleted {_what_goes(deleted)}")


def _what_goes(upload: CsvUpload) -> str:
    rows = f"{upload.total_rows:,} row{'s' if upload.total_rows != 1 else ''}"
    return f"upload {upload.id} ({upload.filename}, {upload.status}) and its {rows}"


def _confirm(question: str) -> None:
    """Ask on the terminal; anything but yes stops the command with one line."""
    try:
        agreed = click.confirm(question, default=False, err=True)
    except click.Abort:  # end of input: nobody answered
        agreed = False
    if not agreed:
        click.echo("error: not deleted (pass --yes to delete without asking)", err=True)
        sys.exit(1)


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
    """Mark uploads left 'processing' by a dead importer as failed (all users; for cron)."""
    with connect(ctx.url, autocommit=True) as conn:
        failed = CsvUploads(conn).cleanup(older_than=older_than)
    for upload in failed:
        click.echo(f"failed abandoned upload {upload.id} ({upload.filename})")
    click.echo(f"{len(failed)} abandoned upload(s) marked failed")
