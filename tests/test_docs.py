"""The result tables of the README and docs/ are generated from benchmarks/results/ (tools/results_tables.py)."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tables():
    spec = importlib.util.spec_from_file_location("results_tables", ROOT / "tools" / "results_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generated_tables_match_their_json():
    stale = _tables().stale_files()
    assert not stale, f"stale generated results in {[str(p.relative_to(ROOT)) for p in stale]}: run python tools/results_tables.py"


def test_every_generated_block_names_a_table():
    mod = _tables()
    names = {m.group(2) for p in mod.DOCS if p.exists() for m in mod.BLOCK.finditer(p.read_text())}
    assert names and names <= set(mod.TABLES), names - set(mod.TABLES)


def test_a_rate_carries_its_standard_error():
    mod = _tables()
    assert mod.rate(0.9, 100) == "0.90 ± 0.03" and mod.rate(1.0, 50) == "1.00 ± 0.00"
