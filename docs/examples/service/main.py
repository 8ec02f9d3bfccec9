"""An example FastAPI service on trampolin's async API, using only its public names.

Sign-up and e-mail/password login with a database session in an HttpOnly cookie,
logout, a page that needs a session, the Stripe webhook, a streaming CSV upload and
export, and an endpoint that spends usage allowance. One connection pool per
process (opened and closed in the lifespan), one pooled connection per request.

    DATABASE_URL=postgresql://... STRIPE_WEBHOOK_SECRET=whsec_... \
        uvicorn main:app --app-dir docs/examples/service

README.md beside this file says more; tests/test_service.py drives it over HTTP.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

# parse_webhook imports stripe on its first call (so that the CLI never loads it); a
# service loads it at start-up instead, or its first webhook would hold up the event
# loop, and every request with it, for the import's ~0.5-1 s.
import stripe  # noqa: F401
from fastapi import Cookie, Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

import trampolin
from trampolin.auth import AsyncAuthAdapter, User
from trampolin.csv_uploads import AsyncCsvUploads, CsvUpload
from trampolin.errors import (
    ConfigError,
    Conflict,
    CsvFormatError,
    InvalidInput,
    InvalidSignature,
    LimitExceeded,
    NotFound,
    TrampolinError,
)
from trampolin.subscriptions import AsyncSubscriptions, parse_webhook
from trampolin.usage import AsyncUsage

SESSION_COOKIE = "session"
SESSION_LIFETIME = timedelta(days=30)

log = logging.getLogger("service")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The process's one pool: opened before the first request, closed after the last."""
    app.state.webhook_secret = os.environ["STRIPE_WEBHOOK_SECRET"]  # a KeyError at start-up
    pool = trampolin.async_pool(max_size=int(os.environ.get("POOL_SIZE", "10")))  # DATABASE_URL
    await pool.open(wait=True, timeout=10)  # an unreachable database fails the start, not a user
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(title="trampolin example service", lifespan=lifespan)


# -- errors: each TrampolinError subclass has its HTTP status ------------------

STATUS_OF_ERROR: tuple[tuple[type[TrampolinError], int], ...] = (
    (InvalidSignature, 400),  # Stripe does not deliver a 400 again
    (InvalidInput, 422),  # also CsvFormatError (names the line) and InvalidPassword
    (NotFound, 404),
    (Conflict, 409),
    (LimitExceeded, 429),  # the allowance is spent; nothing was charged
    (ConfigError, 503),  # also ConnectionFailed: the database is unreachable
)


@app.exception_handler(TrampolinError)
async def trampolin_error(request: Request, exc: TrampolinError) -> JSONResponse:
    status = next((code for kind, code in STATUS_OF_ERROR if isinstance(exc, kind)), 500)
    if status == 500:  # not the user's doing: log it, say nothing of the inside
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, CsvFormatError):
        body |= {"line": exc.line, "upload_id": exc.upload_id}
    if isinstance(exc, LimitExceeded):
        body |= {"requested": exc.requested, "remaining": exc.remaining}
    return JSONResponse(body, status_code=status)


@app.exception_handler(PoolTimeout)
async def pool_exhausted(request: Request, exc: PoolTimeout) -> JSONResponse:
    """Every connection stayed busy for the pool's timeout: try again shortly."""
    return JSONResponse(
        {"detail": "busy, try again"}, status_code=503, headers={"Retry-After": "1"}
    )


@app.exception_handler(ClientDisconnect)
async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
    """The client went away while sending (an upload cut off): nobody reads the answer.

    import_csv has marked that upload failed, with no rows, before this runs.
    """
    return Response(status_code=400)


# -- dependencies: a connection per request, the signed-in user -----------------


async def connection(request: Request) -> AsyncIterator[AsyncConnection[Any]]:
    """A pooled connection (autocommit) for this request, back in the pool after the response."""
    pool: AsyncConnectionPool[AsyncConnection[Any]] = request.app.state.pool
    async with pool.connection() as conn:
        yield conn


Conn = Annotated[AsyncConnection[Any], Depends(connection)]
SessionToken = Annotated[str | None, Cookie(alias=SESSION_COOKIE)]


async def signed_in_user(conn: Conn, token: SessionToken = None) -> User:
    """The user of the request's live session; 401 without one."""
    found = None if token is None else await AsyncAuthAdapter(conn).get_session_and_user(token)
    if found is None:
        raise HTTPException(401, "sign in first")
    return found[1]


SignedIn = Annotated[User, Depends(signed_in_user)]


# -- sign-up, login, logout ------------------------------------------------------


class Credentials(BaseModel):
    email: str
    password: str


