"""Generate the Python code for every contract in protos/ into gen/.

protos/ is the single source of truth; gen/ is output only (never edited, not committed).
Run with ``python -m protoserve_runtime.codegen``; ``make gen`` does it when a proto changes.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "protos"
GEN_ROOT = REPO_ROOT / "gen"
# Vendored so that buf can resolve them; their Python code comes from googleapis-common-protos.
VENDORED_PREFIXES = ("google/",)


def project_protos(proto_root: Path = PROTO_ROOT) -> list[str]:
    """The project's own .proto files, relative to proto_root, sorted."""
    found = (p.relative_to(proto_root).as_posix() for p in proto_root.rglob("*.proto"))
    return sorted(p for p in found if not p.startswith(VENDORED_PREFIXES))


def generate(out_dir: Path = GEN_ROOT, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Regenerate out_dir from scratch and return the generated modules."""
    from grpc_tools import protoc  # imported here: only the build needs grpcio-tools

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    well_known = Path(protoc.__file__).parent / "_proto"
    protos = project_protos(proto_root)
    args = [
        "protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    # Every directory becomes a regular package so that imports are absolute and unpatched.
    for directory in [out_dir, *(d for d in out_dir.rglob("*") if d.is_dir())]:
        if directory != out_dir:
            (directory / "__init__.py").touch()
    (out_dir / "py.typed").touch()
    return sorted(out_dir.rglob("*_pb2*.py"))


def main() -> None:
    modules = generate()
    print(f"generated {len(modules)} modules from {PROTO_ROOT} into {GEN_ROOT}", file=sys.stderr)


if __name__ == "__main__":
    main()
