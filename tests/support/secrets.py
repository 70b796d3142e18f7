"""Recognisable secrets for leak tests, and a search for any trace of one in a text.

A password that a parser cuts short leaks in pieces (the part before a ``/`` as a port, the part
after it as a database), so a search for the whole password is not enough: ``leaks`` looks for
every piece of four characters or more, of the password as it is and as it is written
percent-encoded. The passwords here are made so that no such piece is ordinary text.
"""

from __future__ import annotations

from urllib.parse import quote

# Every character that has a meaning in a PostgreSQL URI's user information, and the space.
SPECIAL_CHARACTERS = ("/", "?", "#", "@", ":", "%", "[", "]", " ")
FRAGMENT = 4


def password_with(*characters: str) -> str:
    """A password with each of ``characters`` between letters and digits no text has by chance."""
    runs = ["Tq5", "Zw8", "Hx3", "Lv6", "Mn2", "Rp9", "Ys4", "Kd7", "Gb1", "Fc0"]
    if len(characters) == 1:
        characters = characters * 3
    return runs[0] + "".join(c + run for c, run in zip(characters, runs[1:], strict=False))


def fragments(secret: str, size: int = FRAGMENT) -> set[str]:
    """Every piece of ``size`` characters of ``secret`` (the whole secret when it is shorter)."""
    if len(secret) <= size:
        return {secret}
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def leaks(secret: str, text: str) -> list[str]:
    """The pieces of ``secret`` (as it is, or percent-encoded) that appear in ``text``: [] when none does."""
    pieces = fragments(secret) | fragments(quote(secret, safe="")) | fragments(quote(secret))
    return sorted(piece for piece in pieces if piece in text)


def assert_no_trace(secrets: list[str], **places: str) -> None:
    """No secret, nor any piece of one (``leaks``), appears in any of ``places`` (name=text). For secrets
    made by ``password_with``: a piece of an ordinary secret ("SECR") may well be ordinary text."""
    for secret in secrets:
        for where, text in places.items():
            found = leaks(secret, text)
            assert not found, f"{secret!r} leaked into {where}: {found}"
