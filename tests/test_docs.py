"""The documentation cannot drift from the program: every command it shows is run.

- ``console`` blocks of ``docs/`` run here, page by page in a fresh folder holding
  ``docs/examples/``: each ``$ command`` must exit 0 (or the status its ``# exit status N``
  comment names), and each output line the page shows must appear in that order (``…``
  stands for any text; a line of ``…`` alone for any lines);
- ``python`` blocks of a page run in the same folder, in page order;
- ``attnflow-run`` blocks are run by the documentation build (``docs/_ext``);
- ``sh`` blocks (the README's, installation lines) must show only commands run elsewhere: an
  installation that ``.ci/run`` performs, a command of a ``console`` or ``attnflow-run``
  block, or the test runner itself (``RUNNERS``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

# start-reduced
#: Commands the pages show that run here with a smaller budget (same checks of the output).
REDUCED = {
    "python3 benchmarks/bench_gradient.py --threads 1":
        "python3 benchmarks/bench_gradient.py --threads 1 --repeats 1 --warmup 0 --no-torch",
    "python3 benchmarks/bench_attention.py --threads 1":
        "python3 benchmarks/bench_attention.py --threads 1 --repeats 1 --warmup 0 --no-torch",
    "python3 benchmarks/bench_sst.py":
        "python3 benchmarks/bench_sst.py --repeats 1 --warmup 0 --epochs 2 --tasks sst2",
    "python3 benchmarks/bench_campaign.py": "python3 benchmarks/bench_campaign.py --budget 2",
    "python3 benchmarks/bench_conjecture.py": "python3 benchmarks/bench_conjecture.py --rounds 1",
    "python3 benchmarks/bench_replay.py":
        "python3 benchmarks/bench_replay.py --epochs 200 --every 50 --jobs 1",
}
#: Pages run only in the thorough profile, and what covers them in every run of the suite.
SLOW_PAGES = {
    "howto/cluster.md": "starts a Dask scheduler and workers (tests/test_campaign.py runs the "
                        "campaign on a LocalCluster)",
    "reference/performance.md": "runs every benchmark script (each measures, none checks)",
}
# end-reduced
#: JSON files pages write, and the section of docs/reference/json.md that documents them.
JSON_REPORTS = {"howto/check-your-run.md": ("laws.json", "## `attnflow laws --json FILE`"),
                "howto/conjecture.md": ("sen.json", "## Audit certificate"),
                "howto/discover.md": ("discover.json", "## `attnflow discover --json FILE`")}
#: Keys the schemas name by a placeholder (PART, PART_share) or whose keys are data.
PART = re.compile(r"(assumptions|weight_decay|momentum|discretisation|unexplained|"
                  r"first_order_rest)(_share)?")
DATA_KEYS = ("parameters", "skipped", "sizes", "constants", "lower_rank_at")
#: Pages that need the SST files.
SST_PAGES = {"reference/performance.md"}
#: Commands sh blocks may show that the suite cannot run inside itself: the test runner
#: (CI runs it through the README's test command) and the mutation harness, which runs it
#: once per mutant.
RUNNERS = ("python3 -m pytest", "HYPOTHESIS_PROFILE=thorough python3 -m pytest",
           "CI=1 python3 -m pytest", "python3 tests/mutation.py")


@dataclass
class Block:
    language: str
    argument: str
    body: str
    line: int


@dataclass
class Command:
    text: str
    exit: int = 0
    output: list[str] = field(default_factory=list)


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a MyST page: ``lang`` or ``{directive} argument``."""
    out, lines, k = [], text.splitlines(), 0
    while k < len(lines):
        fence = re.match(r"^\s*(`{3,}|~{3,})(.*)$", lines[k])
        if not fence:
            k += 1
            continue
        start, info = k, fence.group(2).strip()
        k += 1
        while k < len(lines) and lines[k].strip() != fence.group(1):
            k += 1
        directive = re.match(r"^\{([\w-]+)\}\s*(.*)$", info)
        language, argument = (directive.groups() if directive else (info, ""))
        body = textwrap.dedent("\n".join(lines[start + 1:k]))
        out.append(Block(language, argument, body, start + 1))
        k += 1
    return out


def commands(body: str) -> list[Command]:
    """``$ command`` lines (continued by a trailing backslash) and the output below each."""
    out: list[Command] = []
    pending = ""
    for line in body.splitlines():
        if pending:
            pending += "\n" + line
            if not line.endswith("\\"):
                out.append(_command(pending))
                pending = ""
        elif line.startswith("$ "):
            if line.endswith("\\"):
                pending = line[2:]
            else:
                out.append(_command(line[2:]))
        elif out and line.strip():
            out[-1].output.append(line)
    return out


