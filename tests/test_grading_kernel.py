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
    resources = {"metadata": {"path": str(tmp_path)},
                 "nbgrader": {"assignment": "a1", "student": "alice", "notebook": "notebook"}}
    nb, _ = GuardedExecute(config=config).preprocess(nb, resources)
    crash, after = nb.cells[3], nb.cells[4]  # the grading notes are inserted as cell 0
    assert "Grading notes" in nb.cells[0].source
    assert [o["ename"] for o in crash.outputs] == ["KernelDied"]
    assert "exited with status 3" in crash.outputs[0]["evalue"]
    assert [o.get("text") for o in after.outputs] == ["42\n"]   # replayed x and y, skipped the crash
    notes = Path(tmp_path / ".zoograde" / "notes" / "a1" / "alice" / "notebook.json").read_text()
    assert "exited with status 3" in notes  # the grader's notes: under the course root, not in the kernel's folder
    assert not list(tmp_path.glob(".zoograde-*"))


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


# ---------------------------------------------------------------------------------------------------
# The OS sandbox on its own: the audit hook is off, so only bubblewrap's namespaces stand in the way.

ATTACKS = [
    # 0: who and where the kernel is
    "import os, socket, signal, sqlite3\nprint('uid', os.getuid())",
    # 1: the course's files, by path, through / with dir_fd, and as an SQLite URI
    "for path in [GRADEBOOK, SOURCE, CONFIG]:\n"
    "    print('visible' if os.path.exists(path) else 'absent', os.path.basename(path))\n"
    "root = os.open('/', os.O_RDONLY)\n"
    "try:\n    os.open(GRADEBOOK.lstrip('/'), os.O_RDWR, dir_fd=root)\n    print('dir_fd: opened')\n"
    "except OSError as e:\n    print('dir_fd:', type(e).__name__)\n"
    "try:\n    sqlite3.connect(f'file:{GRADEBOOK}?mode=rw', uri=True).execute('select 1 from grade')\n"
    "    print('sqlite: opened')\nexcept sqlite3.Error as e:\n    print('sqlite:', type(e).__name__)",
    # 2: write outside its folder (absolute, relative, /tmp) and leave links for the grader to follow
    "for path in [os.path.join(COURSE, 'escaped.txt'), '../../escaped.txt', '/tmp/zoo-sandbox-escaped.txt']:\n"
    "    try:\n        open(path, 'w').write('x')\n        print('wrote', path)\n"
    "    except OSError as e:\n        print('refused', type(e).__name__)\n"
    "os.remove('notebook.ipynb') if os.path.exists('notebook.ipynb') else None\n"
    "os.symlink(GRADEBOOK, 'notebook.ipynb')\nos.symlink(GRADEBOOK, 'results.txt')\n"
    "_ = open('answer.txt', 'w').write('42')",
    # 3: the grader's loopback service
    "try:\n    socket.create_connection(('127.0.0.1', PORT), timeout=2)\n    print('net: connected')\n"
    "except OSError as e:\n    import errno\n    print('net:', errno.errorcode.get(e.errno, e))",
    # 4: signals and /proc: the grader and its other processes
    "try:\n    os.kill(GRADER, signal.SIGTERM)\n    print('kill: sent')\nexcept OSError as e:\n"
    "    print('kill:', type(e).__name__)\n"
    "print('environ of the grader:', os.path.exists(f'/proc/{GRADER}/environ'))",
    # 5: a fork bomb
    "children = 0\ntry:\n    for _ in range(400):\n        if os.fork() == 0:\n            import time\n"
    "            time.sleep(30)\n            os._exit(0)\n        children += 1\nexcept OSError as e:\n"
    "    print('fork refused after', children, type(e).__name__)\nelse:\n    print('forked', children)",
]


@pytest.fixture(scope="module")
def listener():
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.parametrize("prewarm", [True, False], ids=["forked", "cold"])
def test_the_sandbox_alone_keeps_the_kernel_in_its_folder(tmp_path, prewarm, listener):
    import signal
    import subprocess
    import sys

    from traitlets.config import Config

    from zoograde.execute import GuardedExecute

    course = tmp_path / "course"
    folder = course / "autograded" / "alice" / "a1"
    folder.mkdir(parents=True)
    (course / "source" / "a1").mkdir(parents=True)
    (course / "source" / "a1" / "a1.ipynb").write_text("hidden tests")
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    gradebook = course / "gradebook.db"
    import sqlite3

    with sqlite3.connect(gradebook) as db:
        db.execute("create table grade (id int, manual_score float)")
        db.execute("insert into grade values (1, 5.0)")
    (folder / "notebook.ipynb").write_text("{}")
    before = {p: p.read_bytes() for p in course.rglob("*") if p.is_file() and folder not in p.parents}
    # a process of the grader's that the kernel will try to signal
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    header = (f"COURSE, GRADEBOOK = {str(course)!r}, {str(gradebook)!r}\n"
              f"SOURCE, CONFIG = {str(course / 'source' / 'a1' / 'a1.ipynb')!r}, "
              f"{str(course / 'nbgrader_config.py')!r}\nPORT, GRADER = {listener}, {bystander.pid}\n")
    nb = new_notebook(cells=[new_code_cell(header + ATTACKS[0])] + [new_code_cell(code) for code in ATTACKS[1:]])
    config = Config()
    config.CourseDirectory.root = str(course)
    config.GuardedExecute.prewarm = prewarm
    config.GuardedExecute.audit = False      # the OS boundary alone
    config.GuardedExecute.max_processes = 48
    config.GuardedExecute.notebook_timeout = 120
    try:
        nb, _ = GuardedExecute(config=config).preprocess(nb, {"metadata": {"path": str(folder)}})
        assert bystander.poll() is None, "the kernel killed one of the grader's processes"
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()
    out = ["".join(o.get("text", "") or f"{o.get('ename')}: {o.get('evalue')}" for o in c.outputs)
           for c in nb.cells if c.cell_type == "code"]
    assert out[0] == "uid 65534\n"
    assert out[1] == "absent gradebook.db\nabsent a1.ipynb\nabsent nbgrader_config.py\ndir_fd: FileNotFoundError\n" \
                     "sqlite: OperationalError\n"
    assert out[2].startswith("refused FileNotFoundError\n")  # the course is not there; ../.. and /tmp are its own
    assert out[3] in ("net: ECONNREFUSED\n", "net: ENETUNREACH\n")  # its own empty network, not the grader's
    assert out[4].startswith("kill: ProcessLookupError\nenviron of the grader: ")
    after = {p: p.read_bytes() for p in course.rglob("*") if p.is_file() and folder not in p.parents}
    assert after == before, "a file outside the submission's folder changed"
    assert not Path("/tmp/zoo-sandbox-escaped.txt").exists()  # its /tmp was its own
    # what it wrote in its copy comes back as data: the file, never the links
    assert (folder / "answer.txt").read_text() == "42"
    assert not (folder / "results.txt").exists() and not (folder / "notebook.ipynb").is_symlink()
    with sqlite3.connect(gradebook) as db:
        assert db.execute("select manual_score from grade").fetchall() == [(5.0,)]


