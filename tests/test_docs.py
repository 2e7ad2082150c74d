"""The README and the docs/ pages: every relative link and #anchor resolves, and the README stays a front door.

Pure file checks (standard library only): links are found outside fenced code blocks and code spans, targets are
resolved relative to the linking file, and anchors are matched against GitHub's heading slugs."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_LIMIT = 15_000  # bytes: issue 26, "a README that is a front door"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.I)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\n[ \t]*\n).)+?\1", re.S)
_INLINE_LINK = re.compile(  # [text](target "title") and ![alt](src); the text may hold one level of brackets
    r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*(<[^>\n]*>|[^\s()]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*(<[^>\n]*>|\S+)", re.M)
_HTML_LINK = re.compile(r"<(?:a|img)\s[^>]*\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.I)
_SKIPPED = re.compile(r"^(?:https?:|mailto:)", re.I)
_LINE_ANCHOR = re.compile(r"^L\d+(?:-L\d+)?$")  # GitHub's line anchors in a source file


def _without_fences(text: str) -> tuple[list[str], list[bool]]:
    """The lines of `text`, and for each whether it is part of a fenced code block (fences included)."""
    lines = text.split("\n")
    fenced, fence = [], None
    for line in lines:
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            fenced.append(True)
        elif fence is not None:
            fenced.append(True)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip()[len(m.group(1)):]:
                fence = None
        else:
            fenced.append(False)
    return lines, fenced


def heading_text(source: str) -> str:
    """The text of a heading as GitHub renders it: code spans as their content, links as their text, no emphasis
    markers or HTML tags."""
    parts = re.split(r"(`+)(.+?)\1", source)
    out = []
    for i in range(0, len(parts), 3):  # split() yields text, fence, code, text, ...
        plain = parts[i]
        plain = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", plain)
        plain = re.sub(r"<[^>]+>", "", plain)
        plain = re.sub(r"\\(.)", r"\1", plain)
        plain = plain.replace("*", "")
        plain = re.sub(r"(?<!\w)_+|_+(?!\w)", "", plain)  # emphasis underscores, not snake_case
        out.append(plain)
        if i + 2 < len(parts):
            out.append(parts[i + 2].strip())
    return "".join(out)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading (github-slugger): lowercase, punctuation and symbols removed except hyphens
    and underscores, each space a hyphen."""
    text = heading_text(heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page defines: its headings' slugs (a repeated slug gets -1, -2, ...), ignoring fenced code,
    and explicit <a id=...> / <a name=...> anchors."""
    lines, fenced = _without_fences(text)
    seen: dict[str, int] = {}
    found: set[str] = set()

    def add(heading: str) -> None:
        base = s = slug(heading)
        while s in seen:
            seen[base] += 1
            s = f"{base}-{seen[base]}"
        seen[s] = 0
        found.add(s)

    for i, line in enumerate(lines):
        if fenced[i]:
            continue
        m = _ATX.match(line)
        if m:
            add(re.sub(r"(?:^|[ \t]+)#+$", "", m.group(1) or ""))
            continue
        prev = lines[i - 1] if i else ""
        if (_SETEXT.match(line) and i and not fenced[i - 1] and prev.strip() and not _ATX.match(prev)
                and not _SETEXT.match(prev) and not prev.lstrip().startswith(("|", "-", "*", "+", ">"))):
            add(prev.strip())
    for m in _HTML_ANCHOR.finditer("\n".join(line for line, f in zip(lines, fenced, strict=True) if not f)):
        found.add(m.group(1))
    return found


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link and image in `text`, outside fenced code blocks and code spans."""
    lines, fenced = _without_fences(text)
    prose = "\n".join("" if f else line for line, f in zip(lines, fenced, strict=True))
    prose = _CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), prose)  # keep offsets and line numbers
    found = []
    for pattern, group in ((_INLINE_LINK, 2), (_REF_DEF, 1), (_HTML_LINK, 1)):
        for m in pattern.finditer(prose):
            target = m.group(group)
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1]
            found.append((prose.count("\n", 0, m.start(group)) + 1, target))
    return sorted(found)


