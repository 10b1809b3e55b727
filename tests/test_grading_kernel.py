"""The grading kernel on its own: the audit policy, and GuardedExecute without nbgrader.

The policy (``zoograde._guard._policy``) is called directly, as the interpreter would call
it, so each rule is checked without starting a kernel. The executor runs a four-cell
notebook whose third cell kills its process, once with kernels forked from the pre-loaded
server and once with cold starts: the cell after the crash must still see what the cells
before it defined.
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from zoograde._guard import GradingPolicyError, _policy


@pytest.fixture
def folders(tmp_path):
    course = tmp_path / "course"
    own = course / "autograded" / "alice" / "a1"
    other = course / "autograded" / "bob" / "a1"
    scratch = tmp_path / "scratch"
    for folder in (own, other, scratch, course / "source"):
        folder.mkdir(parents=True)
    return course, own, other, scratch


def test_the_policy_keeps_a_notebook_in_its_folder(folders, monkeypatch):
    course, own, other, scratch = folders
    monkeypatch.chdir(own)
    hook = _policy(allowed=[str(own)], protected=[str(course)], writable=[str(scratch)])
    hook("open", ("answer.npy", "w", 0))                       # its own folder: fine
    hook("open", (str(scratch / "t.bin"), "wb", 0))             # its private temporary folder: fine
    hook("open", (os.__file__, "r", 0))                         # libraries: fine
    with pytest.raises(GradingPolicyError, match="reading ../../../source/a1.ipynb is not allowed"):
        hook("open", ("../../../source/a1.ipynb", "r", 0))      # the hidden tests
    with pytest.raises(GradingPolicyError, match="reading .* is not allowed"):
        hook("open", (str(other / "a1.ipynb"), "r", 0))         # another student's work
    with pytest.raises(GradingPolicyError, match="reading .*gradebook.db is not allowed"):
        hook("sqlite3.connect", (str(course / "gradebook.db"),))
    with pytest.raises(GradingPolicyError, match="writing /tmp/x is not allowed"):
        hook("open", ("/tmp/x", "w", 0))
    with pytest.raises(GradingPolicyError, match="writing"):
        hook("open", ("../escape", None, os.O_WRONLY | os.O_CREAT))  # os.open with flags
    with pytest.raises(GradingPolicyError, match="writing"):
        hook("os.rename", ("answer.npy", "../../../source/a1.ipynb", -1, -1))
    with pytest.raises(GradingPolicyError, match="reading"):
        hook("os.listdir", ("../..",))
    os.symlink(course / "source", own / "link")                 # a link out of its folder does not help
    with pytest.raises(GradingPolicyError, match="reading link/a1.ipynb is not allowed"):
        hook("open", ("link/a1.ipynb", "r", 0))


def test_the_policy_forbids_processes_signals_network_and_native_code(folders, monkeypatch):
    course, own, _, scratch = folders
    monkeypatch.chdir(own)
    hook = _policy(allowed=[str(own)], protected=[str(course)], writable=[str(scratch)])
    for event, args, what in [("subprocess.Popen", ("rm",), "starting another process"),
                              ("os.system", ("ls",), "starting another process"),
                              ("os.kill", (os.getppid(), 9), "sending signals"),
                              ("socket.connect", (None, ("10.0.0.1", 5432)), "network access"),
                              ("ctypes.dlopen", ("libc.so.6",), "loading native code"),
                              ("gc.get_referrers", (), "walking the garbage collector")]:
        with pytest.raises(GradingPolicyError, match=what):
            hook(event, args)
    hook("os.kill", (os.getpid(), 0))                           # signalling itself is its own business
    with pytest.raises(RuntimeError):                           # a second audit hook is refused
        hook("sys.addaudithook", ())
    hook("import", ("json", None, [], [], []))                  # everything else passes


@pytest.mark.parametrize("prewarm", [True, False], ids=["forked", "cold"])
def test_a_crash_fails_its_cell_only(tmp_path, prewarm):
    from traitlets.config import Config

    from zoograde.execute import GuardedExecute

    nb = new_notebook(cells=[new_code_cell("x = 41"), new_code_cell("y = x + 1"),
                             new_code_cell("import os\nos._exit(3)"), new_code_cell("print(y)")])
    config = Config()
    config.CourseDirectory.root = str(tmp_path)
    config.GuardedExecute.prewarm = prewarm
    config.GuardedExecute.notebook_timeout = 120
    nb, _ = GuardedExecute(config=config).preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    crash, after = nb.cells[3], nb.cells[4]  # the grading notes are inserted as cell 0
    assert "Grading notes" in nb.cells[0].source
    assert [o["ename"] for o in crash.outputs] == ["KernelDied"]
    assert "exited with status 3" in crash.outputs[0]["evalue"]
    assert [o.get("text") for o in after.outputs] == ["42\n"]   # replayed x and y, skipped the crash
    notes = Path(tmp_path / ".zoograde-notebook.json").read_text()
    assert "exited with status 3" in notes


def test_the_kernel_sees_neither_the_graders_secrets_nor_its_home(tmp_path, monkeypatch):
    from traitlets.config import Config

    from zoograde.execute import GuardedExecute

    home = tmp_path / "home"
    home.mkdir()
    (home / ".pgpass").write_text("dbhost:5432:cnnzoo:grader:s3cret\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ZOO_GRADEBOOK_URL", "postgresql+psycopg2://grader:s3cret@dbhost/cnnzoo")
    work = tmp_path / "work"
    work.mkdir()
    nb = new_notebook(cells=[
        new_code_cell("import os\nprint(sorted(k for k in os.environ if 'GRADEBOOK' in k), os.environ['HOME'] != "
                      f"{str(home)!r})"),
        new_code_cell(f"open({str(home / '.pgpass')!r}).read()")])
    config = Config()
    config.CourseDirectory.root = str(tmp_path / "course")
    nb, _ = GuardedExecute(config=config).preprocess(nb, {"metadata": {"path": str(work)}})
    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert cells[0].outputs[0]["text"] == "[] True\n"
    assert cells[1].outputs[0]["ename"] == "GradingPolicyError"
    assert "s3cret" not in nbformat.writes(nb)
