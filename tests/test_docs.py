"""The README and docs/: the README is a short map whose links all resolve, and every results table in them is
generated from benchmarks/results/ (tools/results_tables.py, `make docs`), so that none can drift."""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SRC = re.compile(r"""<(?:img|a)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.I)


def _tables():
    spec = importlib.util.spec_from_file_location("results_tables", ROOT / "tools" / "results_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def links(text: str):
    """Every link and image target of a Markdown text, outside code blocks and code spans."""
    text = CODE_SPAN.sub("", FENCE.sub("", text))
    return [m.group(1) for m in LINK.finditer(text)] + [m.group(1) for m in HTML_SRC.finditer(text)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", CODE_SPAN.sub(lambda m: m.group(0)[1:-1], heading).strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set:
    seen, out = {}, set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = slug(m.group(1))
            out.add(f"{s}-{seen[s]}" if s in seen else s)
            seen[s] = seen.get(s, 0) + 1
    return out


def relative_links(page: Path):
    for target in links(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        yield target, (page.parent / path).resolve() if path else page, anchor


def test_the_link_finder_sees_links_and_images_but_not_code():
    text = "[a](x.md) ![b](img/y.png) [c](z.md#part) `[d](not.md)` [e](https://e.org)\n```\n[f](nor.md)\n```\n"
    assert links(text) == ["x.md", "img/y.png", "z.md#part", "https://e.org"]
    assert slug("Tuning (on `TUNING_SEED` faces only)") == "tuning-on-tuning_seed-faces-only"
    assert slug("Ground truth: what an edit really shows") == "ground-truth-what-an-edit-really-shows"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    missing = [t for t, path, _ in relative_links(page) if not path.exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"


# Pages whose stale anchors are known, with where they should point; drop the entry once the page is fixed.
STALE_ANCHORS = {}  # page -> why its anchors may be stale (xfail); none now


def _anchor_case(page):
    name = str(page.relative_to(ROOT))
    marks = [pytest.mark.xfail(reason=STALE_ANCHORS[name], strict=False)] if name in STALE_ANCHORS else []
    return pytest.param(page, id=name, marks=marks)


@pytest.mark.parametrize("page", [_anchor_case(p) for p in PAGES])
def test_every_anchor_into_a_markdown_page_names_one_of_its_headings(page):
    bad = [t for t, path, anchor in relative_links(page)
           if anchor and path.suffix == ".md" and path.exists() and anchor not in anchors(path)]
    assert not bad, f"{page.relative_to(ROOT)} links to headings that do not exist: {bad}"


def test_the_readme_is_a_short_map():
    n = len(README.read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; at most {README_MAX_LINES}: move detail to docs/"


def test_the_readme_module_map_names_every_module_of_the_library():
    """The 'What is inside' table lists every module of lib/emosmc (and no module that is gone)."""
    text = README.read_text()
    section = text.split("## What is inside", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    named = {n.strip("`/ ") for row in rows for n in re.findall(r"`[^`]+`", row)}
    lib = ROOT / "lib" / "emosmc"
    modules = {p.stem for p in lib.glob("*.py") if not p.stem.startswith("_")}
    modules |= {p.name for p in lib.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert modules - named == set(), f"modules missing from the README's map: {sorted(modules - named)}"
    gone = {n for n in named if not (lib / f"{n}.py").exists() and not (lib / n).is_dir()}
    assert gone == set(), f"the README's map names modules that do not exist: {sorted(gone)}"


def test_generated_tables_match_their_json():
    stale = _tables().stale_files()
    assert not stale, f"stale generated results in {[str(p.relative_to(ROOT)) for p in stale]}: run make docs"


def test_every_generated_block_names_a_table():
    mod = _tables()
    names = {m.group(2) for p in mod.DOCS if p.exists() for m in mod.BLOCK.finditer(p.read_text())}
    assert names and names <= set(mod.TABLES), names - set(mod.TABLES)


def test_a_rate_carries_its_standard_error():
    mod = _tables()
    assert mod.rate(0.9, 100) == "0.90 ± 0.03" and mod.rate(1.0, 50) == "1.00 ± 0.00"
    assert mod.num(0.425, 2) == "0.43" and mod.pct(0.425) == "43%"


# -- docs/course.md: the 2-hour plan fits in two hours ---------------------------------------------------------

COURSE = ROOT / "docs" / "course.md"
CLASS_MINUTES = 120


def timetable(text: str, heading: str = "## The 2-hour plan") -> list:
    """``(start in minutes, minutes)`` of every row of the first table after ``heading``: a Markdown table whose
    columns include ``start`` (``h:mm``) and ``min``."""
    lines = text.split(heading, 1)[1].splitlines()
    first = next(i for i, line in enumerate(lines) if line.lstrip().startswith("|"))
    table = []
    for line in lines[first:]:
        if not line.lstrip().startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, rows = table[0], [r for r in table[2:]]
    s, m = header.index("start"), header.index("min")
    out = []
    for r in rows:
        h, mm = r[s].split(":")
        out.append((int(h) * 60 + int(mm), int(r[m])))
    return out


def test_the_timetable_parser_reads_starts_and_minutes():
    text = "x\n## The 2-hour plan\n\nintro\n\n| start | min | what |\n|---|---|---|\n| 0:00 | 5 | a |\n| 0:05 | 55 | b |\n| 1:00 | 3 | c |\n\nafter | not a row |\n"
    assert timetable(text) == [(0, 5), (5, 55), (60, 3)]


def test_the_course_plan_adds_up_to_two_hours_at_most():
    rows = timetable(COURSE.read_text())
    assert len(rows) >= 8, "the plan should be minute by minute, section by section"
    total = sum(m for _, m in rows)
    assert total <= CLASS_MINUTES, f"docs/course.md's 2-hour plan adds up to {total} minutes"
    starts = [s for s, _ in rows]
    expected = [sum(m for _, m in rows[:i]) for i in range(len(rows))]
    assert starts == expected, f"each row should start when the one before ends: starts {starts}, expected {expected}"
