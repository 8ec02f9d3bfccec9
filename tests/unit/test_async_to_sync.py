"""tools/async_to_sync.py: the rules that make a sync twin, and that every twin is current."""

from pathlib import Path

from tools import async_to_sync

ROOT = Path(__file__).resolve().parents[2]

SOURCE = '''class AsyncThings:
    """Things on an AsyncConnection."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn

    async def get(self, key: str) -> Thing | None:
        # Awaits AsyncCursor work.
        async with atomic(self.conn):
            row = await _q.get.one(self.conn, key=key)
        return None if row is None else Thing(**row)

    async def each(self) -> AsyncIterator[Thing]:
        async for row in self._rows():
            yield row

    async def __aenter__(self) -> AsyncThings:
        return self
'''

TWIN = '''class Things:
    """Things on an Connection."""

    def __init__(self, conn: Connection[Any]) -> None:
        self.conn = conn

    def get(self, key: str) -> Thing | None:
        # Awaits Cursor work.
        with atomic(self.conn):
            row = _q.get.one(self.conn, key=key)
        return None if row is None else Thing(**row)

    def each(self) -> Iterator[Thing]:
        for row in self._rows():
            yield row

    def __enter__(self) -> Things:
        return self
'''


def test_the_three_rules() -> None:
    assert async_to_sync.twin_source(SOURCE) == TWIN


def test_only_top_level_async_classes_are_sources() -> None:
    module = "class Plain:\n    pass\n\n\n" + SOURCE + "\n\ndef helper() -> None:\n    pass\n"
    assert async_to_sync.source_classes(module) == [SOURCE]


def test_every_twin_in_the_package_is_current() -> None:
    for path in sorted((ROOT / "trampolin").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "class Async" in text:
            assert async_to_sync.with_twins(text, path) == text, (
                f"{path.relative_to(ROOT)}: run python tools/async_to_sync.py"
            )
