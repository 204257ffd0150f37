#!/usr/bin/env python3
"""Fails when the library prints or reads the environment (host/README.md "The library never prints").

    tools/check_quiet.py [SRC]        (SRC: the source root; default: this script's ../)

Every host/<layer>/*.c and *.h except host/cli/ (the CLI prints and reads the environment) and
host/data/stb_image.c (upstream code): comments and string literals are blanked, then these are errors:
  - reading or changing the environment: getenv, secure_getenv, setenv, unsetenv, putenv, environ
  - printing: printf, vprintf, puts, putchar, perror, and any use of stdout or stderr
    (fprintf(stderr, ...), fputs(..., stdout), fflush(stdout), ...); isatty (the CLI decides how
    progress is drawn: gf_ctx_options.progress_live)
Writing to a FILE * the caller gives (gf_dataset_report, gf_job_print_table, bench tables) is fine.
Messages go through gf_log (gf_ctx_options.log), progress lines through gf_progress
(gf_ctx_options.progress); settings come in gf_ctx_options.
Exit 0 when clean; 1 with one line per use. Python 3 standard library only; run by ctest as
`check_quiet`.
"""
import os
import re
import sys

LAYERS = ["runtime", "ops", "data", "graph", "method", "pretrain", "report"]   # host/cli/ may print
SKIP = {"data/stb_image.c"}                                                    # upstream code
# (file relative to host/, token) -> why it is allowed
ALLOWED = {
    ("runtime/gemm.c", "stdout"): "points fd 1 at stderr around CLBlast calls (CLBlast prints build logs to stdout)",
    ("report/report.c", "stdout"): "writes the report page to stdout when the caller asks for '-'",
    ("runtime/gemm.c", "getenv"): "OpenBLAS's own OPENBLAS_CORETYPE, left alone when set (choose_blas_kernels_once)",
    ("runtime/gemm.c", "setenv"): "OPENBLAS_CORETYPE is how gotoblas_dynamic_init takes a kernel set (choose_blas_kernels_once)",
    ("runtime/gemm.c", "unsetenv"): "... and it is unset again right after (choose_blas_kernels_once)",
}
TOKEN_RE = re.compile(r"\b(getenv|secure_getenv|setenv|unsetenv|putenv|environ|printf|vprintf|puts|putchar|perror|"
                      r"stdout|stderr|isatty)\b")
# comments, string and character literals (kept: their newlines)
BLANK_RE = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def main():
    src = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    host = os.path.join(src, "host")
    errors, n_files, used = [], 0, set()
    for layer in LAYERS:
        d = os.path.join(host, layer)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            rel = f"{layer}/{name}"
            if not name.endswith((".c", ".h")) or rel in SKIP:
                continue
            n_files += 1
            with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
                text = BLANK_RE.sub(lambda m: "\n" * m.group(0).count("\n"), f.read())
            for lineno, line in enumerate(text.split("\n"), 1):
                for m in TOKEN_RE.finditer(line):
                    tok = m.group(1)
                    if re.search(r"format\s*\(\s*$", line[:m.start()]):   # __attribute__((format(printf, ...)))
                        continue
                    if (rel, tok) in ALLOWED:
                        used.add((rel, tok))
                        continue
                    errors.append(f"host/{rel}:{lineno}: {tok}: the library never prints or reads the environment "
                                  "(gf_log / gf_progress / gf_ctx_options; host/cli/ prints)")
    for key in sorted(set(ALLOWED) - used):
        errors.append(f"host/{key[0]}: allowed use of {key[1]} no longer there: drop it from ALLOWED")
    for e in errors:
        print(f"check_quiet: {e}", file=sys.stderr)
    if errors:
        print(f"check_quiet: FAILED, {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_quiet: ok, {n_files} library files, {len(used)} allowed uses")
    return 0


if __name__ == "__main__":
    sys.exit(main())
