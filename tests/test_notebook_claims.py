"""Claims that cannot drift: every number a notebook's "What we saw" cell quotes is in its saved outputs.

The rule, the same for every notebook: a number quoted in a markdown cell headed "What we saw" must appear,
rounded to the precision it is quoted with, among the numbers of the text outputs (printed text, text/plain
results) of a code cell of the same notebook — or be written in a code cell's source (a setting such as
``N = 2000`` or ``STEPS = 100``). Quoting ``0.14`` is supported by a printed ``0.1354``; ``14%`` by ``0.14`` or
``14``; signs are ignored. What is not a measured claim is not checked: numbers inside `code`, LaTeX and
links, identifiers (``x0``, ``64x64``, ``2-D``, ``1st``) and references (section 5, question 4, Figure 5).
A number that is right but printed nowhere (derived in the prose, say) goes in :data:`ALLOWED` with its reason.

It is a necessary check, not a sufficient one: it catches a quote that no longer matches any output (the
notebook was re-run, the text was not), not a quote attached to the wrong output.

The same file keeps the saved outputs portable: no absolute path of the machine that ran them, no terminal
colour codes (``make notebooks`` runs ``tools/tidy_notebooks.py``; see the test's message for the sources).
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))

# (notebook, quoted number) -> why it is right although no output prints it
ALLOWED: dict[tuple[str, str], str] = {}

# Notebooks whose "What we saw" cells quote numbers their saved outputs no longer hold, until those cells are
# rewritten after the notebooks are re-run on the retrained toy models (issue 25). Strict: a notebook that
# passes again makes its entry fail, so the entry is removed.
KNOWN_DRIFT: dict[str, str] = {}

HEADING = re.compile(r"^\s*#+\s*what we saw", re.I | re.M)
CODE_SPAN = re.compile(r"```.*?```|`[^`\n]*`", re.S)
LATEX = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
LINK = re.compile(r"!?\[([^\]]*)\]\(([^)]*)\)")
REFERENCE = re.compile(
    r"(?:\b(?:sections?|questions?|answers?|exercises?|figures?|fig\.|tables?|notebooks?|cells?|issues?|"
    r"chapters?|algorithm|Q)|§)\s*#?\d+(?:\s*(?:,|and|or|&|–|-|to)\s*\d+)*", re.I)
# a number: digits with optional thousands commas and decimals, optional exponent, optional percent sign;
# not part of an identifier (x0, 64x64, 2-D, 1st, v2.1)
NUMBER = re.compile(
    r"(?<![\w.])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?P<exp>[eE][-+]?\d+)?(?P<pct>\s?%)?"
    r"(?![\w]|\.\d|-[A-Za-z])")
OUT_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")
OUT_THOUSANDS = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?)(?![\d,])")
TEXT_TYPES = ("text/plain", "text/markdown", "text/html", "text/latex")


@dataclass(frozen=True)
class Quote:
    text: str  # as written, e.g. "0.135", "12%", "4.9e-10", "89,990"
    value: Decimal  # absolute value, percent sign removed
    places: int  # decimals quoted (of the mantissa, for 4.9e-10)
    percent: bool
    scientific: bool


def cell_text(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def what_we_saw_cells(nb) -> list[tuple[int, str]]:
    return [(i, cell_text(c)) for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "markdown" and HEADING.search(cell_text(c))]


def claim_text(markdown: str) -> str:
    """The prose of a markdown cell with what is not a measured claim blanked out."""
    text = HEADING.sub(" ", markdown)
    text = CODE_SPAN.sub(" ", text)
    text = LATEX.sub(" ", text)
    text = LINK.sub(lambda m: " " if re.search(r"\.(ipynb|md|py)\b|://", m.group(2)) else m.group(1), text)
    text = re.sub(r"https?://\S+", " ", text)
    return REFERENCE.sub(" ", text)


def quoted_numbers(markdown: str) -> list[Quote]:
    quotes = []
    for m in NUMBER.finditer(claim_text(markdown)):
        digits = m.group("num").replace(",", "")
        places = len(digits.split(".")[1]) if "." in digits else 0
        value = Decimal(digits) * (Decimal(10) ** int(m.group("exp")[1:]) if m.group("exp") else 1)
        quotes.append(Quote(m.group(0).strip(), abs(value), places, bool(m.group("pct")), bool(m.group("exp"))))
    return quotes


def output_texts(nb) -> list[str]:
    texts = []
    for c in nb["cells"]:
        for out in c.get("outputs", []):
            if "text" in out:
                texts.append(cell_text({"source": out["text"]}))
            for kind in TEXT_TYPES:
                if kind in out.get("data", {}):
                    t = cell_text({"source": out["data"][kind]})
                    texts.append(re.sub(r"<[^>]+>", " ", t) if kind == "text/html" else t)
    return texts


def numbers_in(texts) -> list[Decimal]:
    """Every number in the texts (unsigned), ``89,990`` read both as one number and as two."""
    texts = list(texts)
    plain = [abs(Decimal(s)) for t in texts for s in OUT_NUMBER.findall(t)]
    return plain + [Decimal(s.replace(",", "")) for t in texts for s in OUT_THOUSANDS.findall(t)]


def rounded(x: Decimal, places: int) -> Decimal:
    return x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def supported(q: Quote, outputs: list[Decimal], settings: set[Decimal]) -> bool:
    if q.scientific:
        fmt = f".{q.places}e"
        return any(format(o, fmt) == format(q.value, fmt) for o in outputs if o)
    candidates = [(q.value, q.places)]
    if q.percent:
        candidates.append((q.value / 100, q.places + 2))
    for value, places in candidates:
        if any(rounded(o, places) == value for o in outputs):
            return True
    return not q.percent and q.value in settings


def unsupported_claims(nb, name: str = "", allowed=None) -> list[tuple[int, str]]:
    """``(cell index, quoted number)`` for every number of a "What we saw" cell that no output supports."""
    allowed = ALLOWED if allowed is None else allowed
    outputs = numbers_in(output_texts(nb))
    settings = set(numbers_in(cell_text(c) for c in nb["cells"] if c["cell_type"] == "code"))
    return [(i, q.text) for i, md in what_we_saw_cells(nb) for q in quoted_numbers(md)
            if (name, q.text) not in allowed and not supported(q, outputs, settings)]


def load(path: Path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_what_we_saw_quotes_only_numbers_the_saved_outputs_hold(path, request):
    if path.name in KNOWN_DRIFT:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_DRIFT[path.name], strict=True))
    nb = load(path)
    assert what_we_saw_cells(nb), f"{path.name} has no 'What we saw' cell"
    bad = unsupported_claims(nb, path.name)
    assert not bad, (f"{path.name}: numbers quoted in 'What we saw' that no saved output holds "
                     f"(cell index, number): {bad}")


# -- the checker itself: it passes what it should, and fails a tampered copy ---------------------------------

def tiny_notebook(claim: str, printed: str, source: str = "x = 1"):
    return {"cells": [
        {"cell_type": "code", "source": source, "outputs": [{"output_type": "stream", "name": "stdout",
                                                             "text": printed}]},
        {"cell_type": "markdown", "source": "## What we saw\n\n" + claim},
    ]}


def test_rounding_percent_settings_and_non_claims():
    printed = "error 0.1354 at N = 3000; share 0.42; ESS/N 0.0073; weight 4.87e-10; found 7 of 10\n"
    ok = ("* error 0.135 (0.14, about 0.1); 42% of them, ESS under 0.73 % of N; 4.9e-10; 7 of 10; "
          "`lambda = 17.5` and $x^{23}$ are not claims, nor x0, 64x64, 2-D, the 1st run, section 5 or "
          "[01 · notebook](01_vae_encode.ipynb); N = 16 is a setting.")
    assert unsupported_claims(tiny_notebook(ok, printed, source="N = 16"), allowed={}) == []
    for wrong in ("0.153", "0.13", "43%", "5.0e-10", "8", "3001"):
        assert unsupported_claims(tiny_notebook(f"* error {wrong}", printed), allowed={}) == [(1, wrong)], wrong


def test_a_notebook_that_holds_a_claim_is_not_a_notebook_that_says_it():
    assert unsupported_claims(tiny_notebook("* 0.5", "p = 0.5\n"), allowed={}) == []
    assert unsupported_claims(tiny_notebook("* 0.5", "p = 0.6\n"), allowed={}) == [(1, "0.5")]
    assert unsupported_claims(tiny_notebook("* 0.5", "p = 0.6\n"), "nb", allowed={("nb", "0.5"): "derived"}) == []


def test_a_tampered_walkthrough_fails():
    nb = load(ROOT / "notebooks" / "00_smc_walkthrough.ipynb")
    assert unsupported_claims(nb, "00_smc_walkthrough.ipynb") == []
    (i, md), = what_we_saw_cells(nb)
    quotes = [q for q in quoted_numbers(md) if q.places >= 2]
    assert len(quotes) >= 5, "the walkthrough's 'What we saw' should quote its measured numbers"
    outputs = numbers_in(output_texts(nb))
    q = quotes[0]
    step = Decimal(1).scaleb(-q.places)
    fake = next(v for v in (q.value + k * step for k in range(7, 1000)) if not any(rounded(o, q.places) == v
                                                                                 for o in outputs))
    tampered = copy.deepcopy(nb)
    tampered["cells"][i]["source"] = md.replace(q.text, str(fake))
    assert (i, str(fake)) in unsupported_claims(tampered, "00_smc_walkthrough.ipynb")
    no_outputs = copy.deepcopy(nb)
    for c in no_outputs["cells"]:
        if c["cell_type"] == "code":
            c["outputs"] = []
    assert len(unsupported_claims(no_outputs, "00_smc_walkthrough.ipynb")) >= len(quotes)


def test_the_walkthrough_defines_ess_at_first_use_and_holds_the_primer():
    nb = load(ROOT / "notebooks" / "00_smc_walkthrough.ipynb")
    md = [cell_text(c) for c in nb["cells"] if c["cell_type"] == "markdown"]
    first = next(t for t in md if re.search(r"\bESS\b|effective sample size", t, re.I))
    assert re.search(r"effective sample size", first, re.I) and re.search(r"\\mathrm\{ESS\}\s*=\s*\\frac\{1\}", first)
    text = "\n".join(md)
    assert r"\hat x_0(x_t) = \frac{x_t - \sqrt{1-\bar\alpha_t}" in text  # the x0-prediction formula
    assert "Feynman–Kac model" in text and "particle filter" in text


# -- saved outputs stay portable --------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[|\u001b\[|\x1b\]")
ABSOLUTE = re.compile(
    r"(?<![\w.<>~-])/(?:work|tmp|home|root|Users|mnt|opt|srv|var|private|usr|kaggle|content|scratch)/"
    r"|\b[A-Z]:\\\\?(?:Users|Windows)|file:///")


def saved_output_texts(cell) -> list[str]:
    texts = []
    for out in cell.get("outputs", []):
        for key in ("text", "ename", "evalue"):
            if key in out:
                texts.append(cell_text({"source": out[key]}))
        texts += out.get("traceback", [])
        for kind, value in out.get("data", {}).items():
            if kind.startswith("text/") or kind.endswith("json"):
                texts.append(value if isinstance(value, str) else json.dumps(value))
    return texts


def hygiene_problems(nb) -> list[tuple[int, str]]:
    problems = []
    for i, cell in enumerate(nb["cells"]):
        for t in saved_output_texts(cell):
            if ANSI.search(t):
                problems.append((i, "ANSI colour code"))
            m = ABSOLUTE.search(t)
            if m:
                problems.append((i, f"absolute path: ...{t[max(0, m.start() - 30):m.end() + 30]!r}"))
    return problems


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_saved_outputs_hold_no_absolute_path_or_colour_code(path):
    problems = hygiene_problems(load(path))
    assert not problems, (f"{path.name}: {problems}. Sources seen so far: W&B's console (colour codes and its run "
                          "folder), prints of work folders and warnings with file names; `make notebooks` tidies "
                          "them (tools/tidy_notebooks.py)")


def test_the_hygiene_check_finds_paths_and_colour_codes():
    def nb(text):
        return {"cells": [{"cell_type": "code", "source": "", "outputs": [
            {"output_type": "stream", "name": "stdout", "text": text}]}]}
    assert hygiene_problems(nb("saved in <repo>/outputs and <tmp>; 1/2 of /4; ratio a/b\n")) == []
    for bad in ("saved in /work/main/outputs\n", "\x1b[34mwandb\x1b[0m: hello\n", "see /tmp/x1/y\n",
                "C:\\Users\\me\\x\n", "/home/user/.cache/x\n"):
        assert hygiene_problems(nb(bad)), bad
