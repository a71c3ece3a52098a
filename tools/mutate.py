"""Mutation testing for chatproviders: do the tests fail when the code is wrong?

Each mutant changes one thing in one module (a comparison, an operator, a
constant, a removed call, ...); the module's tests are run against it in a
copy of the tree, so the working tree is never touched, even on Ctrl-C. A
mutant the tests fail on (or hang on, "killed (timeout)") is killed; one they
pass is a survivor: a test is missing, or the mutant is equivalent, which
``tools/mutate.cfg`` then says with a reason.

    python tools/mutate.py                      # every module in mutate.cfg
    python tools/mutate.py chatproviders/_wire/retry.py --sample 40 --seed 1 -j 2

The result depends only on the code, the tests and ``--seed``.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
IGNORE = [".git", ".venv", "venv", ".tox", "__pycache__", "*.egg-info", "build",
          "dist", ".*_cache"]  # fmt: skip
#: Each operator and what it becomes: comparisons, arithmetic, and/or.
PAIRS = [(ast.Lt, ast.LtE), (ast.Gt, ast.GtE), (ast.Eq, ast.NotEq), (ast.Add, ast.Sub)]
PAIRS += [
    (ast.Is, ast.IsNot),
    (ast.In, ast.NotIn),
    (ast.Mult, ast.Div),
    (ast.And, ast.Or),
]
SWAPS: dict[type, type] = {**dict(PAIRS), **{b: a for a, b in PAIRS}}
SWAPS.update({ast.FloorDiv: ast.Div, ast.Mod: ast.Mult, ast.Pow: ast.Mult})
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
#: Log lines are not behaviour this run pins: calls to these are left alone.
LOG_CALLS = ("logger.", "logging.")


@dataclass(frozen=True)
class Mutant:
    path: str  # relative to the tree
    index: int  # the node's place in walk order
    operator: str
    variant: int
    line: int
    scope: str  # enclosing function or class, dotted
    original: str
    mutated: str

    @property
    def key(self) -> str:
        """How mutate.cfg names it: stable while the code around it moves."""
        return f"{self.scope}: {self.operator}: {self.original} -> {self.mutated}"


def _short(node: ast.AST) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= 70 else text[:67] + "..."


def _walk(tree: ast.Module) -> Iterator[tuple[ast.AST, ast.AST, str, int, str]]:
    """(node, parent, field, position in list or -1, scope) in a fixed order,
    leaving out docstrings, annotations, log calls, ``__all__``, ``TYPE_CHECKING``.
    """

    def visit(
        node: ast.AST, scope: str
    ) -> Iterator[tuple[ast.AST, ast.AST, str, int, str]]:
        if isinstance(node, (*FUNCTIONS, ast.ClassDef)):
            scope = f"{scope}.{node.name}" if scope else node.name
        for name, value in ast.iter_fields(node):
            if name in ("annotation", "returns", "type_comment", "decorator_list"):
                continue
            items = value if isinstance(value, list) else [value]
            for pos, child in enumerate(items):
                if not isinstance(child, ast.AST) or _skipped(node, name, pos, child):
                    continue
                yield child, node, name, pos if isinstance(value, list) else -1, scope
                yield from visit(child, scope)

    yield from visit(tree, "")


def _skipped(parent: ast.AST, field: str, pos: int, child: ast.AST) -> bool:
    if field == "body" and pos == 0 and isinstance(child, ast.Expr):
        is_doc = isinstance(child.value, ast.Constant) and isinstance(
            child.value.value, str
        )
        if is_doc and isinstance(parent, (ast.Module, ast.ClassDef, *FUNCTIONS)):
            return True
    if isinstance(child, (ast.Import, ast.ImportFrom, ast.JoinedStr)):
        return True
    call = child.value if isinstance(child, ast.Expr) else child
    if isinstance(call, ast.Call) and ast.unparse(call.func).startswith(LOG_CALLS):
        return True
    if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
        return True
    if isinstance(child, (ast.Assign, ast.AnnAssign)):
        targets = child.targets if isinstance(child, ast.Assign) else [child.target]
        return any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)
    return False


def _variants(
    node: ast.AST, parent: ast.AST, field: str
) -> list[tuple[str, ast.AST, ast.AST]]:
    """(operator, original, mutated) for each way to mutate ``node``; the
    mutated value is a fresh node that replaces it, or ``node`` changed in place
    is described by the copy.
    """
    out: list[tuple[str, ast.AST, ast.AST]] = []

    def copy() -> ast.AST:
        if isinstance(node, ast.stmt):
            return ast.parse(ast.unparse(node)).body[0]
        return ast.parse(ast.unparse(node), mode="eval").body

    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in SWAPS:
                new = copy()
                new.ops[i] = SWAPS[type(op)]()  # type: ignore[attr-defined]
                out.append(("compare", node, new))
    elif (
        isinstance(node, (ast.BinOp, ast.AugAssign, ast.BoolOp))
        and type(node.op) in SWAPS
    ):
        new = copy()
        new.op = SWAPS[type(node.op)]()  # type: ignore[attr-defined]
        name = "boolean" if isinstance(node, ast.BoolOp) else "arithmetic"
        out.append((name, node, new))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        out.append(("not-removed", node, node.operand))
    elif isinstance(node, ast.Constant) and not isinstance(parent, ast.JoinedStr):
        value = node.value
        if isinstance(value, bool):
            out.append(("constant", node, ast.Constant(not value)))
        elif isinstance(value, (int, float)):
            out.append(("constant", node, ast.Constant(value + 1)))
            if value != 0:
                out.append(("constant", node, ast.Constant(type(value)(0))))
        elif isinstance(value, (str, bytes)) and value:
            out.append(("constant", node, ast.Constant(type(value)())))
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        out.append(("call-removed", node, ast.Pass()))
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            out.append(("return-none", node, ast.Return(ast.Constant(None))))
    elif isinstance(node, (ast.Break, ast.Continue)):
        other = ast.Continue() if isinstance(node, ast.Break) else ast.Break()
        out.append(("break-continue", node, other))
    elif isinstance(node, ast.ExceptHandler) and node.type is not None:
        nothing = ast.Tuple([], ast.Load())  # ``except ():`` catches nothing
        out.append(
            ("except-nothing", node, ast.ExceptHandler(nothing, node.name, node.body))
        )
    return out


def _describe(operator: str, original: ast.AST, mutated: ast.AST) -> tuple[str, str]:
    if isinstance(original, ast.ExceptHandler):
        return f"except {_short(original.type)}", "except ()"  # type: ignore[arg-type]
    return _short(original), _short(mutated)


def mutants(path: str) -> list[Mutant]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    found = []
    for index, (node, parent, field, _, scope) in enumerate(_walk(tree)):
        for variant, (op, original, new) in enumerate(_variants(node, parent, field)):
            before, after = _describe(op, original, new)
            line = getattr(node, "lineno", 0)
            found.append(
                Mutant(
                    path, index, op, variant, line, scope or "<module>", before, after
                )
            )
    return found


def mutated_source(source: str, mutant: Mutant) -> str:
    tree = ast.parse(source)
    for index, (node, parent, field, pos, _) in enumerate(_walk(tree)):
        if index == mutant.index:
            new = _variants(node, parent, field)[mutant.variant][2]
            if pos >= 0:
                getattr(parent, field)[pos] = new
            else:
                setattr(parent, field, new)
            return ast.unparse(ast.fix_missing_locations(tree))
    raise LookupError(f"no node {mutant.index} in {mutant.path}: the file changed")


class Runner:
    """Runs the tests in private copies of the tree, one per worker."""

    def __init__(self, jobs: int, tests: dict[str, list[str]]) -> None:
        self.tests = tests
        self._tmp = tempfile.TemporaryDirectory(prefix="mutate-")
        self.copies: Queue[Path] = Queue()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        for n in range(jobs):
            dest = Path(self._tmp.name) / f"tree{n}"
            shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*IGNORE))
            self.copies.put(dest)
        # The copy must shadow any installed chatproviders, or no mutant runs.
        code = "import chatproviders; print(chatproviders.__file__)"
        where = subprocess.run(
            [sys.executable, "-c", code], cwd=dest, check=True, text=True,
            env={**os.environ, "PYTHONPATH": str(dest)}, capture_output=True,
        ).stdout.strip()  # fmt: skip
        if not Path(where).is_relative_to(dest):
            raise RuntimeError(f"the tests would import {where}, not the copy")

    def close(self) -> None:
        with self._lock:
            for proc in self._procs:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
        self._tmp.cleanup()

    def judge(self, path: str, source: str, timeout: float) -> str:
        """``run``, giving a timeout a second chance with a longer limit: a
        machine busy with other work makes slow tests, not a killed mutant.
        """
        outcome, _ = self.run(path, source, timeout)
        if outcome == "timeout":
            outcome, _ = self.run(path, source, 4 * timeout)
        return outcome

    def run(
        self, path: str, source: Optional[str], timeout: float
    ) -> tuple[str, float]:
        """'passed', 'failed' or 'timeout' of ``path``'s tests with ``source`` in it."""
        tree = self.copies.get()
        target = tree / path
        original = target.read_bytes()
        try:
            if source is not None:
                target.write_text(source, encoding="utf-8")
            env = {**os.environ, "PYTHONPATH": str(tree)}
            env["PYTHONDONTWRITEBYTECODE"] = "1"  # a stale .pyc would hide a mutant
            cmd = [sys.executable, "-m", "pytest", "-x", "-q", "--no-header"]
            cmd += self.tests[path]
            began = time.monotonic()
            proc = subprocess.Popen(
                cmd,
                cwd=tree,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            with self._lock:
                self._procs.add(proc)
            try:
                code = proc.wait(timeout)
                outcome = "passed" if code == 0 else "failed"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                outcome = "timeout"
            finally:
                with self._lock:
                    self._procs.discard(proc)
            return outcome, time.monotonic() - began
        finally:
            target.write_bytes(original)
            self.copies.put(tree)


def load_config(
    path: Path,
) -> tuple[dict[str, list[str]], dict[str, dict[str, str]], float]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    tests, equivalent = {}, {}
    for section in parser.sections():
        if section.startswith("module "):
            module = section[len("module ") :].strip()
            tests[module] = parser[section]["tests"].split()
            equivalent[module] = {}
            for line in parser[section].get("equivalent", "").splitlines():
                if line.strip():
                    key, _, reason = line.rpartition(" ## ")
                    equivalent[module][key.strip()] = reason.strip()
    return tests, equivalent, parser.getfloat("mutate", "min_score", fallback=90.0)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "modules", nargs="*", help="paths as in mutate.cfg; default all"
    )
    parser.add_argument("--config", type=Path, default=ROOT / "tools" / "mutate.cfg")
    parser.add_argument("--sample", type=int, default=0, help="N mutants per module")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-j", "--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--timeout", type=float, default=0, help="seconds per mutant")
    parser.add_argument("--list", action="store_true", help="list the mutants only")
    args = parser.parse_args(argv)
    tests, equivalent, min_score = load_config(args.config)
    modules = args.modules or sorted(tests)
    unknown = [m for m in modules if m not in tests]
    if unknown:
        parser.error(f"not in {args.config}: {', '.join(unknown)}")
    missing = [m for m in modules if not (ROOT / m).is_file()]
    if missing:  # a module moved: its section in the config must follow it
        parser.error(f"no such file, named in {args.config}: {', '.join(missing)}")
    chosen: dict[str, list[Mutant]] = {}
    for module in modules:
        found = mutants(module)
        if args.sample and args.sample < len(found):
            rng = random.Random(f"{args.seed}:{module}")
            found = sorted(
                rng.sample(found, args.sample), key=lambda m: (m.index, m.variant)
            )
        chosen[module] = found
    if args.list:
        for found in chosen.values():
            for m in found:
                print(f"{m.path}:{m.line}: {m.key}")
        return 0
    signal.signal(signal.SIGTERM, _interrupt)  # tox and CI stop runs with it
    signal.signal(signal.SIGINT, _interrupt)  # even where the shell ignored it
    runner = Runner(args.jobs, tests)
    pool = ThreadPoolExecutor(args.jobs)
    failing = False
    try:
        for module, found in chosen.items():
            source = (ROOT / module).read_text(encoding="utf-8")
            # Unparsed but not mutated: what fails from here on is the mutation.
            outcome, took = runner.run(module, ast.unparse(ast.parse(source)), 600)
            if outcome != "passed":
                print(f"{module}: its tests fail unmutated", file=sys.stderr)
                return 2
            limit = args.timeout or max(10.0, 3 * took)
            jobs = {
                m: pool.submit(runner.judge, module, mutated_source(source, m), limit)
                for m in found
            }
            results = {m: _result(job) for m, job in jobs.items()}
            failing |= report(module, results, equivalent[module], min_score)
    except KeyboardInterrupt:
        print("interrupted; the working tree was never changed", file=sys.stderr)
        return 130
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        runner.close()  # kills the tests still running
    return 1 if failing else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _result(job: Future[str]) -> str:
    """``job.result()`` in short waits: a signal is handled only between them."""
    while True:
        with contextlib.suppress(FuturesTimeout):
            return job.result(timeout=0.2)


def report(
    module: str, results: dict[Mutant, str], known: dict[str, str], bar: float
) -> bool:
    """Print the module's score and survivors; True when it is under ``bar``."""
    survivors = [m for m, r in results.items() if r == "passed"]
    explained = [m for m in survivors if m.key in known]
    timeouts = sum(r == "timeout" for r in results.values())
    counted = len(results) - len(explained)
    killed = len(results) - len(survivors)
    score = 100.0 * killed / counted if counted else 100.0
    raw = 100.0 * killed / len(results) if results else 100.0
    print(
        f"{module}: {killed}/{len(results)} killed ({raw:.1f}%, "
        f"{timeouts} by timeout); "
        f"{len(explained)} equivalent; score {score:.1f}%"
    )
    for m in survivors:
        mark = "equivalent" if m in explained else "SURVIVED"
        print(f"  {mark} {m.path}:{m.line}: {m.key}")
    stale = sorted(set(known) - {m.key for m in results})
    if stale and len(results) == len(mutants(module)):
        print(f"  (in mutate.cfg but no longer a mutant: {stale})")
    return score < bar


if __name__ == "__main__":
    sys.exit(main())
