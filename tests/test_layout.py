"""The package's shape: no import cycles (module-level or inside functions)."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "lib" / "emosmc"


def import_graph() -> dict:
    """``module -> modules it imports`` over every module of the package (subpackages included, as
    dotted names such as ``toy.faces``), imports inside functions included."""
    names = {".".join(p.relative_to(PKG).with_suffix("").parts): p for p in PKG.rglob("*.py")}
    names = {k.removesuffix(".__init__"): p for k, p in names.items()}

    def resolve(mod: str, node: ast.ImportFrom) -> set:
        if node.level:
            base = mod.split(".")[: len(mod.split(".")) - node.level + (names[mod].name == "__init__.py")]
        elif node.module and node.module.split(".")[0] == "emosmc":
            base, node = [], ast.ImportFrom(module=".".join(node.module.split(".")[1:]) or None, names=node.names)
        else:
            return set()
        stem = [*base, *(node.module.split(".") if node.module else [])]
        cands = [".".join(stem + [a.name]) for a in node.names] + [".".join(stem)]
        return {c for c in cands if c in names}

    return {m: set().union(*[resolve(m, n) for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.ImportFrom)])
            - {m} for m, p in names.items()}


def find_cycle(graph: dict):
    state = {}

    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                return path[path.index(d):] + [d]
            if d not in state:
                found = visit(d, path + [d])
                if found:
                    return found
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m, [m])
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert {"smc", "resampling", "places", "pipeline", "profiles", "toy.faces", "toy.assets"} <= set(graph)
    assert "toy.faces" in graph["ground_truth"] and "labels" in graph["toy.faces"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_saved_notebook_outputs_are_portable():
    """No saved output names this machine's folders or carries terminal colour codes (make notebooks)."""
    import json
    import re

    root = PKG.parents[1]
    for nb in sorted((root / "notebooks").glob("*.ipynb")):
        text = json.dumps([c.get("outputs", []) for c in json.loads(nb.read_text())["cells"]])
        assert str(root) not in text, nb.name
        assert not re.search(r"(?<![\w>])/(work|home|root|Users|tmp)/", text), nb.name
        assert not re.search(r"\\u001b\[", text), nb.name
        assert not re.search(r"\d+%\|", text), f"{nb.name}: a saved progress bar (run tools/tidy_notebooks.py)"


def test_tidying_replaces_paths_and_colour_codes():
    import sys

    sys.path.insert(0, str(PKG.parents[1] / "tools"))
    from tidy_notebooks import ROOT, is_progress_bar, tidy_text

    bar = {"data": {"application/vnd.jupyter.widget-view+json": {}, "text/plain": "score:   0%|          | 0/5 [00:00<?, ?it/s]"}}
    ui = {"data": {"application/vnd.jupyter.widget-view+json": {}, "text/plain": "VBox(children=(HBox(...),))"}}
    assert is_progress_bar(bar) and not is_progress_bar(ui)

    assert tidy_text(f"\x1b[34mwandb\x1b[0m: saved in {ROOT}/outputs/run and /tmp/x1/y") == \
        "wandb: saved in <repo>/outputs/run and <tmp>"