async def start_session(
    auth: AsyncAuthAdapter, user: User, request: Request, response: Response
) -> None:
    """A new database session for ``user``, its random token in an HttpOnly cookie."""
    token = secrets.token_urlsafe(32)  # stored hashed: the database never sees the token
    session = await auth.create_session(
        session_token=token, user_id=user.id, expires=datetime.now(UTC) + SESSION_LIFETIME
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        expires=session.expires.astimezone(UTC),
        httponly=True,  # no script reads it
        samesite="lax",  # not sent with another site's POST
        secure=request.url.scheme == "https",  # behind a proxy: uvicorn --proxy-headers
    )


@app.post("/signup", status_code=201)
async def signup(form: Credentials, conn: Conn, request: Request, response: Response) -> User:
    """A new account, signed in at once: the user and the first session, both or neither."""
    auth = AsyncAuthAdapter(conn)
    async with conn.transaction():
        user = await auth.create_user(email=form.email, password=form.password)
        await start_session(auth, user, request, response)
    return user


@app.post("/login")
async def login(form: Credentials, conn: Conn, request: Request, response: Response) -> User:
    """Sign in; the same 401 for a wrong password and an unknown e-mail, in the same time."""
    auth = AsyncAuthAdapter(conn)
    user = await auth.verify_credentials(form.email, form.password)
    if user is None:
        raise HTTPException(401, "wrong e-mail or password")
    await start_session(auth, user, request, response)
    return user


@app.post("/logout", status_code=204)
async def logout(conn: Conn, response: Response, token: SessionToken = None) -> None:
    """End the session in the database (not just in this browser) and drop the cookie."""
    if token is not None:
        await AsyncAuthAdapter(conn).delete_session(token)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")


@app.get("/me")
async def me(user: SignedIn) -> User:
    """The signed-in user."""
    return user


# -- Stripe ----------------------------------------------------------------------


@app.post("/stripe/webhook")
async def stripe_webhook(
    request: Request, conn: Conn, stripe_signature: Annotated[str, Header()] = ""
) -> JSONResponse:
    """Verify (400 if the signature is wrong), record and apply one Stripe event."""
    body = await request.body()  # the exact bytes: the signature covers them
    event = parse_webhook(body, stripe_signature, request.app.state.webhook_secret)
    outcome = await AsyncSubscriptions(conn).apply_stripe_event(event)
    # 'failed' is stored with its error; a 500 makes Stripe deliver it again later.
    return JSONResponse({"outcome": outcome}, status_code=500 if outcome == "failed" else 200)


# -- CSV uploads -----------------------------------------------------------------


@app.post("/uploads", status_code=201)
async def upload_csv(
    request: Request, user: SignedIn, conn: Conn, filename: str = "upload.csv"
) -> CsvUpload:
    """The request body (a CSV file) as a new upload, streamed into COPY in constant memory."""
    uploads = AsyncCsvUploads(conn)
    return await uploads.import_csv(user_id=user.id, source=request.stream(), filename=filename)


async def export_chunks(
    upload_id: int, user: SignedIn, conn: Conn
) -> AsyncIterator[AsyncGenerator[bytes, None]]:
    """The user's upload as CSV chunks; 404 if it is not theirs.

    A dependency, so that the export's COPY ends here after the response, even when
    the client went away halfway, before the connection goes back to the pool.
    """
    uploads = AsyncCsvUploads(conn)
    if await uploads.get(upload_id, user_id=user.id) is None:
        raise NotFound(f"no CSV upload {upload_id}")
    async with aclosing(await uploads.export_csv_chunks(upload_id)) as chunks:
        yield chunks


@app.get("/uploads/{upload_id}/csv")
async def download_csv(
    chunks: Annotated[AsyncGenerator[bytes, None], Depends(export_chunks)],
) -> StreamingResponse:
    """A completed upload back as CSV, streamed."""
    return StreamingResponse(chunks, media_type="text/csv")


# -- usage -----------------------------------------------------------------------


@app.post("/analyze")
async def analyze(user: SignedIn, conn: Conn, units: int = 1) -> dict[str, int | None]:
    """Work that costs ``units`` of the user's allowance: 429 once it is spent, 402 without
    a subscription (nothing is charged then)."""
    try:
        remaining = await AsyncUsage(conn).consume(user.id, units, reason="analyze")
    except LimitExceeded:
        if not await AsyncSubscriptions(conn).has_access(user.id):
            raise HTTPException(402, "a subscription is needed for this") from None
        raise  # 429, with what remains
    return {"charged": units, "remaining": remaining}  # remaining None: unlimited (admins)
