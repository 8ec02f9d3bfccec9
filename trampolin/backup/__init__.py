"""Dump, restore and verify a database with pg_dump and pg_restore (custom format).

dump.py        pg_dump into a file that appears whole or not at all
restore.py     an archive into a database in one transaction (pg_restore | psql)
verify.py      restore into scratch databases, check, drop them
archive.py     an archive's header and table of contents (pg_restore --list)
tables.py      a database's user tables, their sizes and rows; the refusal text
tools.py       which pg_dump / pg_restore / psql to run, and its version
connection.py  how a child process connects: the password in its environment only
running.py     waiting for children, stopping them, reading their errors
"""

from trampolin.backup.archive import Listing, check_archive, list_archive
from trampolin.backup.dump import DumpResult, dump
from trampolin.backup.restore import RestoreResult, restore
from trampolin.backup.running import Progress
from trampolin.backup.tables import TableRows, user_tables
from trampolin.backup.verify import VerifyResult, drop_abandoned_scratch, verify

__all__ = [
    "DumpResult",
    "Listing",
    "Progress",
    "RestoreResult",
    "TableRows",
    "VerifyResult",
    "check_archive",
    "drop_abandoned_scratch",
    "dump",
    "list_archive",
    "restore",
    "user_tables",
    "verify",
]
