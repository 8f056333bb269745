"""A notebook run: the .ipynb executed top to bottom inside the run's own image, papermill-style, its
executed copy (every cell's output, the failing cell's traceback) written among the run's outputs.

The executor is standard-library Python handed to the image's ``python3 -c``, so any built environment
can run a notebook without Jupyter in it and on every target (local, Kubernetes, clouds) alike: cells
share one namespace, a cell's last expression is shown as its result, stdout/stderr are kept per cell.
What needs a real Jupyter kernel (IPython magics ``%...``, shell escapes ``!...``, rich display of
widgets) fails the cell with a sentence saying so. The exact executor is part of the run's command, so
its digest is in the provenance like any command.
"""

from __future__ import annotations

import posixpath
import re

from reprolab_common.errors import Invalid

MARK = "reprolab-notebook:"
_PATH = re.compile(r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9._ /+-]{1,300}\.ipynb$")

EXECUTOR = r'''
import ast, json, linecache, os, sys, traceback
src, out = sys.argv[1], sys.argv[2]
MARK = "reprolab-notebook:"
name = os.path.basename(src)
try:
    with open(src, encoding="utf-8") as f:
        nb = json.load(f)
    cells = nb["cells"]
except (OSError, ValueError, KeyError, TypeError) as exc:
    print(f"{MARK} cannot read {src} as a notebook: {exc}", file=sys.stderr)
    sys.exit(2)
os.environ.setdefault("MPLBACKEND", "Agg")
os.chdir(os.path.dirname(os.path.abspath(src)))
sys.path.insert(0, os.getcwd())
ns = {"__name__": "__main__", "__builtins__": __builtins__}

class Tee:
    def __init__(self, real, name, outputs):
        self.real, self.name, self.outputs = real, name, outputs
    def write(self, s):
        self.real.write(s)
        if s:
            last = self.outputs[-1] if self.outputs else {}
            if last.get("output_type") == "stream" and last["name"] == self.name:
                last["text"] += s
            else:
                self.outputs.append({"output_type": "stream", "name": self.name, "text": s})
        return len(s)
    def flush(self):
        self.real.flush()
    def isatty(self):
        return False

def save():
    for cell in cells:
        if cell.get("cell_type") == "code":
            for o in cell.get("outputs", []):
                if o.get("output_type") == "stream":
                    o["text"] = o["text"].splitlines(True)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")

count, failed = 0, None
for cell in cells:
    if cell.get("cell_type") != "code":
        continue
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else str(source)
    cell["outputs"] = []
    if failed is not None:
        cell["execution_count"] = None
        continue
    count += 1
    cell["execution_count"] = count
    fname = f"<cell {count}>"
    linecache.cache[fname] = (len(source), None, source.splitlines(True), fname)
    outputs = cell["outputs"]
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Tee(stdout, "stdout", outputs), Tee(stderr, "stderr", outputs)
    try:
        for number, line in enumerate(source.splitlines(), 1):
            if line.lstrip().startswith(("%", "!")):
                why = (f"line {number} is IPython syntax ({line.strip()[:40]}), which needs a Jupyter kernel; "
                       "write it in Python (e.g. subprocess.run for a shell command)")
                raise SyntaxError(why, (fname, number, 1, line))
        tree = ast.parse(source, fname)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, fname, "exec"), ns)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), fname, "eval"), ns)
            if value is not None:
                outputs.append({"output_type": "execute_result", "execution_count": count, "metadata": {},
                                "data": {"text/plain": repr(value)}})
    except BaseException as exc:
        if isinstance(exc, SystemExit) and not exc.code:
            failed = None
        else:
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None)
            outputs.append({"output_type": "error", "ename": type(exc).__name__, "evalue": str(exc),
                            "traceback": [ln for chunk in tb for ln in chunk.rstrip("\n").split("\n")]})
            failed = (count, exc, tb)
    finally:
        sys.stdout.flush(); sys.stderr.flush()
        sys.stdout, sys.stderr = stdout, stderr
nb.setdefault("nbformat", 4)
nb.setdefault("nbformat_minor", 5)
save()
if failed is not None:
    number, exc, tb = failed
    lineno = next((f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == f"<cell {number}>"),
                  getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None)
    lines = linecache.cache[f"<cell {number}>"][2]
    at = lines[lineno - 1].strip() if lineno and 0 < lineno <= len(lines) else ""
    sys.stderr.write("".join(tb))
    print(f"{MARK} cell {number} of {name} failed" + (f" at line {lineno}: {at}" if at else ""), file=sys.stderr)
    print(f"{MARK} error: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(1)
print(f"{MARK} ran {count} cells of {name}; executed copy: /outputs/{os.path.basename(out)}", file=sys.stderr)
'''.strip() + "\n"


def check_path(path: str) -> str:
    """A notebook path inside the code (relative, no '..', ending .ipynb), else Invalid."""
    if not _PATH.match(path or ""):
        why = "give the notebook's path inside the code, e.g. analysis.ipynb or notebooks/week1.ipynb"
        raise Invalid(f"{path!r} is not a notebook path: {why}", errors=[("source.notebook", why)])
    return posixpath.normpath(path)


def executed_name(path: str) -> str:
    return posixpath.basename(path).removesuffix(".ipynb") + ".executed.ipynb"


def command(path: str) -> list[str]:
    """The run's command for notebook ``path`` (relative to /work)."""
    path = check_path(path)
    return ["python3", "-c", EXECUTOR, f"/work/{path}", f"/outputs/{executed_name(path)}"]
