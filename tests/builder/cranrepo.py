"""A local CRAN-like repository served over HTTP for the R tests: tiny source packages the tests build
(deterministic tar.gz; pure R, and one with C code), a ``src/contrib/PACKAGES`` index and ``Archive/`` for
old versions."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def source_package(name: str, version: str, *, depends: str = "", imports: str = "", value: str = "42",
                   compiled: bool = False) -> bytes:
    """A source package tarball, byte-stable: pure R (``R CMD INSTALL`` needs no compiler for it), or
    with ``compiled`` a C routine too (``<name>_twice(x)`` doubles a numeric vector in C)."""
    desc = (f"Package: {name}\nVersion: {version}\nTitle: Tiny Test Package\nDescription: For Reprolab's R tests.\n"
            "Authors@R: person('Reprolab', 'Tests', email = 't@example.org', role = c('aut', 'cre'))\n"
            f"License: MIT\nEncoding: UTF-8\nNeedsCompilation: {'yes' if compiled else 'no'}\n")
    if depends:
        desc += f"Depends: {depends}\n"
    if imports:
        desc += f"Imports: {imports}\n"
    files = {f"{name}/DESCRIPTION": desc, f"{name}/NAMESPACE": f"export({name}_value)\n",
             f"{name}/R/value.R": f"{name}_value <- function() {value}\n"}
    if compiled:
        files[f"{name}/NAMESPACE"] += f"export({name}_twice)\nuseDynLib({name}, .registration = TRUE)\n"
        files[f"{name}/R/twice.R"] = f"{name}_twice <- function(x) .Call(C_twice, as.numeric(x))\n"
        files[f"{name}/src/twice.c"] = (
            "#include <R.h>\n#include <Rinternals.h>\n#include <R_ext/Rdynload.h>\n"
            "static SEXP twice(SEXP x) {\n  SEXP r = PROTECT(duplicate(x));\n"
            "  for (R_xlen_t i = 0; i < XLENGTH(r); i++) REAL(r)[i] *= 2;\n  UNPROTECT(1);\n  return r;\n}\n"
            "static const R_CallMethodDef calls[] = {{\"C_twice\", (DL_FUNC) &twice, 1}, {NULL, NULL, 0}};\n"
            f"void R_init_{name}(DllInfo *dll) {{\n  R_registerRoutines(dll, NULL, calls, NULL, NULL);\n"
            "  R_useDynamicSymbols(dll, FALSE);\n}\n")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), 1700000000, 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


# name → versions (last is current); each version's (depends, imports)
PACKAGES: dict[str, list[tuple[str, str, str]]] = {
    "tinyc": [("1.0.0", "", ""), ("1.1.0", "", "")],
    "tinyb": [("0.2", "R (>= 3.5.0), tinyc (>= 1.0.0)", "")],
    "tinya": [("2.0-1", "", "tinyb, utils, stats")],
    "tinyneedsnew": [("1.0", "", "tinyc (>= 9.0)")],
    "tinymass": [("1.0", "MASS", "")],
    "tinycc": [("0.1", "", "")],
}
COMPILED = {"tinycc"}  # packages with C code (NeedsCompilation: yes)


def build_repository(root: Path) -> Path:
    contrib = root / "src" / "contrib"
    contrib.mkdir(parents=True)
    stanzas = []
    for name, versions in sorted(PACKAGES.items()):
        for i, (version, depends, imports) in enumerate(versions):
            data = source_package(name, version, depends=depends, imports=imports, value=f"'{version}'",
                                  compiled=name in COMPILED)
            current = i == len(versions) - 1
            where = contrib if current else contrib / "Archive" / name
            where.mkdir(parents=True, exist_ok=True)
            (where / f"{name}_{version}.tar.gz").write_bytes(data)
            if current:
                stanza = f"Package: {name}\nVersion: {version}\n"
                stanza += f"Depends: {depends}\n" if depends else ""
                stanza += f"Imports: {imports}\n" if imports else ""
                stanza += f"License: MIT\nMD5sum: {hashlib.md5(data).hexdigest()}\n"  # noqa: S324
                stanza += f"NeedsCompilation: {'yes' if name in COMPILED else 'no'}\n"
                stanzas.append(stanza)
    (contrib / "PACKAGES").write_text("\n".join(stanzas))
    return root


class CranServer:
    """The repository over HTTP on a free loopback port (a thread, started and stopped by the fixture)."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(_Quiet, directory=str(root))
        self.root = root
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CranServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass
