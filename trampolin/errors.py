"""Every error trampolin raises on purpose, under one base class.

::

    TrampolinError
     +-- ConfigError             no usable database URL or settings
     |    +-- ConnectionFailed   server unreachable, bad credentials
     +-- QueryFileError          a malformed sql/queries file (names file:line)
     +-- InvalidInput            a value PostgreSQL or the contract cannot take
     |    +-- CsvFormatError     a malformed CSV file (names the line)
     |    +-- InvalidPassword    a new password the policy refuses (says why, never echoes it)
     +-- NotFound                a named thing (role, user, upload) does not exist
     +-- Conflict                a unique constraint clashed (names what)
     +-- InvalidSignature        a Stripe webhook failed verification
     +-- LimitExceeded           fewer units of allowance remain than asked for
     +-- MigrationError          a migration could not be applied or rolled back
     |    +-- MigrationDrift     applied files were edited or deleted
     +-- BackupError             dump, restore or verify failed
     +-- AdoptionRefused         not the app's Prisma database, or rows adopt cannot take

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``.
"""

from __future__ import annotations


class TrampolinError(Exception):
    """Base class: the message says what went wrong and where."""

    exit_code = 1


class ConfigError(TrampolinError):
    exit_code = 2


class ConnectionFailed(ConfigError):
    pass


class QueryFileError(TrampolinError):
    pass


class InvalidInput(TrampolinError):
    pass


class CsvFormatError(InvalidInput):
    def __init__(
        self, message: str, *, line: int | None = None, upload_id: int | None = None
    ) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        self.upload_id = upload_id  # the upload marked 'failed', once it is


class InvalidPassword(InvalidInput):
    pass


class NotFound(TrampolinError):
    pass


class Conflict(TrampolinError):
    pass


class InvalidSignature(TrampolinError):
    pass


class LimitExceeded(TrampolinError):
    """A charge was refused (and nothing was charged): ``remaining`` < ``requested``."""

    def __init__(self, message: str, *, requested: int, remaining: int) -> None:
        super().__init__(message)
        self.requested = requested
        self.remaining = remaining


class MigrationError(TrampolinError):
    pass


class MigrationDrift(MigrationError):
    exit_code = 4


class BackupError(TrampolinError):
    pass


class AdoptionRefused(TrampolinError):
    """``report`` (a trampolin.adopt_plan.Report) names the refused rows, when there are any."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report
