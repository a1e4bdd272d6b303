"""The conda environment and the pip package describe the same environment."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_reqs = set(pyproject["dependencies"]) | set(pyproject["optional-dependencies"]["test"])
    env = (ROOT / "environment.yml").read_text()
    block = env.split("- pip:", 1)[1]
    conda_reqs = {line.strip()[2:] for line in block.splitlines() if line.strip().startswith("- ")}
    conda_reqs.discard("-e .")
    assert {_name(r) for r in conda_reqs} == {_name(r) for r in pip_reqs}
    # and the same pins
    assert sorted(conda_reqs) == sorted(pip_reqs)


def test_ci_runs_exactly_make_test():
    lines = [l for l in (ROOT / ".ci" / "run").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines[-1].strip() == "make test"


def test_every_notebook_starts_with_a_parameters_cell():
    import nbformat

    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), nb_path.name
        assert nb.metadata["kernelspec"]["name"] == "python3", nb_path.name
