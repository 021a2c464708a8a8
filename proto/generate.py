"""Generate the Python gRPC code in scheduler/proto_gen/ from proto/sfed/v1/*.proto.

Run `make proto` after changing a .proto file; tests/service/test_proto_gen.py fails while the
committed code is out of date. Needs grpcio-tools (the `dev` extra).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PACKAGE = "scheduler.proto_gen"


def generate(out_root: Path) -> list[Path]:
    """Write the generated modules under out_root/scheduler/proto_gen and return their paths."""
    import grpc_tools
    from grpc_tools import protoc

    out = out_root / PACKAGE.replace(".", "/")
    out.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = []
    for path in sorted(p for p in out.rglob("*") if p.suffix in (".py", ".pyi")):
        text = path.read_text()
        # protoc writes absolute imports of the proto package; make them package-relative.
        text = re.sub(r"^from sfed\.v1 import", f"from {PACKAGE}.sfed.v1 import", text, flags=re.M)
        path.write_text(text)
        written.append(path)
    for directory in {p.parent for p in written} | {out}:
        while directory != out.parent:
            (directory / "__init__.py").touch()
            directory = directory.parent
    return written


if __name__ == "__main__":
    for written_path in generate(ROOT if len(sys.argv) < 2 else Path(sys.argv[1])):
        print(written_path.relative_to(ROOT) if written_path.is_relative_to(ROOT) else written_path)