def problems(page: Path, root: Path = ROOT, text: str | None = None) -> list[str]:
    """What is broken in `page`'s links (its own text, or `text` read as if it were that file): a target that does
    not exist or lies outside `root`, or an anchor that no heading of the target page has."""
    page = page.resolve()
    root = root.resolve()
    text = page.read_text(encoding="utf-8") if text is None else text
    name = page.relative_to(root).as_posix() if page.is_relative_to(root) else str(page)
    own = anchors(text)
    out = []
    for line, target in links(text):
        where = f"{name}:{line}: {target}"
        if _SKIPPED.match(target):
            continue
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            out.append(f"{where}: a URL scheme other than http(s) or mailto")
            continue
        path, _, anchor = target.partition("#")
        path, anchor = unquote(path), unquote(anchor)
        if not path:
            if anchor not in own:
                out.append(f"{where}: no heading of this page has the anchor #{anchor}")
            continue
        dest = (root / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
        dest = dest.resolve()
        if not dest.is_relative_to(root):
            out.append(f"{where}: outside the repository")
            continue
        if not dest.exists():
            out.append(f"{where}: no such file or folder")
            continue
        if not anchor:
            continue
        if dest.is_file() and dest.suffix.lower() == ".md":
            if anchor not in anchors(dest.read_text(encoding="utf-8")):
                out.append(f"{where}: no heading of {dest.relative_to(root).as_posix()} has the anchor #{anchor}")
        elif not (dest.is_file() and _LINE_ANCHOR.match(anchor)):
            out.append(f"{where}: an anchor into something that is not a Markdown page")
    return out


# --- the repository's pages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_and_anchor_resolves(page):
    assert problems(page) == []


def test_readme_is_a_front_door():
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size:,} bytes; move detail to docs/ (limit {README_LIMIT:,})"


def test_every_docs_page_is_linked_from_the_readme_and_the_index():
    for index in (README, ROOT / "docs" / "index.md"):
        linked = {(index.parent / unquote(t.partition("#")[0])).resolve() for _, t in links(index.read_text())}
        missing = [p.name for p in PAGES[1:] if p.resolve() not in linked and p != index]
        assert missing == [], f"{index.name} does not link {missing}"


def test_readme_setup_commands_are_the_ones_ci_follows():
    """.ci/run installs and tests exactly as the first bash block under "## Setup" says."""
    setup = README.read_text().split("\n## Setup\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", setup, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert commands == ['pip install -e ".[dev]" && python bench.py', "pytest"]


# --- the checker itself ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("heading", "expected"), [
    ("Frame banks", "frame-banks"),
    ("NSNet: this suite's reading", "nsnet-this-suites-reading"),
    ("The `paper` preset", "the-paper-preset"),
    ("`--sampler-option`", "--sampler-option"),
    ("`summary.csv` columns", "summarycsv-columns"),
    ("Scaling out (torchrun, SLURM)", "scaling-out-torchrun-slurm"),
    ("Tables 1–4 and *Fig. 1*", "tables-14-and-fig-1"),
    ("`mean_softmax` and __bold__", "mean_softmax-and-bold"),
    ("A [linked](x.md) word", "a-linked-word"),
    ("Sizing a run at ActivityNet scale", "sizing-a-run-at-activitynet-scale"),
])
def test_slug_is_githubs(heading, expected):
    assert slug(heading) == expected


def test_repeated_headings_and_headings_in_code_blocks():
    text = "# Notes\n\n## Notes\n\n### Notes #\n\n```bash\n# not a heading\n```\n\n~~~\n## nor this\n~~~\n"
    assert anchors(text) == {"notes", "notes-1", "notes-2"}


def test_the_checker_finds_a_broken_anchor_and_a_missing_file(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## Frame banks\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Page\n\n## Setup\n\n"
        "[ok](#setup) [ok](other.md) [ok](other.md#frame-banks) [ok](../docs/) [ok](https://example.org/#x)\n"
        "`[in a code span](#nowhere)`\n\n```\n[in a fence](#nowhere)\n```\n\n"
        "[bad anchor](#set-up)\n[bad page anchor](other.md#frame-bank)\n[bad file](missing.md)\n"
        "[outside](../../elsewhere.md)\n[anchor into a folder](../docs/#x)\n")
    found = problems(page, root=tmp_path)
    assert [p.split(": ", 2)[1] for p in found] == [
        "#set-up", "other.md#frame-bank", "missing.md", "../../elsewhere.md", "../docs/#x"], found
    assert found[0].startswith("docs/page.md:12:")


def test_the_checker_fails_on_a_broken_copy_of_the_readme():
    """The real README with one of its anchors into docs/ broken: the checker must say so, and only that."""
    text = README.read_text()
    target = next(t for _, t in links(text) if t.startswith("docs/") and "#" in t)
    broken = text.replace(f"({target})", f"({target}-no-such-section)", 1)
    found = problems(README, text=broken)
    assert len(found) == 1 and f"{target}-no-such-section" in found[0], found
