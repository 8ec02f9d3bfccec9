"""URL normalization of trampolin.analysis_urls (no database)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trampolin.analysis_urls import MAX_URLS, normalize_url, normalize_urls
from trampolin.errors import InvalidInput


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.Shop.example/Sale/?utm_source=x#top", "shop.example/Sale"),
        ("shop.example/Sale", "shop.example/Sale"),
        ("http://shop.example", "shop.example"),
        ("https://shop.example/", "shop.example"),
        ("  WWW.shop.example/a/b//  ", "shop.example/a/b"),
        ("https://user:pw@shop.example:8443/x", "shop.example/x"),
        ("HTTPS://shop.example/caf%C3%A9", "shop.example/café"),
        ("shop.example/a%2", "shop.example/a%2"),
        ("shop.example/a%2541", "shop.example/a%2541"),
        ("shop.example/a%3Fb%23c", "shop.example/a%3Fb%23c"),
        ("shop.example/%%34%31", "shop.example/A"),
        ("shop.example/%ff", "shop.example/\ufffd"),
        ("https://xn--mnchen-3ya.example/", "xn--mnchen-3ya.example"),
        (
            "https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.shop.example%2Fsale%3Ffbclid%3D1&h=x",
            "shop.example/sale",
        ),
        ("https://www.facebook.com/l.php?u=shop.example%2Fa", "shop.example/a"),
        ("https://www.facebook.com/SomePage/", "facebook.com/SomePage"),
        ("facebook.com/l.php", "facebook.com/l.php"),
    ],
)
def test_the_app_s_rule(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "url is empty"),
        ("   ", "url is empty"),
        ("shop.example/a b", "spaces or control characters"),
        ("shop.example/\x07", "spaces or control characters"),
        ("ftp://shop.example/x", "only http and https"),
        ("javascript:alert(1)", "no host name"),
        ("https://", "no host name"),
        ("localhost/x", "no host name"),
        ("https://[::1/x", "cannot be parsed"),
        ("shop.example/%0a", "decodes to spaces"),
        ("a." + "b" * 3000, "longer than 2048"),
        (7, "url must be a string, not int"),
        ("shop.example/\x00", "NUL"),
        ("shop%2eexample/a", "no host name"),
    ],
)
def test_what_is_not_a_url_is_refused_with_the_reason(url: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        normalize_url(url)


def test_urls_are_deduplicated_in_submitted_order() -> None:
    assert normalize_urls(
        ["b.example", "https://www.a.example/", "B.example/", "a.example", "c.example"]
    ) == ["b.example", "a.example", "c.example"]


def test_a_search_needs_a_list_of_at_least_one_url() -> None:
    with pytest.raises(InvalidInput, match="at least one URL"):
        normalize_urls([])
    with pytest.raises(InvalidInput, match="not one string"):
        normalize_urls("shop.example")
    with pytest.raises(InvalidInput, match=f"at most {MAX_URLS}"):
        normalize_urls(f"site{i}.example" for i in range(MAX_URLS + 1))


def assert_idempotent(url: str) -> None:
    """Normalizing raises InvalidInput or gives a form that normalizes to itself."""
    try:
        once = normalize_url(url)
    except InvalidInput:
        return
    assert normalize_url(once) == once
    assert once == once.strip()
    assert not once.endswith("/")
    assert not once.startswith("www.")


@given(st.text(max_size=80))
def test_normalizing_is_total_and_idempotent(url: str) -> None:
    assert_idempotent(url)


@given(st.text(alphabet="%0123456789abcdefCDEF/?#.:@wx ", max_size=40))
def test_escapes_and_separators_normalize_idempotently(path: str) -> None:
    assert_idempotent("shop.example/" + path)
