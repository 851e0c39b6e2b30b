"""Tables of text cells (header first) rendered for the terminal and as markdown."""

from __future__ import annotations


def render_text(lines: list[list[str]]) -> str:
    """Columns padded to their widest cell, a rule under the header."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in lines]
    out.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(out)


def render_markdown_table(lines: list[list[str]]) -> str:
    """A markdown table; empty cells become a space so every row keeps its columns."""
    body = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
    body += ["| " + " | ".join(cell or " " for cell in line) + " |" for line in lines[1:]]
    return "\n".join(body)
