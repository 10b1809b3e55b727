"""Does a submission reuse the course's reference code? Decided from its source, in the grader.

``zoolib`` ships a reference implementation of every block the assignments ask for, and
students install it. Whether an answer imports, subclasses or calls one of them is read from
the submitted source with :mod:`ast`, in the grader's own process: nothing the student's
code does at run time can change the answer.

What counts as reference code: anything under ``zoolib.models``, ``zoolib.arith``,
``zoolib.profiler`` and ``zoolib.ledger``, the model registry (``zoolib.get_model`` and
friends), and the model zoos of ``torchvision.models`` and ``timm``. Data tables (names in
UPPER_CASE), ``zoolib.checks``, ``zoolib.data``, ``zoolib.train`` and ``zoolib.plots`` are
tools, not answers. Whatever the release's own given cells import is allowed too, and an
assignment can allow more by name.

Tricks that static analysis cannot resolve are not scored away silently: ``__import__``,
``importlib``, ``exec``/``eval``/``compile`` of strings, ``getattr`` with a computed name,
``sys.modules``, ``globals()``/``vars()``, dunder attributes that reach into other code
(``__globals__``, ``__code__``, ``__subclasses__``, ``__builtins__``) are reported as
``review`` findings for the instructor.
"""
from __future__ import annotations

import ast
import inspect
from dataclasses import asdict, dataclass
from typing import Iterable

__all__ = ["Finding", "analyse", "analyse_notebook", "allowed_reuse", "review_submission", "REFERENCE_PREFIXES", "TOOL_PREFIXES"]

REFERENCE_PREFIXES = ("zoolib.models", "zoolib.arith", "zoolib.profiler", "zoolib.ledger", "zoolib._registry",
                      "zoolib.get_model", "zoolib.list_models", "zoolib.model_spec", "zoolib.register_model",
                      "zoolib.profile", "zoolib.interop", "torchvision.models", "timm")
TOOL_PREFIXES = ("zoolib.checks", "zoolib.data", "zoolib.train", "zoolib.plots", "zoolib.config", "zoolib.runs")
_DYNAMIC_CALLS = {"__import__": "imports a module by a computed name", "exec": "runs code from a string",
                  "eval": "evaluates code from a string", "compile": "compiles code from a string",
                  "globals": "reads the global namespace as a dictionary",
                  "vars": "reads a namespace as a dictionary", "locals": "reads the local namespace as a dictionary"}
MAX_SOURCE = 200_000    # characters of one answer cell; an answer is a few hundred lines at most
_DYNAMIC_MODULES = ("importlib", "imp", "pkgutil", "runpy", "marshal", "pickle", "ctypes")
_DUNDERS = {"__globals__", "__code__", "__subclasses__", "__builtins__", "__dict__", "__closure__",
            "__import__", "__loader__", "__spec__"}


