"""Markdown read as GitHub reads it (markdown-it-py: CommonMark, tables, strikethrough), so that
tests check a summary's structure (headings, facts, table cells) and that nothing typed by
people turned into markup, and that the manual's links reach their pages and headings."""

import re
from dataclasses import dataclass, field
from itertools import pairwise

from markdown_it import MarkdownIt
from markdown_it.token import Token

PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
OURS = {"text", "strong_open", "strong_close"}  # the only inline markup a summary writes
INLINE_WORDS = ("text", "code_inline")  # what a heading's anchor is made of
RAW = {"html_block", "fence", "code_block", "hr", "blockquote_open"}  # blocks it never writes


@dataclass
class Document:
    headings: list[str] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)  # "- **name:** value" items
    tables: list[list[list[str]]] = field(default_factory=list)  # rows of cell texts, header first
    paragraphs: list[str] = field(default_factory=list)
    blocks: set[str] = field(default_factory=set)  # block token types seen
    inline: set[str] = field(default_factory=set)  # inline token types seen

    def fact(self, name: str) -> str:
        [value] = [value for label, value in self.facts if label == name]
        return value

    @property
    def injected(self) -> set[str]:
        """Markup no summary writes: raw HTML, links, code, emphasis, strikethrough…"""
        return (self.inline - OURS) | (self.blocks & RAW)


def text(token: Token) -> str:
    return "".join(child.content for child in token.children or () if child.type == "text")


def parse(markdown: str) -> Document:
    document = Document()
    tokens = PARSER.parse(markdown)
    row: list[str] = []
    in_item = False
    for index, token in enumerate(tokens):
        document.blocks.add(token.type)
        document.inline |= {child.type for child in token.children or ()}
        if token.type in ("list_item_open", "list_item_close"):
            in_item = token.type == "list_item_open"
        elif token.type == "table_open":
            document.tables.append([])
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            document.tables[-1].append(row)
        elif token.type == "inline":
            opened = tokens[index - 1].type
            if opened == "heading_open":
                document.headings.append(text(token))
            elif opened in ("th_open", "td_open"):
                row.append(text(token))
            elif in_item:
                document.facts.append(_fact(token))
            else:
                document.paragraphs.append(text(token))
    return document


def _fact(token: Token) -> tuple[str, str]:
    """`**name:** value` → (name, value); an item of another shape has no name."""
    kinds = [child.type for child in token.children or ()]
    if "strong_close" not in kinds:
        return "", text(token)
    close = kinds.index("strong_close")
    children = token.children or []
    name = "".join(child.content for child in children[:close] if child.type == "text")
    value = "".join(child.content for child in children[close:] if child.type == "text")
    return name.removesuffix(":"), value.strip()


def links(markdown: str) -> list[str]:
    """Where each link and image points, as written (code spans and code blocks hold none)."""
    found = []
    for token in PARSER.parse(markdown):
        for child in token.children or ():
            if child.type == "link_open":
                found.append(str(child.attrs["href"]))
            elif child.type == "image":
                found.append(str(child.attrs["src"]))
    return found


def anchors(markdown: str) -> set[str]:
    """The fragment GitHub gives each heading: its text (code spans included) in lower case,
    punctuation dropped, spaces made hyphens; a repeated one gets -1, -2…"""
    tokens = PARSER.parse(markdown)
    found: set[str] = set()
    for opened, token in pairwise(tokens):
        if opened.type != "heading_open":
            continue
        words = "".join(c.content for c in token.children or () if c.type in INLINE_WORDS)
        slug = re.sub(r"[^\w\- ]", "", words.strip().lower()).replace(" ", "-")
        unique, repeat = slug, 0
        while unique in found:
            repeat += 1
            unique = f"{slug}-{repeat}"
        found.add(unique)
    return found
