"""What `trampolin adopt prisma` expects of a Prisma-made Trampolin database, and its report.

No database here: trampolin.adopt gathers the facts (tables, columns, counts,
refused rows) and this module judges them: is it the app's schema, where does
each table go, and how the result reads for people (``lines``) and programs
(``report_as_json``). tests/unit/test_adopt_plan.py covers it without a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from trampolin.errors import AdoptionRefused

ARCHIVE_SCHEMA = "prisma_archive"
ENUM_TYPES = ("SubscriptionStatus", "CsvUploadStatus")
LIST_LIMIT = 1000
"""At most this many refused rows per check family are listed (all are counted)."""

State = Literal["plan", "adopted", "already adopted"]

_TIME = re.compile(r"timestamp(\(\d\))? without time zone\Z")
_KINDS: dict[str, tuple[str, ...]] = {
    "text": ("text", "character varying"),
    "int": ("integer", "bigint", "smallint"),
    "bool": ("boolean",),
    "jsonb": ("jsonb",),
    "text[]": ("text[]",),
}


@dataclass(frozen=True)
class PrismaTable:
    """One of the app's tables: its columns, and where its rows go (None: archive only)."""

    name: str
    into: str | None
    spec: str  # "column column:kind ...", text when no kind is given
    note: str = ""
    optional: bool = False  # made by the app's hand-written production script

    @property
    def columns(self) -> dict[str, str]:
        """Each column the app's schema gives this table, and its kind."""
        pairs = (item.partition(":") for item in self.spec.split())
        return {name: kind or "text" for name, _, kind in pairs}


PRISMA_TABLES = (
    PrismaTable("Role", "roles", "id name createdAt:time updatedAt:time", "matched by name"),
    PrismaTable(
        "User",
        "users",
        "id name email emailVerified:time image passwordHash stripeCustomerId roleId "
        "createdAt:time updatedAt:time",
        "ids: legacy_uuid(id), old id in legacy_id; password hashes kept",
    ),
    PrismaTable(
        "Account",
        "accounts",
        "id userId type provider providerAccountId refresh_token access_token expires_at:int "
        "token_type scope id_token session_state",
        "OAuth tokens unchanged",
    ),
    PrismaTable("Session", "sessions", "id sessionToken userId expires:time", "tokens hashed"),
    PrismaTable(
        "VerificationToken", "verification_tokens", "identifier token expires:time", "tokens hashed"
    ),
    PrismaTable(
        "Subscription",
        "subscriptions",
        "id userId stripeCustomerId stripeSubscriptionId status:status priceId quantity:int "
        "currentPeriodStart:time currentPeriodEnd:time cancelAtPeriodEnd:bool canceledAt:time "
        "monthlyLimit:int usedThisMonth:int lastUsageReset:time trialLimit:int trialUsed:int "
        "createdAt:time updatedAt:time",
        "ids: legacy_uuid(id); counters -> usage_periods and usage_ledger; limits -> plans",
    ),
    PrismaTable(
        "Search",
        "searches",
        "id userId status urlCount:int totalReach:int createdAt:time updatedAt:time",
        "ids: legacy_uuid(id)",
        optional=True,
    ),
    PrismaTable(
        "UrlAnalysis",
        "url_analyses",
        "id userId url status results:jsonb createdAt:time updatedAt:time",
        "ids: legacy_uuid(id); URLs normalized; searchId -> search_analyses",
    ),
    PrismaTable(
        "CsvUpload",
        "csv_uploads",
        "id userId filename originalName fileSize:int status:status totalRows:int validRows:int "
        "errorMessage headers:text[] createdAt:time updatedAt:time",
        "new bigint ids, old id in legacy_id",
    ),
    PrismaTable(
        "CsvRow",
        "csv_rows",
        "id uploadId rowIndex:int data:jsonb createdAt:time",
        "values in headers order",
    ),
    PrismaTable(
        "Refund",
        "refunds",
        "id stripeRefundId stripeChargeId stripePaymentIntentId amount:int currency reason "
        "status adminUserId customerEmail adminNote metadata:jsonb createdAt:time updatedAt:time",
        "ids: legacy_uuid(id); the admin by id and e-mail",
    ),
    PrismaTable("_prisma_migrations", None, "", "Prisma's migration history"),
)

