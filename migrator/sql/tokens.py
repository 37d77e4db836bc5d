"""A token view of a statement: words and punctuation outside strings and comments.

Used where sqlglot has no model for a statement (it returns a generic
``Command`` or raises) and to read flags sqlglot does not keep. No parser
import here: the token view is cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|\#[^\n]*|/\*.*?\*/)
  | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)\$)
  | (?P<string>[EeNnBbXx]?'(?:[^'\\]|''|\\.)*')
  | (?P<qident>"(?:[^"]|"")*"|`(?:[^`]|``)*`)
  | (?P<word>[A-Za-z_\x80-\uffff][\w$\x80-\uffff]*)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<op>::|<>|!=|>=|<=|\|\||.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # word, qident, string, number, op, dollar
    text: str
    upper: str  # upper-cased word; unquoted identifier text for qident

    @property
    def ident(self) -> str:
        """The identifier this token names: unquoted words fold to lower case."""
        if self.kind == "qident":
            return self.upper
        return self.text.lower()


def tokenize(sql: str) -> list[Token]:
    out: list[Token] = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        text = m.group(0)
        if kind == "tag":  # pragma: no cover - lastgroup never names the inner tag group
            kind = "dollar"
        if kind == "word":
            out.append(Token("word", text, text.upper()))
        elif kind == "qident":
            q = text[0]
            out.append(Token("qident", text, text[1:-1].replace(q + q, q)))
        else:
            out.append(Token(kind or "op", text, text))
    return out


def words(tokens: list[Token]) -> list[str]:
    """Upper-cased words, other tokens as their text: handy for pattern checks."""
    return [t.upper if t.kind == "word" else t.text for t in tokens]


def has_sequence(seq: list[str], *pattern: str) -> bool:
    """True if ``pattern`` occurs as consecutive items of ``seq``."""
    n = len(pattern)
    first = pattern[0]
    for i, w in enumerate(seq):
        if w == first and seq[i : i + n] == list(pattern):
            return True
    return False


def find_sequence(seq: list[str], *pattern: str) -> int:
    n = len(pattern)
    first = pattern[0]
    for i, w in enumerate(seq):
        if w == first and seq[i : i + n] == list(pattern):
            return i
    return -1