@dataclass(frozen=True)
class Finding:
    cell: str          # the graded cell's id (grade_id), or "" for a plain source string
    line: int          # line in that cell
    kind: str          # "reference": reuses reference code; "review": cannot be resolved statically
    name: str          # what is used: 'zoolib.models.nin.NiNBlock', 'exec', ...
    text: str          # a sentence for the instructor

    def as_dict(self) -> dict:
        return asdict(self)


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """'zoolib.models.nin.NiNBlock' for ``nin.NiNBlock`` after ``from zoolib.models import nin``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def _canonical(path: str) -> str:
    """Where a zoolib name really lives: 'zoolib.Inception' -> 'zoolib.models.googlenet.Inception'.

    zoolib re-exports its models at the top level; the grader imports its own copy of zoolib
    (never the student's) to follow those re-exports.
    """
    if not path.startswith("zoolib."):
        return path
    import importlib

    parts = path.split(".")
    try:
        obj = importlib.import_module("zoolib")
    except Exception:  # pragma: no cover - zoolib is the grader's own dependency
        return path
    for i, part in enumerate(parts[1:], 1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            return path
        if not inspect.ismodule(obj):
            home = getattr(obj, "__module__", None)
            name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
            if isinstance(home, str) and isinstance(name, str):
                return ".".join([home, name, *parts[i + 1:]])
            return path
    return obj.__name__ if inspect.ismodule(obj) else path


def _shown(path: str) -> str:
    real = _canonical(path)
    return path if real == path else f"{real} (as {path})"


def _is_reference(path: str, allowed: set[str]) -> bool:
    for candidate in dict.fromkeys([path, _canonical(path)]):
        if any(candidate == a or candidate.startswith(a + ".") for a in allowed):
            return False
        leaf = candidate.rsplit(".", 1)[-1]
        if leaf.isupper() or (leaf[:1] == "_" and leaf[1:].isupper()):   # data tables: GOOGLENET_TABLE
            return False
        if any(candidate == t or candidate.startswith(t + ".") for t in TOOL_PREFIXES):
            return False
    return any(c == r or c.startswith(r + ".") for c in {path, _canonical(path)} for r in REFERENCE_PREFIXES)


def _imports(tree: ast.AST, aliases: dict[str, str]) -> list[tuple[ast.AST, str]]:
    """Record every import as an alias; return (node, imported path) pairs."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    aliases[top] = top
                found.append((node, a.name))
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                path = f"{node.module}.{a.name}" if a.name != "*" else node.module
                if a.name != "*":
                    aliases[a.asname or a.name] = path
                found.append((node, path))
    return found


_GRADING = ("zoolib.probe", "zoolib.remote", "zoolib.wire", "zoograde")


def analyse(source: str, cell: str = "", aliases: dict[str, str] | None = None,
            allowed: Iterable[str] = ()) -> list[Finding]:
    """Findings for one cell's source; ``aliases`` carries imports over from earlier cells (and is updated)."""
    aliases = {} if aliases is None else aliases
    allowed = set(allowed)
    if len(source) > MAX_SOURCE:
        return [Finding(cell, 0, "review", "size", f"the cell holds {len(source):,} characters, more than the "
                                                   f"{MAX_SOURCE:,} analysed; check it by hand")]
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        return [Finding(cell, err.lineno or 0, "review", "SyntaxError",
                        f"the cell does not parse ({err.msg}), so it could not be checked for reuse")]
    out: list[Finding] = []
    seen: set[tuple[int, str]] = set()

    def add(node, kind, name, text):
        key = (getattr(node, "lineno", 0), name)
        if key not in seen:
            seen.add(key)
            out.append(Finding(cell, key[0], kind, name, text))

    for node, path in _imports(tree, aliases):
        if _is_reference(path, allowed):
            add(node, "reference", path, f"imports the reference {_shown(path)}")
        if path.split(".")[0] in _DYNAMIC_MODULES:
            add(node, "review", path, f"imports {path}, which can load or run code the analysis cannot follow")
        if any(path == g or path.startswith(g + ".") for g in _GRADING):
            add(node, "review", path, f"imports {path}, part of the grading machinery (the kernel's answers "
                                      f"to the grader): no points depend on it, but look at what the cell does")
    for node in ast.walk(tree):
        if isinstance(node, (ast.Attribute, ast.Name)) and isinstance(getattr(node, "ctx", None), ast.Load):
            path = _dotted(node, aliases)
            if path and _is_reference(path, allowed):
                add(node, "reference", path, f"uses the reference {_shown(path)}")
            if isinstance(node, ast.Attribute) and node.attr in _DUNDERS:
                add(node, "review", node.attr, f"reaches into {node.attr}, which static analysis cannot follow")
            if isinstance(node, ast.Name) and node.id == "__builtins__":
                add(node, "review", node.id, "reaches into __builtins__")
            if path == "sys.modules" or (path or "").startswith("sys.modules."):
                add(node, "review", "sys.modules", "looks modules up in sys.modules")
        elif isinstance(node, ast.ClassDef):
            for base in node.bases:
                path = _dotted(base, aliases)
                if path and _is_reference(path, allowed):
                    add(base, "reference", path, f"class {node.name} subclasses the reference {_shown(path)}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC_CALLS \
                and node.func.id not in aliases:
            name = node.func.id
            literal = node.args and isinstance(node.args[0], ast.Constant)
            if name in ("exec", "eval", "compile", "__import__") or not literal:
                add(node, "review", name, f"{name}() {_DYNAMIC_CALLS[name]}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                and len(node.args) >= 2:
            target, attr = _dotted(node.args[0], aliases), node.args[1]
            if isinstance(attr, ast.Constant) and isinstance(attr.value, str) and target:
                path = f"{target}.{attr.value}"
                if _is_reference(path, allowed):
                    add(node, "reference", path, f"uses the reference {_shown(path)} through getattr")
                if attr.value in _DUNDERS:
                    add(node, "review", attr.value, f"getattr reaches into {attr.value}")
            elif not isinstance(attr, ast.Constant):
                add(node, "review", "getattr", "getattr with a computed attribute name")
    return sorted(out, key=lambda f: (f.line, f.name))


ADDED = "added cell"   # the cell id of a finding in a cell the student added (no grading metadata)


def _given(meta: dict) -> bool:
    """The course's own setup code: locked, neither an answer nor a test (nbgrader restores its source)."""
    return bool(meta.get("locked")) and not meta.get("solution") and not meta.get("grade")


def analyse_notebook(cells: list[dict], answer_ids: set[str], allowed: Iterable[str] = ()) -> list[Finding]:
    """Findings in the answer cells and the student's own added cells, given as nbformat cell dicts in order.

    Every code cell's imports are followed (a given cell's ``import zoolib`` makes
    ``zoolib.models...`` resolvable in an answer below it). Answer cells and cells the student
    added are judged (an added cell's findings carry the cell id ``"added cell N"``); whatever the
    course's locked setup cells import is allowed. Test cells are the instructor's and not read.
    """
    aliases: dict[str, str] = {}
    allowed = set(allowed)
    findings: list[Finding] = []
    added = 0
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        gid = meta.get("grade_id", "")
        if meta.get("grade") and not meta.get("solution"):
            continue  # a test cell: the instructor's code
        if gid not in answer_ids and not _given(meta):
            added += 1
            gid = f"{ADDED} {added}"
            answer_ids = answer_ids | {gid}
        # IPython magics and shell escapes are not Python: blank them (they are flagged apart)
        lines = []
        for line in source.splitlines():
            stripped = line.lstrip()
            if stripped.startswith(("%", "!")):
                if gid in answer_ids:
                    findings.append(Finding(gid, len(lines) + 1, "review", stripped.split()[0],
                                            f"an IPython magic or shell escape: {stripped[:60]}"))
                lines.append("")
            else:
                lines.append(line)
        text = "\n".join(lines)
        if gid in answer_ids:
            findings += analyse(text, gid, aliases, allowed)
        else:  # given code: what it imports is the assignment's own toolbox
            before = set(aliases.items())
            try:
                _imports(ast.parse(text), aliases)
            except SyntaxError:
                pass
            # a given cell's import of a reference object (a shared building block) allows it;
            # its `import zoolib` allows nothing, since "zoolib" itself is no reference path
            allowed |= {path for _, path in set(aliases.items()) - before if _is_reference(path, set())}
    return findings


def allowed_reuse(assignment: str) -> dict[str, list[str]]:
    """Per answer cell, the reference code it may use: ``reuse=`` in the assignment's source file.

    Read from ``autograder/assignments/<assignment>.py``, on the instructor's side: a
    submission's own cell metadata can say nothing about it.
    """
    from .sources import ASSIGNMENTS, parse

    path = ASSIGNMENTS / f"{assignment}.py"
    if not path.is_file():
        return {}
    return {c["opts"]["id"]: [p for p in c["opts"].get("reuse", "").split(",") if p]
            for c in parse(path.read_text(), str(path)) if c["kind"] == "solution"}


def review_submission(notebook: dict, assignment: str, answer_ids: set[str]) -> list[Finding]:
    """The findings for one submitted notebook (nbformat JSON as a dict), with the assignment's allowances."""
    allow = allowed_reuse(assignment)
    findings = []
    for f in analyse_notebook(notebook.get("cells", []), answer_ids):
        if f.kind == "reference" and any(f.name == a or f.name.startswith(a + ".") for a in allow.get(f.cell, [])):
            continue
        findings.append(f)
    return findings


# ---------------------------------------------------------------------------------------------------
# In nbgrader's autograde pipeline

try:
    from nbgrader.preprocessors import NbGraderPreprocessor as _Base
except ImportError:  # pragma: no cover - nbgrader is part of the grading extra
    _Base = object


class JudgeReuse(_Base):
    """After execution, before SaveAutoGrades: an answer that reuses reference code fails its tests.

    Runs in the grader's process on the submitted source (see the module docstring). The test
    cells that follow a flagged answer, up to the next answer cell, get an error output naming
    what was reused, so nbgrader scores them zero. Findings of kind "review" change no score:
    they go into the notebook's metadata (``zoograde.review``) for ``zoo-grade report``.
    """

    def preprocess(self, nb, resources):
        from nbformat.v4 import new_output

        assignment = (resources.get("nbgrader") or {}).get("assignment", "")
        answers = {c.metadata.nbgrader.grade_id for c in nb.cells
                   if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
        findings = review_submission(nb, assignment, answers)
        reused: dict[str, list[Finding]] = {}
        for f in findings:
            if f.kind == "reference":
                reused.setdefault(f.cell, []).append(f)
        current, added, since = None, 0, []   # an added cell's reuse counts against every test after it
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type != "code":
                continue
            if meta.get("solution"):
                current = meta.get("grade_id")
            elif meta.get("grade"):
                if current in reused:
                    first, where = reused[current][0], f"the answer in '{current}'"
                elif since:
                    first, where = since[0], f"a cell you added ({since[0].cell})"
                else:
                    continue
                message = (f"{where} reuses the course's reference code (line {first.line}: "
                           f"{first.text}), so this test earns no points: the exercise is to write the block "
                           f"yourself.")
                cell.outputs = list(cell.get("outputs", [])) + [
                    new_output("error", ename="ReferenceReused", evalue=message, traceback=[f"ReferenceReused: {message}"])]
            elif not _given(meta):
                added += 1
                since += reused.get(f"{ADDED} {added}", [])
        nb.metadata.setdefault("zoograde", {})["review"] = [f.as_dict() for f in findings if f.kind == "review"]
        return nb, resources