#: trampolin's tables that adoption fills; they must be empty (roles and plans are merged).
TARGET_TABLES = (
    "users",
    "accounts",
    "sessions",
    "verification_tokens",
    "subscriptions",
    "usage_periods",
    "usage_ledger",
    "searches",
    "url_analyses",
    "search_analyses",
    "csv_uploads",
    "csv_rows",
    "refunds",
)
#: Subscriptions in these states hand their limits to plans (as trampolin.usage grants).
GRANTING = ("active", "trialing", "past_due")


def table(name: str) -> PrismaTable:
    return next(t for t in PRISMA_TABLES if t.name == name)


@dataclass(frozen=True)
class Facts:
    """What trampolin.adopt found in the database, before judging it."""

    schema: str
    prisma_migrations: bool  # a live _prisma_migrations table in the current schema
    archive_schema: bool
    adopted: bool  # prisma_archive holds trampolin's adoption record
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> column -> type
    migrations: tuple[tuple[str, datetime | None, datetime | None], ...] = ()


def recognise(facts: Facts) -> Literal["prisma", "adopted"]:
    """Whether this is the app's Prisma database ("prisma") or was adopted before ("adopted").

    "prisma" for the app's Prisma-made database, "adopted" if that already happened.

    AdoptionRefused, in one line, for anything else.
    """
    if not facts.prisma_migrations:
        if facts.adopted:
            return "adopted"
        raise AdoptionRefused(
            f"not a Prisma-made database: schema {facts.schema} has no _prisma_migrations "
            "table (trampolin adopt prisma takes over the Trampolin app's Prisma database)"
        )
    if facts.archive_schema:
        raise AdoptionRefused(
            f"schema {ARCHIVE_SCHEMA} already exists beside a live _prisma_migrations: "
            "rename or drop it before adopting (it is where the Prisma tables go)"
        )
    for spec in PRISMA_TABLES:
        found = facts.columns.get(spec.name)
        if found is None:
            if spec.optional:
                continue
            raise AdoptionRefused(
                f'a Prisma database, but not the Trampolin app\'s: no table "{spec.name}" '
                f"in schema {facts.schema}"
            )
        _check_columns(spec, found)
    links = facts.columns.get("UrlAnalysis", {}).get("searchId")
    if "Search" in facts.columns and (links is None or not _is_kind(links, "text")):
        raise AdoptionRefused(
            'a "Search" table, but "UrlAnalysis"."searchId" is '
            f"{links or 'missing'}: not the app's production schema (its script adds both)"
        )
    for name, finished, rolled_back in facts.migrations:
        if finished is None and rolled_back is None:
            raise AdoptionRefused(
                f"Prisma migration {name} did not finish: resolve it with "
                "`prisma migrate resolve` (or restore a good dump) before adopting"
            )
    return "prisma"


def _check_columns(spec: PrismaTable, found: dict[str, str]) -> None:
    for column, kind in spec.columns.items():
        if column not in found:
            raise AdoptionRefused(
                f'a Prisma database, but not the Trampolin app\'s: "{spec.name}" has no '
                f'column "{column}"'
            )
        if not _is_kind(found[column], kind):
            raise AdoptionRefused(
                f'"{spec.name}"."{column}" is {found[column]}, not the app\'s '
                f"{_KIND_NAMES.get(kind, kind)}: this is not the schema trampolin adopt knows"
            )


_KIND_NAMES = {"int": "integer", "bool": "boolean", "time": "timestamp(3)", "status": "enum"}


def _is_kind(column_type: str, kind: str) -> bool:
    if kind == "time":
        return bool(_TIME.match(column_type))
    if kind == "status":  # the app's enum (format_type quotes it), or text
        return column_type == "text" or column_type.rsplit(".", 1)[-1].strip('"') in ENUM_TYPES
    return column_type.split("(")[0] in _KINDS[kind]


# -- The report -----------------------------------------------------------------


@dataclass(frozen=True)
class Moved:
    table: str
    rows: int
    into: str | None
    note: str = ""


@dataclass(frozen=True)
class Skipped:
    """A row that cannot be taken over, and why; with id None, ``rows`` rows of that table."""

    table: str
    id: str | None
    reason: str
    rows: int = 1


@dataclass(frozen=True)
class PlanLimits:
    """A plan adoption makes from the app's subscriptions of one Stripe price."""

    price_id: str
    monthly_limit: int
    trial_limit: int
    subscriptions: int


@dataclass(frozen=True)
class Derived:
    """Rows adoption makes in a table no Prisma table maps onto (the counters' periods, ...)."""

    into: str
    rows: int
    source: str


