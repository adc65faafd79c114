"""The documentation pages and the commands in their code blocks (for the tests that run them).

Pages: README.md, every docs/*.md and benchmarks/README.md. A *command* is a line of a
```bash, ```sh, ```shell or ```console block, or of a block with no language at all (so an
unlabelled block cannot hide a command from the tests), without a `$ ` prompt and a trailing ` # comment`;
tests/test_readme.py decides which commands it runs and which other test covers the rest.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHELL_LANGS = ("bash", "sh", "shell", "console", "")  # "": a block with no language
_BLOCK = re.compile(r"^```([A-Za-z0-9_+-]*)[^\n]*\n(.*?)^```", flags=re.S | re.M)


def pages(root: Path = REPO) -> list[Path]:
    """README.md, docs/*.md (sorted), benchmarks/README.md: relative to `root`."""
    found = [Path("README.md"), *sorted(p.relative_to(root) for p in (root / "docs").glob("*.md"))]
    if (root / "benchmarks/README.md").is_file():
        found.append(Path("benchmarks/README.md"))
    return found


def read(page: str | Path, root: Path = REPO) -> str:
    return (root / page).read_text(encoding="utf-8")


def blocks(text: str, langs: tuple[str, ...] = SHELL_LANGS) -> list[str]:
    """The bodies of the fenced code blocks of `text` whose language is one of `langs`."""
    return [body for lang, body in _BLOCK.findall(text) if lang in langs]


def section(text: str, heading: str) -> str:
    """From the line `heading` (e.g. "## Replay") to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines(keepends=True)
    start = next(i for i, ln in enumerate(lines) if ln.rstrip("\n") == heading)
    end = next((j for j in range(start + 1, len(lines))
                if re.match(rf"#{{1,{level}}} ", lines[j]) and not _in_block(lines, j)), len(lines))
    return "".join(lines[start:end])


def _in_block(lines: list[str], j: int) -> bool:
    return sum(1 for ln in lines[:j] if ln.startswith("```")) % 2 == 1


def command_of(line: str) -> str:
    """A block line as a command: no `$ ` prompt, no trailing ` # comment`, stripped."""
    line = line.strip()
    if line.startswith("$ "):
        line = line[2:]
    return re.sub(r"\s+#(\s.*)?$", "", line).strip()


@dataclass(frozen=True)
class DocCommand:
    page: str
    command: str


def commands(prefix: str = "", root: Path = REPO, langs: tuple[str, ...] = SHELL_LANGS,
             page_list: list[Path] | None = None) -> list[DocCommand]:
    """Every command starting with `prefix` in the shell blocks of every page, in page order."""
    out = []
    for page in page_list if page_list is not None else pages(root):
        for body in blocks(read(page, root), langs):
            for line in body.splitlines():
                cmd = command_of(line)
                if cmd and cmd.startswith(prefix):
                    out.append(DocCommand(page.as_posix(), cmd))
    return out


def block_containing(needle: str, langs: tuple[str, ...] = ("bash",), root: Path = REPO) -> str:
    """The one shell block (of any page) that holds `needle`; an error when none or several do."""
    found = [b for page in pages(root) for b in blocks(read(page, root), langs) if needle in b]
    assert len(found) == 1, f"{len(found)} {'/'.join(langs)} blocks hold {needle!r} in {[str(p) for p in pages(root)]}"
    return found[0]
