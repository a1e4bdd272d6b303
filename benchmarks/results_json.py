"""The benchmarks' one way to report: print the JSON, and write it to ``--out`` when given."""
import json
from pathlib import Path
from typing import Optional


def emit(out: dict, path: Optional[str] = None) -> None:
    """Print ``out`` as indented JSON; also write it (with a final newline) to ``path`` when given."""
    text = json.dumps(out, indent=2)
    if path:
        Path(path).write_text(text + "\n")
    print(text)
