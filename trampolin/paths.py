"""Where the sql/ tree is: inside the installed package (wheel) or at the checkout's root.

Its own module, importing nothing, so that paths are known without loading psycopg.
"""

from __future__ import annotations

from pathlib import Path


def sql_root() -> Path:
    """The sql/ tree: inside the installed package (wheel) or at the checkout's root."""
    packaged = Path(__file__).resolve().parent / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "sql"
