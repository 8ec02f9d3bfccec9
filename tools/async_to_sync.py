"""Write each repository's sync twin from its async code, so that the two cannot drift.

psycopg's idea (tools/async_to_sync.py there): the async code is the one written;
the sync code is generated from it, and CI fails if the generated code is stale.

In a module of trampolin/, every top-level class named ``Async<Name>`` is a source.
Its twin ``<Name>`` is written at the end of the same module, below MARKER, by
three rules that a reader can apply in their head:

* the keywords ``async`` (of ``async def``, ``async with``, ``async for``) and
  ``await`` are dropped;
* the prefix ``Async`` is dropped from every CamelCase name, in code, comments and
  docstrings (``AsyncConnection`` -> ``Connection``, ``AsyncIterator`` ->
  ``Iterator``, ``AsyncAuthAdapter`` -> ``AuthAdapter``);
* the async dunder methods and a few names in RENAMES get their sync names.

What differs between the two sides at run time is decided by the callee, by the
connection it is given: ``queries.Query`` methods, ``db.atomic`` and
``db.run_blocking`` return a result for a ``psycopg.Connection`` and an awaitable
for a ``psycopg.AsyncConnection``. The result is formatted with ``ruff format``.

    python tools/async_to_sync.py          # rewrite the twins
    python tools/async_to_sync.py --check  # exit 1 if any twin is stale (make lint)
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "trampolin"
MARKER = "# -- Sync twins: generated from the Async classes above by tools/async_to_sync.py --"
RENAMES = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "aclose": "close",
    "anext": "next",
    "asynccontextmanager": "contextmanager",
    "StopAsyncIteration": "StopIteration",
}
_ASYNC_NAME = re.compile(r"\bAsync(?=[A-Z])")
_SOURCE_CLASS = re.compile(r"^Async[A-Z]")


def twin_source(segment: str) -> str:
    """The sync twin of ``segment``, Python source of one or more async classes."""
    lines = segment.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(position: tuple[int, int]) -> int:
        row, col = position
        return starts[row - 1] + col

    tokens = list(tokenize.generate_tokens(io.StringIO(segment).readline))
    edits: list[tuple[int, int, str]] = []
    for index, token in enumerate(tokens):
        start, end = offset(token.start), offset(token.end)
        if token.type == tokenize.NAME:
            following = tokens[index + 1]
            if token.string == "await" or (
                token.string == "async" and following.string in ("def", "with", "for")
            ):
                edits.append((start, offset(following.start), ""))
            elif token.string in RENAMES:
                edits.append((start, end, RENAMES[token.string]))
            elif _ASYNC_NAME.match(token.string):
                edits.append((start, end, token.string[len("Async") :]))
        elif token.type in (tokenize.COMMENT, tokenize.STRING):
            renamed = _ASYNC_NAME.sub("", token.string)
            if renamed != token.string:
                edits.append((start, end, renamed))
    result = segment
    for start, end, replacement in sorted(edits, reverse=True):
        result = result[:start] + replacement + result[end:]
    return result


def source_classes(module_text: str) -> list[str]:
    """The source text of every top-level Async class of a module, decorators included."""
    lines = module_text.splitlines(keepends=True)
    segments = []
    for node in ast.parse(module_text).body:
        if isinstance(node, ast.ClassDef) and _SOURCE_CLASS.match(node.name):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            segments.append("".join(lines[first - 1 : node.end_lineno]))
    return segments


def with_twins(module_text: str, path: Path) -> str:
    """The module with its twins written anew below MARKER (unchanged if it has none)."""
    head = module_text.split(MARKER, 1)[0].rstrip() + "\n"
    segments = source_classes(head)
    if not segments:
        return module_text
    twins = "\n\n".join(twin_source(segment).rstrip() + "\n" for segment in segments)
    return ruff_format(f"{head}\n\n{MARKER}\n\n\n{twins}", path)


def ruff_format(text: str, path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(path), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"ruff format failed on {path}: {done.stderr.strip()}")
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale twins")
    args = parser.parse_args()
    stale = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "class Async" not in text:
            continue
        new = with_twins(text, path)
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for path in stale:
        verb = "is stale (run: python tools/async_to_sync.py)" if args.check else "rewritten"
        print(f"{path}: sync twin {verb}", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
