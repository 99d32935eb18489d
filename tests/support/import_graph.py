"""The import graph of camtune/, read statically (every import statement, also the lazy
ones inside functions), for the layering and dvc.yaml tests."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def module_file(name: str) -> Path | None:
    """camtune.x.y -> its .py file (or package __init__.py) in the repository, None if not ours."""
    base = ROOT.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Our modules `path` imports (`from camtune.x import y` counts camtune.x.y when y is a module)."""
    out = set()
    pkg = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for n in names:
            if n.split(".")[0] == "camtune" and module_file(n) is not None:
                out.add(n)
    # a package's own __init__ runs on `import camtune.x.y`: count the parents too
    return out | {n.rsplit(".", k)[0] for n in out for k in range(1, n.count(".")) if "." in n}


def closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += imports(module_file(name))
    return seen


def all_modules() -> list[str]:
    files = sorted((ROOT / "camtune").rglob("*.py"))
    return [module_name(p) for p in files]