@dataclass(frozen=True)
class Report:
    state: State
    schema: str
    tables: tuple[Moved, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    migrations: tuple[str, ...] = ()
    adopted_at: datetime | None = None
    plans: tuple[PlanLimits, ...] = ()
    derived: tuple[Derived, ...] = ()

    @property
    def skipped_total(self) -> int:
        return sum(s.rows for s in self.skipped)

    @property
    def adoptable(self) -> bool:
        return self.state != "plan" or not self.skipped


def table_skips(target_rows: dict[str, int]) -> list[Skipped]:
    """trampolin's tables that already hold rows: adoption fills empty ones only."""
    return [
        Skipped(name, None, "trampolin's table already holds rows: adoption fills empty ones", n)
        for name, n in target_rows.items()
        if n
    ]


def moves(rows: dict[str, int]) -> tuple[Moved, ...]:
    """Each Prisma table present, in the app's order, with its rows and destination."""
    return tuple(
        Moved(spec.name, rows[spec.name], spec.into, spec.note)
        for spec in PRISMA_TABLES
        if spec.name in rows
    )


def lines(report: Report) -> list[str]:
    """The report for people, one line each."""
    if report.state == "already adopted":
        when = f" on {report.adopted_at:%Y-%m-%d %H:%M:%S %Z}" if report.adopted_at else ""
        return [
            f"already adopted{when}: the Prisma tables are in schema {ARCHIVE_SCHEMA}; "
            "nothing to do"
        ]
    last = f", last {report.migrations[-1]}" if report.migrations else ""
    out = [
        f"Prisma-made Trampolin database in schema {report.schema} "
        f"({len(report.migrations)} Prisma migrations{last})"
    ]
    width = max((len(m.table) for m in report.tables), default=0) + 2
    for m in report.tables:
        into = m.into or f"{ARCHIVE_SCHEMA} only"
        note = f" ({m.note})" if m.note else ""
        out.append(f"  {_quoted(m.table):<{width}} {m.rows:>10} rows -> {into}{note}")
    out.extend(
        f"  {'':<{width}} {d.rows:>10} rows -> {d.into} (from {d.source})" for d in report.derived
    )
    out.append(
        f"  then every table above, its enum types and _prisma_migrations move into schema "
        f"{ARCHIVE_SCHEMA}; other tables are left as they are"
    )
    if report.plans:
        out.append(
            "plans from the app's subscriptions (the highest limits of each price; a plan "
            "trampolin has already is kept; compare with the app's PLAN_LIMITS):"
        )
        out.extend(
            f"  {p.price_id}: {p.monthly_limit} a month, {p.trial_limit} in a trial "
            f"({p.subscriptions} subscriptions)"
            for p in report.plans
        )
    if report.skipped_total:
        out.append(f"cannot be taken over: {report.skipped_total} row(s)")
        out.extend(
            f"  {_quoted(s.table)} {s.id}: {s.reason}"
            if s.id is not None
            else f"  {_quoted(s.table)} ({s.rows} rows): {s.reason}"
            for s in report.skipped
        )
    if report.state == "adopted":
        out.append("adopted: every row above is in trampolin's tables, in one transaction")
    elif report.adoptable:
        out.append("dry run: adoptable (nothing was changed)")
    else:
        out.append("not adoptable: fix the rows above in the app's database, then run again")
    return out


def report_as_json(report: Report) -> dict[str, Any]:
    """The report for programs: {"tables": {"User": {"rows": N, "into": "users"}, ...}, ...}."""
    return {
        "state": report.state,
        "adoptable": report.adoptable,
        "schema": report.schema,
        "adopted_at": report.adopted_at.isoformat() if report.adopted_at else None,
        "prisma_migrations": list(report.migrations),
        "tables": {m.table: {"rows": m.rows, "into": m.into} for m in report.tables},
        "skipped": [
            {"table": s.table, "id": s.id, "reason": s.reason, "rows": s.rows}
            for s in report.skipped
        ],
        "skipped_total": report.skipped_total,
        "plans": [
            {
                "price_id": p.price_id,
                "monthly_limit": p.monthly_limit,
                "trial_limit": p.trial_limit,
                "subscriptions": p.subscriptions,
            }
            for p in report.plans
        ],
        "derived": {d.into: {"rows": d.rows, "from": d.source} for d in report.derived},
    }


def _quoted(name: str) -> str:
    return name if name.islower() else f'"{name}"'
