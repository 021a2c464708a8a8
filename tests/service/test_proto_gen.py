"""The committed gRPC code in scheduler/proto_gen matches proto/ (run `make proto` if not)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    """Regenerating from the .proto files gives exactly the committed modules."""
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "proto" / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in generate.generate(tmp_path)}
    committed = {rel: (ROOT / rel).read_bytes() for rel in fresh}
    stale = sorted(str(rel) for rel in fresh if fresh[rel] != committed[rel])
    assert not stale, f"run `make proto`: stale {stale}"
