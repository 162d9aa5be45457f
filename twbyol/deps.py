"""The package modules a job runs, derived from the imports: the rules' code inputs.

`twbyol <stage>` runs twbyol/cli.py, which imports the stage's module (cli.STAGES); that
module runs whatever twbyol modules it imports, at module level or inside a function, and
Python runs each imported module's parent packages' __init__.py too. `stage_modules(stage)`
follows those imports through the package's sources (an AST walk: nothing is imported, so
Snakemake's parsing never pays for torch) and returns every file, so a rule's code inputs
cannot miss a module its job runs, and editing any of them reruns the job.

The one import followed by hand: a pretraining job builds its method with
`twbyol.methods.build_method`, which imports the module of the run's method alone;
`METHOD_MODULES` maps each method to it, and `pretrain_modules(method)` follows that edge
only (the walk drops build_method's edges to the other methods' modules), so editing one
method reruns only its runs, and a module every run imports otherwise (twbyol.methods.byol:
the crop weights and EMA schedule) is every run's. Stdlib only; imported by
workflow/rules/common.smk.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from twbyol.settings import METHOD_MODULES

PACKAGE = "twbyol"
ROOT = Path(__file__).resolve().parent


def module_file(name: str) -> Path | None:
    """The source of package module `name` (a .py or a package's __init__.py); None outside
    the package or for a name that is no module (an attribute in `from x import name`)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = ROOT.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _runtime_nodes(tree: ast.AST):
    """Every node of `tree` except the bodies of `if TYPE_CHECKING:` (imports for the type
    checker only, never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


@cache
def imports_of(name: str) -> tuple[str, ...]:
    """The package modules module `name` imports anywhere in its source, with their parent
    packages: `from twbyol.data.sampling import X` gives twbyol, twbyol.data and
    twbyol.data.sampling (and twbyol.data.sampling.X when X is a module)."""
    path = module_file(name)
    if path is None:
        return ()
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join(pkg + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        for t in targets:
            if module_file(t) is not None:
                found.update(m for m in _with_parents(t) if module_file(m) is not None)
    found.discard(name)
    return tuple(sorted(found))


def closure(*entries: str, drop: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """`entries` and every package module they import, transitively, except along the
    (importer, imported) edges in `drop`; module names, sorted."""
    seen: set[str] = set()
    todo = [m for e in entries for m in _with_parents(e) if module_file(m) is not None]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(i for i in imports_of(m) if (m, i) not in drop)
    return sorted(seen)


def files(modules: list[str]) -> tuple[str, ...]:
    """The modules' source files relative to the package's parent (twbyol/...), sorted."""
    return tuple(sorted(module_file(m).relative_to(ROOT.parent).as_posix() for m in modules))


def _stage_module(stage: str) -> str:
    """cli.STAGES[stage]'s module, read from cli.py's source (importing cli is cheap, but
    this module stays free of the package's imports)."""
    tree = ast.parse(module_file(f"{PACKAGE}.cli").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "STAGES":
            stages = ast.literal_eval(node.value)
            if stage not in stages:
                raise ValueError(f"twbyol.cli: no stage {stage!r} (stages: {', '.join(stages)})")
            return stages[stage][0]
    raise ValueError("twbyol/cli.py: STAGES not found")


# build_method's imports of the methods' modules: followed per run (pretrain_modules)
DISPATCH = frozenset((f"{PACKAGE}.methods", m) for m in METHOD_MODULES.values())


@cache
def stage_modules(stage: str, methods: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Source files `twbyol <stage>` runs; the method modules only where imported otherwise
    than through build_method's dispatch, or where named in `methods` (the step benchmark
    builds its two runs' methods)."""
    return files(
        closure(
            f"{PACKAGE}.cli",
            _stage_module(stage),
            *(METHOD_MODULES[m] for m in methods),
            drop=DISPATCH,
        )
    )


@cache
def pretrain_modules(method: str) -> tuple[str, ...]:
    """Source files a pretraining job of `method` runs: the launcher, the training loop and
    that method's module with its imports (the other methods' modules are not run)."""
    if method not in METHOD_MODULES:
        raise ValueError(f"method: unknown {method!r}; expected one of {sorted(METHOD_MODULES)}")
    return files(
        closure(
            f"{PACKAGE}.cli",
            _stage_module("pretrain"),
            f"{PACKAGE}.train",
            METHOD_MODULES[method],
            drop=DISPATCH,
        )
    )
