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


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 350, 80


def too_long(pkg: Path = PKG) -> list:
    """``"path: N lines"`` for every module of ``pkg`` over ``MAX_MODULE_LINES`` lines and
    ``"path:line name: N lines"`` for every function (method, nested function) over ``MAX_FUNCTION_LINES``,
    from its ``def`` to its last line."""
    found = []
    for p in sorted(pkg.rglob("*.py")):
        text, name = p.read_text(), p.relative_to(pkg.parents[1]).as_posix()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            found.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    found.append(f"{name}:{node.lineno} {node.name}: {n} lines")
    return found


def test_modules_and_functions_stay_short():
    """nanoGPT-minimal files: no module of the package over 350 lines, no function over 80."""
    assert too_long() == [], "\n".join(too_long())


def test_the_length_check_finds_long_modules_and_functions(tmp_path):
    pkg = tmp_path / "lib" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "ok.py").write_text("def f():\n" + "    x = 1\n" * 79)
    (pkg / "long_function.py").write_text("class A:\n    def g(self):\n" + "        x = 1\n" * 80)
    (pkg / "long_module.py").write_text("x = 1\n" * 351)
    assert too_long(pkg) == ["lib/pkg/long_function.py:2 g: 81 lines", "lib/pkg/long_module.py: 351 lines"]


def test_experiments_stay_out_of_the_library():
    """Code that was tried and not shipped lives in benchmarks/experiments/, not in lib/."""
    for p in PKG.rglob("*.py"):
        text = p.read_text()
        for word in ("hard_examples", "FixedEtaDDIM", "expression_posterior"):
            assert word not in text, f"{p.relative_to(PKG)} mentions {word}"


def test_the_general_modules_do_not_import_the_toy_world():
    """Editing a photo loads nothing of the toy world: only profiles, toy/ and ground_truth import it (the
    profile asks its own world for faces, ground truth and identity)."""
    import os
    import subprocess
    import sys

    graph = import_graph()
    for m in ("metrics", "pipeline", "smc", "scorers", "widgets", "cli", "edit_config", "ablation", "baselines"):
        assert not [d for d in graph[m] if d.split(".")[0] == "toy"], m
    code = ("import sys, emosmc.cli, emosmc.widgets, emosmc.metrics, emosmc.pipeline, emosmc.scorers, emosmc.ablation; "
            "from emosmc.profiles import get_profile; get_profile('celebahq', root='/nonexistent').edit; "
            "print(sorted(m for m in sys.modules if m.startswith('emosmc.toy') or m == 'emosmc.ground_truth'))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PKG.parent), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "[]"


def test_no_code_branches_on_a_profiles_name():
    """What differs between profiles is the profile's (emosmc.profiles); elsewhere no ``== "toy"``."""
    import re

    allowed = {PKG / "profiles.py", PKG / "ground_truth.py"}
    pattern = re.compile(r"""(name|profile\w*)\s*[!=]=\s*["'](toy|celebahq)["']""")
    hits = [f"{p.relative_to(PKG)}:{i}" for p in PKG.rglob("*.py") if p not in allowed and "toy" not in p.relative_to(PKG).parts
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


def test_each_edit_default_is_declared_once():
    """final_check's default lives in EditConfig alone; no argument builder types a setting by its default's type
    (``type=type(v)`` would read ``--proposal-correction False`` as True)."""
    import re

    root = PKG.parents[1]
    files = [p for d in ("lib", "benchmarks", "kaggle") for p in (root / d).rglob("*.py")]
    hits = [f"{p.relative_to(root)}:{i}" for p in files for i, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(r"""final_check\s*=\s*4\b|["']final_check["']\s*:\s*4\b|type=type\(""", line)]
    assert not hits, hits
