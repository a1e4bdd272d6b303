"""Make saved notebook outputs portable: the repository's absolute path becomes ``<repo>``, ``/tmp/...``
folders become ``<tmp>``, terminal colour codes (ANSI escapes, e.g. from W&B) are removed, and progress-bar
widgets (tqdm, transformers' "Loading weights") are dropped: saved, they only show a frozen "0%" line.

    python tools/tidy_notebooks.py notebooks/*.ipynb      (``make notebooks`` runs it after executing them)
"""
import re
import sys
from pathlib import Path

import nbformat

ROOT = str(Path(__file__).resolve().parents[1])
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TMP = re.compile(r"/tmp/[^\s'\"]*")
BAR = re.compile(r"(\d+%\|)|(\d+(it|img)? \[\d\d:\d\d)|(\?(it|img)/s\])")


def is_progress_bar(out) -> bool:
    data = out.get("data", {})
    return "application/vnd.jupyter.widget-view+json" in data and bool(BAR.search(data.get("text/plain", "")))


def tidy_text(text: str) -> str:
    return TMP.sub("<tmp>", ANSI.sub("", text).replace(ROOT, "<repo>"))


def tidy(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    changed = 0
    for cell in nb.cells:
        if "outputs" in cell:
            kept = [o for o in cell.outputs if not is_progress_bar(o)]
            changed += len(cell.outputs) - len(kept)
            cell.outputs = kept
        for out in cell.get("outputs", []):
            if "text" in out:
                new = tidy_text(out["text"])
                changed += new != out["text"]
                out["text"] = new
            for key in ("text/plain", "text/html"):
                if key in out.get("data", {}):
                    new = tidy_text(out["data"][key])
                    changed += new != out["data"][key]
                    out["data"][key] = new
            if "traceback" in out:
                out["traceback"] = [tidy_text(t) for t in out["traceback"]]
    if changed:
        nbformat.write(nb, path)
    return changed


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(p, tidy(Path(p)), "outputs tidied")
