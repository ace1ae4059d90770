"""One nox session per check. ``nox`` alone runs lint, typecheck and tests.

Arguments after ``--`` go on: ``nox -s tests -- -k stream`` passes ``-k stream`` to pytest,
``nox -s bench -- --quick`` passes ``--quick`` to every benchmark script. ``nox -s anyio`` is the
separate anyio-on-trio run; ``nox -s soak`` runs the long tests marked ``soak``.
"""

from __future__ import annotations

import glob
import os

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
LINT_PATHS = ["gemini_ws", "tests", "benchmarks", "noxfile.py"]
HERE = os.path.dirname(os.path.abspath(__file__))


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The main test suite (pytest-trio, trio mode, ``-p no:anyio``)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the package, the tests, the benchmarks and this file."""
    session.install("ruff>=0.6")
    paths = [p for p in LINT_PATHS if os.path.exists(os.path.join(HERE, p))]
    session.run("ruff", "check", *paths, *session.posargs)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict; the files and settings live in pyproject.toml."""
    session.install("-e", ".[test]", "mypy>=1.10")
    session.run("mypy", "--strict", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs, nitpicky; every warning (unresolved references too) is an error."""
    session.install("-e", ".[docs]")
    session.run(
        "sphinx-build",
        "-n",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run every ``benchmarks/bench_*.py`` script; ``-- --quick`` passes ``--quick`` on."""
    scripts = sorted(glob.glob(os.path.join(HERE, "benchmarks", "bench_*.py")))
    if not scripts:
        session.error("no benchmarks/bench_*.py scripts found")
    session.install("-e", ".[test]")
    for script in scripts:
        session.log(f"--- {os.path.relpath(script, HERE)}")
        session.run("python", script, *session.posargs)
    if "--quick" not in session.posargs:
        # the chart in the docs, from the full runs' results (needs matplotlib, not a
        # dependency of the package: it is installed in this session's environment only)
        session.install("matplotlib")
        session.run("python", os.path.join(HERE, "benchmarks", "chart.py"))


@nox.session(python=PYTHON)
def anyio(session: nox.Session) -> None:
    """The anyio-on-trio run: the anyio pytest plugin drives ``tests/test_anyio*.py``.

    The main run uses ``-p no:anyio`` (pyproject addopts) and trio mode, where pytest-trio
    would take over every async test. Here addopts is cleared and trio mode switched off, so
    the tests really run through anyio's runner (on its trio backend).
    """
    files = sorted(glob.glob(os.path.join("tests", "test_anyio*.py")))
    if not files:
        session.error("no tests/test_anyio*.py files found")
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "-p",
        "anyio",
        "-o",
        "addopts=",
        "-o",
        "trio_mode=false",
        "--strict-markers",
        "-ra",
        *files,
        *session.posargs,
    )


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """Long-running tests marked ``soak``. Skipped (not passed) while none are marked."""
    session.install("-e", ".[test]")
    listing = session.run(
        "python",
        "-m",
        "pytest",
        "-m",
        "soak",
        "--collect-only",
        "-q",
        *session.posargs,
        silent=True,
        success_codes=[0, 5],
    )
    if "no tests collected" in str(listing):
        session.skip("no tests are marked 'soak' yet: nothing to run")
    session.run("python", "-m", "pytest", "-m", "soak", *session.posargs)


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Coverage-guided fuzzing of frame decoding with atheris (optional; not part of CI).

    ``nox -s fuzz`` runs 200,000 inputs; pass libFuzzer flags after ``--``
    (e.g. ``nox -s fuzz -- -max_total_time=600``).
    """
    session.install("-e", ".", "atheris")
    args = session.posargs or ["-runs=200000"]
    session.run("python", os.path.join("tests", "fuzz", "atheris_decode.py"), *args)
