"""The README's promises are run: its Python example, its command lines, the numbers it quotes.

- "Python": the fenced ``python`` block is executed; every ``print(...)  # v1 v2 ...`` line's
  output is compared with the quoted values (floats to the precision quoted, the rest exactly).
- "Command line": every example command (indented ``kd-replica ...`` lines) is parsed with its
  optional ``[...]`` parts left out and put in; the quick ones are run (exit code 0, outputs
  written); the thresholds it quotes are recomputed.
- "Quick start" and "Command line": every timing quoted names the benchmark that measured it.
"""

import contextlib
import io
import json
import re
import shlex
from pathlib import Path

import pytest

from replica.cli import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"


def section(title: str) -> str:
    """Text of the ``## title...`` section (up to the next ``## `` heading)."""
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def matches_quoted(quoted: str, actual: str) -> bool:
    """``actual`` rounds to ``quoted`` (floats: to the quoted number of decimals)."""
    if re.fullmatch(r"[-+]?\d*\.\d+(e[-+]?\d+)?", quoted):
        decimals = len(quoted.split(".")[1].split("e")[0])
        scale = 10.0 ** int(quoted.split("e")[1]) if "e" in quoted else 1.0
        return abs(float(actual) - float(quoted)) <= 0.5 * 10.0**-decimals * scale + 1e-12
    return actual == quoted


def test_matches_quoted_rounds_like_the_readme():
    assert matches_quoted("0.1546", "0.15457399") and not matches_quoted("0.1546", "0.15452")
    assert matches_quoted("-1.60", "-1.5951") and matches_quoted("13", "13")
    assert not matches_quoted("12", "13") and not matches_quoted("True", "False")


def python_example() -> tuple[str, list[list[str]]]:
    block = re.search(r"```python\n(.*?)```", section("Python"), re.S)
    assert block, "README's Python section has no python block"
    code = block.group(1)
    quoted = [line.split("#", 1)[1].split() for line in code.splitlines()
              if line.startswith("print(") and "#" in line]  # fmt: skip
    return code, quoted


@pytest.mark.slow
def test_python_example_runs_and_prints_the_quoted_numbers():
    code, quoted = python_example()
    assert len(quoted) >= 2
    out = io.StringIO()
    # one BLAS thread, as the command line uses: the numbers do not depend on it, the time
    # does (threaded BLAS on these small matrices is several times slower on a busy machine)
    from threadpoolctl import threadpool_limits

    with contextlib.redirect_stdout(out), threadpool_limits(limits=1):
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    printed = [line.split() for line in out.getvalue().splitlines()]
    assert len(printed) == len(quoted)
    for expected, actual in zip(quoted, printed, strict=True):
        assert len(expected) == len(actual), (expected, actual)
        for e, a in zip(expected, actual, strict=True):
            assert matches_quoted(e, a), f"README quotes {e}, the example prints {a}"


def example_commands() -> list[str]:
    """The example command lines of "Command line" (continuation lines joined)."""
    text = section("Command line").replace("\\\n", " ")
    return [re.sub(r"\s+", " ", line.strip()) for line in text.splitlines()
            if line.startswith("    kd-replica ")]  # fmt: skip


def variants(command: str, out: Path) -> tuple[list[str], list[str]]:
    """``(without the optional [...] parts, with them)`` as argv lists, DIR -> ``out``."""
    command = command.replace("DIR", str(out))
    minimal = re.sub(r"\[[^\]]*\]", " ", command)

    def put_in(match):  # the first alternative of a|b
        return re.sub(r"(\S+)\|\S+", r"\1", match.group(0)[1:-1])

    maximal = re.sub(r"\[[^\]]*\]", put_in, command)
    return shlex.split(minimal)[1:], shlex.split(maximal)[1:]


def test_every_example_command_parses(tmp_path):
    commands = example_commands()
    assert len(commands) >= 10
    for command in commands:
        for argv in variants(command, tmp_path / "out"):
            build_parser().parse_args(argv)  # exits 2 on an unknown or invalid option


QUICK_COMMANDS = ("teacher", "student", "thresholds", "curve teacher")


@pytest.mark.parametrize("which", QUICK_COMMANDS)
def test_quick_example_commands_run(which, tmp_path, capsys):
    ran = 0
    for command in example_commands():
        if not command.startswith(f"kd-replica {which} "):
            continue
        for argv in variants(command, tmp_path / f"out{ran}"):
            if "--check" in argv:  # the linear-programming check takes minutes
                argv.remove("--check")
            argv += ["--quiet"] if argv[0] in ("curve", "thresholds") else []
            assert main(argv) == 0, capsys.readouterr().err
            ran += 1
        if which == "curve teacher":
            assert (tmp_path / "out0" / "curve.csv").exists()
            assert (tmp_path / "out0" / "curve.png").exists()
    assert ran >= 2


def test_quoted_thresholds():
    text = section("Command line")
    quoted = re.search(r"`rho = 0\.2, delta = 1, eta = 0\.5`: ([\d.]+), ([\d.]+), ([\d.]+)", text)
    assert quoted, "the thresholds at rho = 0.2 are no longer quoted as expected"
    at_half = re.search(r"at\s+`rho = 0\.5`: ([\d.]+) and ([\d.]+)", text)
    assert at_half
    for rho, values in ((0.2, quoted.groups()), (0.5, ("0.5", *at_half.groups()))):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["thresholds", "--rho", str(rho), "--json"]) == 0
        data = json.loads(out.getvalue())
        for key, value in zip(("alpha_I", "alpha_S", "alpha_S_teacher"), values, strict=True):
            assert matches_quoted(value, f"{data[key]:.10f}"), (rho, key, value, data[key])


# "takes 20 s", "about 15 s", "~20 s", "31 s wall" (a timeout, "within 5 s", is no claim)
DURATION_CLAIM = re.compile(r"(\b(about|takes?|took|in|under)\s+|~)\d+(\.\d+)?\s*(s|min)\b"
                            r"|\d\s*s\s+(wall|CPU)")


def test_duration_claims_are_recognised():
    for claim in ("about 15 s on 2 cores", "compiles (~20 s)", "took 31 s", "31 s wall"):
        assert DURATION_CLAIM.search(claim), claim
    assert not DURATION_CLAIM.search("does not answer within 5 s")


def test_quoted_timings_name_their_benchmark():
    for title in ("Quick start", "Command line"):
        for paragraph in re.split(r"\n\s*\n", section(title)):
            if DURATION_CLAIM.search(paragraph):
                assert "benchmarks/" in paragraph, f"an unmeasured timing in {title}: " \
                                                   f"{paragraph[:80]!r}"