def test_the_fork_bomb_stays_in_its_sandbox(tmp_path, monkeypatch):
    from traitlets.config import Config

    from zoograde import sandbox
    from zoograde.execute import GuardedExecute

    made = []  # this kernel's cgroups only: the other xdist worker makes its own meanwhile
    make = sandbox.make_cgroup
    monkeypatch.setattr(sandbox, "make_cgroup", lambda *a: made.append(make(*a)) or made[-1])

    folder = tmp_path / "course" / "autograded" / "alice" / "a1"
    folder.mkdir(parents=True)
    nb = new_notebook(cells=[new_code_cell("import os\n" + ATTACKS[5]), new_code_cell("print('still grading')")])
    config = Config()
    config.CourseDirectory.root = str(tmp_path / "course")
    config.GuardedExecute.audit = False
    config.GuardedExecute.max_processes = 48
    config.GuardedExecute.notebook_timeout = 120
    nb, _ = GuardedExecute(config=config).preprocess(nb, {"metadata": {"path": str(folder)}})
    assert made and all(made), "no cgroup was made for the kernel"
    assert not [p for p in made if os.path.exists(p)]  # the kernel's cgroup went with it
    bomb, after = [c for c in nb.cells if c.cell_type == "code"]
    text = "".join(o.get("text", "") for o in bomb.outputs)
    assert text.startswith("fork refused after "), text
    assert int(text.split()[3]) < 48
    assert [o.get("text") for o in after.outputs] == ["still grading\n"]


def test_without_bubblewrap_grading_refuses_and_says_what_to_install(tmp_path, monkeypatch):
    from traitlets.config import Config

    from zoograde import sandbox
    from zoograde.execute import GuardedExecute

    monkeypatch.setattr(sandbox, "bwrap", lambda: None)
    sandbox._probe.cache_clear()
    try:
        config = Config()
        config.CourseDirectory.root = str(tmp_path)
        with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap.*--no-sandbox"):
            GuardedExecute(config=config).preprocess(new_notebook(cells=[new_code_cell("1")]),
                                                     {"metadata": {"path": str(tmp_path)}})
        config.GuardedExecute.sandbox = False  # --no-sandbox: graded, and the notes say so
        config.GuardedExecute.prewarm = False
        nb, _ = GuardedExecute(config=config).preprocess(new_notebook(cells=[new_code_cell("print(6 * 7)")]),
                                                         {"metadata": {"path": str(tmp_path)}})
        assert "WITHOUT the OS sandbox" in nb.cells[0].source
        assert nb.cells[1].outputs[0]["text"] == "42\n"
    finally:
        sandbox._probe.cache_clear()


def test_the_guard_names_and_undoes_each_swapped_hook():
    # The guard is no boundary, but between cells it puts back what a cell swapped and says what it was.
    import gc
    import signal
    import sys

    from IPython.core.interactiveshell import InteractiveShell

    from zoograde import _guard

    shell = InteractiveShell.instance()
    try:
        snapshot = _guard._Snapshot()
        hook, handler, callbacks = sys.excepthook, signal.getsignal(signal.SIGTERM), list(gc.callbacks)
        transformers, meta_path = list(shell.input_transformers_cleanup), sys.meta_path
        sys.excepthook = lambda *a: None
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        gc.callbacks.append(lambda *a: None)
        shell.input_transformers_cleanup.append(lambda lines: lines)
        shell.run_cell = lambda *a, **k: None
        changes = snapshot.repair()
        assert sorted(changes) == sorted([
            "sys.excepthook was changed", "the SIGTERM handler was changed", "gc.callbacks was changed",
            "IPython's input transformers were changed", "IPython's shell.run_cell was changed"])
        assert sys.excepthook is hook and signal.getsignal(signal.SIGTERM) is handler
        assert gc.callbacks == callbacks and sys.meta_path is meta_path
        assert shell.input_transformers_cleanup == transformers and "run_cell" not in vars(shell)
        assert snapshot.repair() == []
    finally:
        InteractiveShell.clear_instance()