def _command(text: str) -> Command:
    status = re.search(r"#\s*exit status (\d+)\s*$", text)
    return Command(text.strip(), int(status.group(1)) if status else 0)


def shown(text: str) -> str:
    """A command as the page shows it, without its comment, continuations joined."""
    return re.sub(r"\s+", " ", re.sub(r"\s+#.*$", "", text.replace("\\\n", " "))).strip()


def pattern(line: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(part) for part in line.rstrip().split("…")))


def check_output(command: Command, printed: str) -> None:
    """Each output line of the page appears in the printed output, in the page's order."""
    lines, at = printed.splitlines(), 0
    for expected in command.output:
        if expected.strip() == "…":
            continue
        wanted = pattern(expected)
        while at < len(lines) and not wanted.fullmatch(lines[at].rstrip()):
            at += 1
        assert at < len(lines), (f"`{command.text}` did not print a line like\n  {expected}\n"
                                 f"--- it printed:\n{printed[-4000:]}")
        at += 1


def page_items(page: Path) -> list[Block | Command]:
    """What a page runs, in its order: python blocks and console commands."""
    items: list[Block | Command] = []
    for block in blocks(page.read_text(encoding="utf-8")):
        if block.language == "console":
            items += commands(block.body)
        elif block.language == "python":
            items.append(block)
    return items


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md")
                  if not {"_build", "_generated"} & set(p.relative_to(DOCS).parts))


def shims(folder: Path) -> dict[str, str]:
    """An environment where ``attnflow`` and ``python3`` run this checkout's code."""
    folder.mkdir()
    for name, target in (("attnflow", f'"{sys.executable}" -m attnflow'),
                         ("python3", f'"{sys.executable}"')):
        script = folder / name
        script.write_text(f'#!/bin/sh\nexec {target} "$@"\n')
        script.chmod(0o755)
    return dict(os.environ, PATH=f"{folder}{os.pathsep}{os.environ['PATH']}",
                PYTHONPATH=str(ROOT), COLUMNS="100")


def documented_keys(heading: str) -> set[str]:
    """Every key the schema blocks of a section of the JSON reference name."""
    text = (DOCS / "reference" / "json.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return {key for block in blocks(section) if block.language == "text"
            for key in re.findall(r'"(\w+)"\s*:', block.body)}


def keys(value) -> set[str]:
    """The keys of a JSON value at every depth (not those of maps keyed by data)."""
    if isinstance(value, list):
        return set().union(*map(keys, value)) if value else set()
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, inner in value.items():
        found.add(key)
        if key not in DATA_KEYS:
            found |= keys(inner)
    return found


def run_page(page: Path, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(DOCS / "examples", work)
    shutil.copytree(ROOT / "benchmarks", work / "benchmarks")
    env = shims(tmp_path / "bin")
    background = []
    try:
        for k, item in enumerate(page_items(page)):
            if isinstance(item, Block):
                script = work / f"block_{k}.py"
                script.write_text(item.body, encoding="utf-8")
                done = subprocess.run([sys.executable, script.name], cwd=work, env=env,
                                      capture_output=True, text=True, timeout=600)
                assert done.returncode == 0, (f"{page.name}:{item.line}: the python block "
                                              f"failed:\n{done.stderr[-3000:]}")
                continue
            text = REDUCED.get(shown(item.text), item.text)
            if text.rstrip().endswith("&"):
                background.append(subprocess.Popen(
                    ["bash", "-c", text.rstrip()[:-1]], cwd=work, env=env,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True))
                continue
            done = subprocess.run(["bash", "-c", text], cwd=work, env=env, capture_output=True,
                                  text=True, timeout=900)
            assert done.returncode == item.exit, (
                f"{page.name}: `{text}` exited {done.returncode}, the page says {item.exit}:"
                f"\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            check_output(item, done.stdout + done.stderr)
    finally:
        for process in background:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    return work


def _param(page: Path):
    name = page.relative_to(DOCS).as_posix()
    marks = [pytest.mark.heavy]
    if name in SLOW_PAGES:
        marks.append(pytest.mark.slow)
    return pytest.param(page, id=name, marks=marks)


@pytest.mark.parametrize("page", [_param(p) for p in pages() if page_items(p)])
def test_every_command_of_the_page_runs_as_shown(page, tmp_path):
    name = page.relative_to(DOCS).as_posix()
    if name in SST_PAGES and not os.environ.get("ATTNFLOW_SST"):
        pytest.skip("needs the SST files: set ATTNFLOW_SST=DIR")
    work = run_page(page, tmp_path)
    if name in JSON_REPORTS:
        file, heading = JSON_REPORTS[name]
        written = keys(json.loads((work / file).read_text(encoding="utf-8")))
        undocumented = {k for k in written - documented_keys(heading) if not PART.fullmatch(k)}
        assert not undocumented, f"{file}: keys the JSON reference does not name: {undocumented}"


def run_elsewhere() -> set[str]:
    """Commands that a console block or the documentation build runs."""
    done = set()
    for page in pages():
        for block in blocks(page.read_text(encoding="utf-8")):
            if block.language == "console":
                done |= {shown(c.text) for c in commands(block.body)}
            elif block.language == "attnflow-run":
                done.add(shown(block.argument))
    return done


def ci_installs() -> list[str]:
    """The installation lines of the README that .ci/run runs."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = README.read_text(encoding="utf-8").splitlines()
    found = []
    for regex in re.findall(r"grep -m 1 -E '([^']+)' README\.md", ci):
        found += [line for line in lines if re.search(regex, line)][:1]
    return found


def _extras(line: str) -> set[str]:
    match = re.search(r'\.\[([^\]]*)\]', line)
    return set(match.group(1).split(",")) if match else set()


def test_shell_blocks_show_only_commands_that_are_run_elsewhere():
    installs = ci_installs()
    assert len(installs) == 2 and any("pytest" in x for x in installs) and any(
        "sphinx-build" in x for x in installs), installs
    installed = set().union(*(_extras(x) for x in installs))
    done = run_elsewhere()
    for page in [README, *pages()]:
        for block in blocks(page.read_text(encoding="utf-8")):
            if block.language != "sh":
                continue
            for line in block.body.splitlines():
                command = shown(line)
                if not command:
                    continue
                for part in (p.strip() for p in command.split("&&")):
                    if part.startswith("python3 -m pip install"):
                        assert _extras(part) <= installed, (page.name, part)
                    elif not part.startswith(RUNNERS):
                        assert part in done or part in installs or any(
                            part in x for x in installs), (f"{page.name}:{block.line}: "
                                                           f"`{part}` is run nowhere")


def test_reduced_variants_and_slow_pages_name_what_the_docs_show():
    shown_anywhere = run_elsewhere()
    assert set(REDUCED) <= shown_anywhere, set(REDUCED) - shown_anywhere
    names = {p.relative_to(DOCS).as_posix() for p in pages()}
    assert set(SLOW_PAGES) <= names


def test_the_output_check_can_fail():
    command = Command("x", 0, ["wrote run.npz: … snapshots", "…", "done"])
    check_output(command, "start\nwrote run.npz: 11 snapshots\nmiddle\ndone\n")
    with pytest.raises(AssertionError, match="did not print a line like"):
        check_output(command, "done\nwrote run.npz: 11 snapshots\n")
    assert [shown(c.text) for c in commands("$ a \\\n  b  # exit status 2\nout\n$ c")] == [
        "a b", "c"]
    assert commands("$ a  # exit status 2")[0].exit == 2


def test_framework_recipes_run_where_the_framework_is_installed(tmp_path):
    """The PyTorch and JAX recipes of docs/howto/check-your-run.md, each recorded run read
    back in the run's own dtype."""
    import numeric

    env = shims(tmp_path / "bin")
    ran = 0
    for script, module, output in (("pytorch_recorder.py", "torch", "torch_run.npz"),
                                   ("jax_recorder.py", "jax", "jax_run.npz")):
        if subprocess.run([sys.executable, "-c", f"import {module}"], env=env,
                          capture_output=True).returncode:
            continue
        shutil.copy(DOCS / "examples" / script, tmp_path)
        done = subprocess.run([sys.executable, script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert numeric.Trajectory.load(tmp_path / output).spec.dtype == "float32"
        ran += 1
    if not ran:
        pytest.skip("neither PyTorch nor JAX is installed")


def test_the_readme_test_command_is_the_one_ci_runs():
    """.ci/run greps the README's first `python3 -m pip install … pytest` line and runs it
    verbatim; the README names the test profiles and the quick subset it documents."""
    installs = ci_installs()
    text = README.read_text(encoding="utf-8")
    assert installs[0] in text.splitlines()[:20], "the test command is at the top"
    assert "-m quick" in text and "HYPOTHESIS_PROFILE=thorough" in text
    assert shlex.split(installs[0])[:4] == ["python3", "-m", "pip", "install"]


def test_the_json_key_check_reads_the_reference_and_sees_every_depth():
    certificate = documented_keys("## Audit certificate")
    assert {"format", "derive_check", "theorems", "symbol_hypotheses", "citation"} <= certificate
    assert "explanation" in documented_keys("## `attnflow laws --json FILE`")
    assert keys({"a": {"parameters": {"embeddings": 1}}, "b": [{"c": {"d": 2}}]}) == {
        "a", "parameters", "b", "c", "d"}
