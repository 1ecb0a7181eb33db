"""``kcrash shell`` on real dumps: driven through a pseudo-terminal like an operator.

One dump (the first kdump/zlib entry, a null dereference when there is one)
is opened once in-process for the completion vocabulary, and a single
long-lived ``kcrash VMCORE VMLINUX`` under pexpect serves most interactive
checks, so the file stays fast (each kcrash start costs about a second).
Tests FAIL, never skip, without the corpus (the ``corpus`` fixtures).

How prompts are recognised: prompt_toolkit draws ``kcrash> `` with cursor
movements instead of the trailing space and re-draws the accepted line, so
a fresh prompt is matched by the bracketed-paste switch it emits first
(``ESC[?2004h``); what a command printed follows the switch-off
(``ESC[?2004l``) of the accepted line.

Why nothing here waits on time: these tests share a 2-core machine with QEMU
guests and other test runs, where any step can take seconds.  Every wait is on
something the shell prints — the next prompt, a completion drawn on the
screen (:func:`drawn`), a command's own "I am running" line before Ctrl-C
(:func:`interrupt`) — and :data:`DEADLINE` only bounds a hang.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from kcrash.shell.completion import ShellCompleter, split_context
from kcrash.shell.names import Names, prefixed
from kcrash.shell.session import describe_error, split_commands

PROMPT = re.compile(r"\x1b\[\?2004h[^\n]*?kcrash>")
PY_PROMPT = re.compile(r"\x1b\[\?2004h[^\n]*?>>>")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
KCRASH = [sys.executable, "-m", "kcrash"]
#: The last resort for one wait (seconds): never reached unless the shell hangs.  Each wait
#: is met in about a second on an idle machine and in a few seconds on a loaded one (kcrash's
#: start with two QEMU guests beside it: ~6 s); generous, so a busy machine never fails a test.
DEADLINE = 300


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dump(kdump_zlib: list[dict[str, Any]]) -> dict[str, Any]:
    """A kdump/zlib dump with its vmlinux, a null dereference when there is one."""
    entries = sorted(kdump_zlib, key=lambda e: e.get("scenario") != "null-deref")
    for e in entries:
        if e.get("vmlinux") and Path(e["path"]).exists() and Path(e["vmlinux"]).exists():
            return e
    pytest.fail("no kdump/zlib dump in the corpus has its vmlinux on disk")


@pytest.fixture(scope="module")
def target(dump: dict[str, Any]) -> Any:
    from kcrash.target.open import open_target

    return open_target(*_args(dump))


@pytest.fixture(scope="module")
def names(target: Any) -> Names:
    from kcrash.shell.builtins import shell_names

    return Names(target.prog, shell_names)


def _args(dump: dict[str, Any]) -> list[str]:
    """How every test names the dump: VMCORE VMLINUX, as operators do."""
    return [dump["path"], dump["vmlinux"]]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KCRASH_HISTFILE=str(tmp / "history"),
        PROMPT_TOOLKIT_NO_CPR="1",  # pexpect never answers cursor-position requests
        TERM="xterm",
        KCRASH_PAGER="",  # deterministic output; test_pager turns it back on
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def _spawn(
    dump: dict[str, Any],
    env: dict[str, str],
    started: list[pexpect.spawn],
    *,
    rows: int = 50,
    sigint: Any = signal.SIG_DFL,
) -> pexpect.spawn:
    """``kcrash VMCORE VMLINUX`` on a ``rows`` x 200 terminal, at its first prompt.

    ``sigint`` is the SIGINT disposition kcrash inherits, set here rather than
    left to however pytest was started (a background job of a script, as some CI
    runners start it, inherits SIGINT ignored).  The child joins ``started``,
    whose owner kills what is left of it (:func:`_close_all`).
    """
    child = pexpect.spawn(
        KCRASH[0],
        [*KCRASH[1:], *_args(dump)],
        env=env,
        encoding="utf-8",
        codec_errors="replace",
        timeout=DEADLINE,
        dimensions=(rows, 200),
        use_poll=True,  # select() fails on descriptors above 1024 in a long pytest run
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
    )
    started.append(child)
    child.expect(PROMPT)  # after the banner and the startup `sys`
    return child


def _close_all(started: list[pexpect.spawn]) -> None:
    """Kill the sessions a test leaves running: a stuck one (say, a loop that Ctrl-C did
    not stop) would take a core of a 2-core machine from every test after it."""
    for child in started:
        child.close(force=True)


@pytest.fixture
def started() -> Iterator[list[pexpect.spawn]]:
    """The kcrash sessions one test starts, killed at its end whatever happened."""
    children: list[pexpect.spawn] = []
    yield children
    _close_all(children)


def _clean(text: str) -> str:
    return ANSI.sub("", text)


def drawn(text: str) -> re.Pattern[str]:
    """``text`` as it reaches the terminal, once drawn.

    prompt_toolkit redraws only what changed, and completion runs in a thread:
    after ``whati`` and Tab the pty gets ``whati``, cursor and attribute
    sequences (sometimes line feeds, blanks and backspaces that make room for a
    menu), then ``s`` whenever the completer is done.  Waiting for this pattern
    is waiting for the completion itself.
    """
    between = r"(?:\x1b\[[0-9;?]*[A-Za-z]|[\r\n\b ])*"
    return re.compile(between.join(re.escape(c) for c in text))


def interrupt(child: pexpect.spawn, running: str) -> None:
    """Press Ctrl-C once the command has printed ``running``.

    Not after a sleep: until prompt_toolkit has accepted the line and handed the
    terminal back (ISIG on again), Ctrl-C is only a key in its input queue, left
    for the next prompt, and the command never sees it.  ``running`` must not
    occur in the echo of the typed line (print it computed, e.g. ``"ready".upper()``).
    """
    child.expect_exact(running)
    child.sendintr()


def run(child: pexpect.spawn, line: str, prompt: re.Pattern[str] = PROMPT) -> str:
    """Type ``line``, wait for the next prompt, return what the command printed."""
    child.sendline(line)
    child.expect(prompt)
    before = child.before
    cut = before.rfind("\x1b[?2004l")
    return _clean(before[cut + len("\x1b[?2004l") :] if cut >= 0 else before)


@pytest.fixture(scope="module")
def shared_shell(dump: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One interactive kcrash on the dump, shared by the checks of this module.

    Started with SIGINT ignored, as from a script's background job or ``nohup``:
    Ctrl-C at the terminal must stop its commands all the same.
    """
    tmp = tmp_path_factory.mktemp("shell")
    started: list[pexpect.spawn] = []
    try:
        child = _spawn(dump, _env(tmp), started, sigint=signal.SIG_IGN)
        yield child
        child.sendline("q")
        child.expect(pexpect.EOF)
    finally:
        _close_all(started)


@pytest.fixture
def shell(shared_shell: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The shared shell, brought back to an empty ``kcrash>`` line after each test,
    so that one failing check (say, left in Python mode) does not fail the next.

    A failed wait can leave prompts unread, which the next test would take for its
    own: a line only this teardown prints puts reading and shell back in step.
    """
    yield shared_shell
    shared_shell.sendintr()
    if shared_shell.expect([PROMPT, PY_PROMPT]) == 1:
        shared_shell.sendline("exit()")
        shared_shell.expect(PROMPT)
    mark = f"after {request.node.name}"
    shared_shell.sendline(f"!echo '{mark}' | tr a-z A-Z")
    shared_shell.expect_exact(mark.upper())
    shared_shell.expect(PROMPT)


@pytest.fixture(scope="module")
def oneshot(dump: dict[str, Any]) -> dict[str, str]:
    """``kcrash sys|bt VMCORE VMLINUX`` outputs, computed once for the comparisons."""
    return {cmd: _oneshot(dump, cmd) for cmd in ("sys", "bt")}


def _oneshot(dump: dict[str, Any], *cmd: str) -> str:
    """A crash command's non-interactive output: ``kcrash CMD VMCORE VMLINUX``."""
    out = subprocess.run(
        [*KCRASH, cmd[0], *_args(dump), *cmd[1:]],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


# -- pure functions -------------------------------------------------------------------


def test_split_commands() -> None:
    assert split_commands("sys; bt") == ["sys", "bt"]
    assert split_commands("sys;bt -a ;; log") == ["sys", "bt -a", "log"]
    assert split_commands("p \"a;b\"; log 'c;d'") == ['p "a;b"', "log 'c;d'"]
    assert split_commands("log | grep a; bt") == ["log | grep a", "bt"]  # as in sh
    assert split_commands("!ls; echo") == ["!ls; echo"]
    assert split_commands("py x = 1; y = 2") == ["py x = 1; y = 2"]
    assert split_commands("  ") == []


def test_split_context() -> None:
    assert split_context("") == ([], "", "")
    assert split_context("bt -") == (["bt"], "-", "")
    assert split_context("sys; struct task_s") == (["struct"], "task_s", "")
    assert split_context("sys > /tm") == (["sys"], "/tm", ">")
    assert split_context("sys >> out ") == (["sys"], "", "")
    assert split_context("log | gr") is None
    assert split_context("!ec") is None
    assert split_context("!ls; ec") is None  # a "!" line is all the shell's
    assert split_context("log | grep x; sy") == ([], "sy", "")


def test_describe_error_is_one_line() -> None:
    from drgn.commands import CommandNotFoundError

    assert describe_error(CommandNotFoundError("nope"), "nope") == "nope: command not found"
    assert describe_error(LookupError("no such process with PID 9"), "bt") == (
        "bt: no such process with PID 9"
    )
    bug = describe_error(TypeError("a\nb"), "bt")
    assert "\n" not in bug and "internal error" in bug and "KCRASH_DEBUG" in bug


def test_history_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kcrash.shell import paths

    monkeypatch.delenv("KCRASH_HISTFILE", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert paths.history_file() == tmp_path / "state" / "kcrash" / "history"
    assert paths.py_history_file() == tmp_path / "state" / "kcrash" / "py_history"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.history_file() == tmp_path / ".local" / "state" / "kcrash" / "history"
    monkeypatch.setenv("KCRASH_HISTFILE", str(tmp_path / "h"))
    assert (paths.history_file(), paths.py_history_file()) == (tmp_path / "h", tmp_path / "h.py")


def test_pager_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    import drgn

    from kcrash.shell import pager

    prog = drgn.Program()
    monkeypatch.delenv("KCRASH_PAGER", raising=False)
    pager.configure(prog, stdout_is_tty=False)  # a pipe or a file: never a pager
    assert prog.config["crash_scroll"] is False
    pager.configure(prog, stdout_is_tty=True)
    assert prog.config["crash_scroll"] is True
    assert " -F " in prog.config["crash_pager"] + " "  # short output is not paged
    for off in ("", "cat"):
        monkeypatch.setenv("KCRASH_PAGER", off)
        pager.configure(prog, stdout_is_tty=True)
        assert prog.config["crash_scroll"] is False


def test_plain_reader() -> None:
    import io

    from kcrash.shell.reader import PlainReader

    r = PlainReader(io.StringIO("sys\nbt -a\n"))
    assert [r.read("kcrash> "), r.read("kcrash> ")] == ["sys", "bt -a"]
    with pytest.raises(EOFError):
        r.read("kcrash> ")


# -- completion vocabulary on the real dump ------------------------------------------


def test_completion_vocabulary(names: Names) -> None:
    c = ShellCompleter(names)

    def cands(line: str) -> list[str]:
        ctx = split_context(line)
        assert ctx is not None
        return [t for t, _ in c.candidates(ctx[0], ctx[1])]

    assert {"sys", "bt", "foreach", "help", "py", "q"} <= set(cands(""))
    assert cands("forea") == ["foreach"]
    assert {"bt", "ps"} <= set(cands("help "))
    assert "-a" in cands("bt -")  # options, from the command's argparse parser
    assert "task_struct" in cands("struct task_stru")  # struct names, from BTF
    assert "task_struct" in cands("list -s task_st")
    assert "task_struct.comm" in cands("struct task_struct.co")  # members
    assert "task_struct.comm,pid" in cands("struct task_struct.comm,pi")
    assert "schedule" in cands("sym schedu")  # kernel symbols
    assert "1" in cands("set ")  # PIDs
    assert "1" in cands("bt 1")
    assert set(cands("set sc")) == {"scroll"}
    assert cands("foreach 1 b") == ["bt"]
    assert prefixed(names.symbols, "zzzz_no_such") == []
    assert len(names.structs) > 1000, "the kernel's BTF lists thousands of structs"


# -- the interactive shell through a pty ---------------------------------------------


def test_tab_completes_command_and_struct(shell: Any, names: Names) -> None:
    # "whati" is unique; for the struct, press Tab until task_struct is chosen
    # (prompt_toolkit inserts a unique completion, else the 2nd Tab picks the 1st).
    matches = prefixed(names.structs, "task_stru")
    assert matches and matches[0] == "task_struct"
    shell.send("whati\t")
    shell.expect(drawn("whatis"))
    shell.send(" task_stru\t")
    shell.expect(drawn("task_struct"))  # inserted, or the common part and a menu
    out = run(shell, "" if len(matches) == 1 else "\t")  # (menu: Tab picks the 1st, in order)
    assert "struct task_struct {" in out


def test_help(shell: Any) -> None:
    out = run(shell, "help bt")
    assert "NAME" in out and "bt - " in out and "SYNOPSIS" in out
    out = run(shell, "help")
    assert "foreach" in out and "py" in out and "help CMD" in out


def test_pipe_and_redirect(shell: Any, oneshot: dict[str, str], tmp_path: Path) -> None:
    sys_out = oneshot["sys"]
    release = next(line for line in sys_out.splitlines() if "RELEASE" in line)
    # (stderr shares the terminal: compare the line, not the whole screen)
    assert release.strip() in run(shell, "sys | grep RELEASE").splitlines()[-1]
    # `head` leaves early: the shell must live on (SIGPIPE ignored, EPIPE handled)
    assert len(run(shell, "log | head -2").strip().splitlines()) == 2
    assert run(shell, "!echo shell-escape-works").strip() == "shell-escape-works"
    out_file = tmp_path / "sys.txt"
    assert run(shell, f"sys > {out_file}").strip() == ""
    assert run(shell, f"sys >> {out_file}").strip() == ""
    assert out_file.read_text() == sys_out * 2


def _other_pid(target: Any) -> tuple[int, int, str]:
    """(panic PID, another PID, its comm): PID 1 unless PID 1 panicked."""
    from drgn.helpers.linux.pid import find_task

    panic_pid = target.prog.crashed_thread().object.pid.value_()
    other = 1 if panic_pid != 1 else 2
    return panic_pid, other, find_task(target.prog, other).comm.string_().decode()


def test_set_pid_changes_context(shell: Any, target: Any) -> None:
    panic_pid, other, comm = _other_pid(target)
    out = run(shell, f"set {other}")
    assert re.search(rf"PID: {other}\b", out) and comm in out
    assert re.search(rf"PID: {other}\b", run(shell, "task | head -1"))  # drgn's task
    assert run(shell, "py task.pid.value_()").strip() == str(other)
    out = run(shell, "set -p")
    assert re.search(rf"PID: {panic_pid}\b", out)
    assert run(shell, "py task.pid.value_()").strip() == str(panic_pid)


def test_bt_follows_set_pid(shell: Any, target: Any) -> None:
    """crash's ``bt`` without a PID shows the context task that ``set`` chose."""
    panic_pid, other, _ = _other_pid(target)
    run(shell, f"set {other}")
    try:
        assert re.search(rf"PID: {other}\b", run(shell, "bt"))
    finally:
        run(shell, "set -p")
    assert re.search(rf"PID: {panic_pid}\b", run(shell, "bt"))


def _unique_member(names: Names) -> str:
    """A task_struct member that two fewer characters already name uniquely."""
    ms = names.members("struct", "task_struct")
    for m in ms:
        if len(m) > 5 and m.isidentifier() and [x for x in ms if x.startswith(m[:-2])] == [m]:
            return m
    pytest.fail("task_struct has no member with a unique prefix")


def test_py_round_trip_keeps_state(shell: Any, names: Names) -> None:
    shell.sendline("py")
    shell.expect(PY_PROMPT)
    assert "Python mode" in _clean(shell.before)
    run(shell, "answer = task.pid.value_() + 4200", PY_PROMPT)
    assert "swapper" in run(shell, "prog['init_task'].comm.string_().decode()", PY_PROMPT)
    run(shell, "def twice(n):", re.compile(r"\.\.\."))
    run(shell, "    return 2 * n", re.compile(r"\.\.\."))
    run(shell, "", PY_PROMPT)
    member = _unique_member(names)  # attributes of drgn Objects complete
    shell.send(f"task.{member[:-2]}\t")
    shell.expect(drawn(member))
    out = run(shell, "", PY_PROMPT)
    assert "Traceback" not in out and out.strip()
    # Ctrl-C stops a runaway loop and stays in Python mode
    run(shell, "def spin():", re.compile(r"\.\.\."))
    run(shell, '    print("spinning".upper())', re.compile(r"\.\.\."))
    run(shell, "    while True: pass", re.compile(r"\.\.\."))
    run(shell, "", PY_PROMPT)
    shell.sendline("spin()")
    interrupt(shell, "SPINNING")
    shell.expect(PY_PROMPT)
    assert "KeyboardInterrupt" in _clean(shell.before)
    shell.sendcontrol("d")  # Ctrl-D leaves Python mode, not kcrash
    shell.expect(PROMPT)
    assert "RELEASE" in run(shell, "sys")  # back at the crash prompt
    n = int(run(shell, "py answer").strip())
    assert n >= 4200
    assert run(shell, "py twice(answer)").strip() == str(2 * n)
    shell.sendline("python")
    shell.expect(PY_PROMPT)
    assert run(shell, "answer", PY_PROMPT).strip() == str(n)
    shell.sendline("exit()")  # leaves Python mode, not kcrash; stdin stays open
    shell.expect(PROMPT)
    assert "RELEASE" in run(shell, "sys")


def test_ctrl_c_interrupts_command_not_session(shell: Any) -> None:
    # Each command would run for an hour: its prompt back within DEADLINE is Ctrl-C's doing.
    for line, says in (
        ('py print("running".upper()); __import__("time").sleep(3600)', "KeyboardInterrupt"),
        ("!echo running | tr a-z A-Z; sleep 3600", "interrupted"),  # through drgn's namespace
    ):
        shell.sendline(line)
        interrupt(shell, "RUNNING")
        shell.expect(PROMPT)
        assert says in _clean(shell.before)
        assert "RELEASE" in run(shell, "sys")
    # Ctrl-C at the prompt discards the line, and the session goes on
    shell.send("sys this is discarded")
    shell.sendintr()
    shell.expect(PROMPT)
    assert "RELEASE" in run(shell, "sys")


def test_failing_command_prints_one_line(shell: Any) -> None:
    for line in ("bt 987654", "bt -Z", "nosuchcommand", "rd 0", "struct no_such_struct_xyz"):
        out = run(shell, line).strip()
        assert out.startswith("kcrash: ") and len(out.splitlines()) == 1, (line, out)
        assert "Traceback" not in out
    assert "RELEASE" in run(shell, "sys")


def test_history_across_sessions(
    dump: dict[str, Any], tmp_path: Path, started: list[pexpect.spawn]
) -> None:
    env = _env(tmp_path)
    first = _spawn(dump, env, started)
    expected = run(first, "sys | grep -c :")
    first.sendeof()  # Ctrl-D leaves, and is not a history entry
    first.expect(pexpect.EOF)
    assert "sys | grep -c :" in (tmp_path / "history").read_text()

    second = _spawn(dump, env, started)
    second.send("\x1b[A")  # Up: the last command of the previous session
    second.expect(drawn("sys | grep -c :"))
    assert run(second, "") == expected
    assert "sys | grep -c :" in run(second, "history 5")
    second.sendline("quit")
    second.expect(pexpect.EOF)
    second.close()
    assert second.exitstatus == 0


def test_pager_only_for_long_output(
    dump: dict[str, Any], tmp_path: Path, started: list[pexpect.spawn]
) -> None:
    env = _env(tmp_path)
    del env["KCRASH_PAGER"]  # the default: less -F -R -X -K
    child = _spawn(dump, env, started, rows=20)
    # `sys` fits on the screen: less -F prints it and quits, the prompt is back
    assert "RELEASE" in run(child, "sys")
    child.sendline("log")  # the kernel log is longer than 20 lines: less waits
    child.expect(r"\n:|\(END\)|--More--")
    child.send("q")
    child.expect(PROMPT)
    child.sendline("foreach bt")  # long, and paged: Ctrl-C leaves pager and command
    child.expect(r"\n:|--More--")
    child.sendintr()
    child.expect(PROMPT)
    assert "RELEASE" in run(child, "sys")
    child.sendline("q")
    child.expect(pexpect.EOF)


# -- -c, -i and piped stdin against the one-shot commands -----------------------------


def test_dash_c_matches_one_shot_commands(dump: dict[str, Any], oneshot: dict[str, str]) -> None:
    expected = oneshot["sys"] + oneshot["bt"]
    crash_order = [dump["vmlinux"], dump["path"]]  # `crash vmlinux vmcore` habits
    for argv in (_args(dump), ["shell", *_args(dump)], crash_order):
        out = subprocess.run(
            [*KCRASH, *argv, "-c", "sys; bt"],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            stdin=subprocess.DEVNULL,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == expected


def test_dash_i_and_piped_stdin_match_one_shot(
    dump: dict[str, Any], oneshot: dict[str, str], tmp_path: Path
) -> None:
    expected = oneshot["sys"] + oneshot["bt"]
    script = tmp_path / "cmds"
    script.write_text("# a command file\nsys\n\nbt\n")
    out = subprocess.run(
        [*KCRASH, *_args(dump), "-i", str(script)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected
    piped = subprocess.run(
        [*KCRASH, *_args(dump)],
        input="sys\nbt\nq\nlog\n",  # nothing after q runs
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == expected


def test_dash_c_failure_is_one_line_and_exit_status(dump: dict[str, Any]) -> None:
    out = subprocess.run(
        [*KCRASH, *_args(dump), "-c", "nosuchcommand; sys | grep -c RELEASE"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert out.returncode == 1
    assert out.stderr.strip() == "kcrash: nosuchcommand: command not found"
    assert out.stdout.strip() == "1"  # the failure did not stop the next command


def test_piped_python_mode(dump: dict[str, Any], target: Any) -> None:
    """Without a terminal, ``py`` reads Python from the same stdin, then back to commands."""
    panic_pid = target.prog.crashed_thread().object.pid.value_()
    out = subprocess.run(
        [*KCRASH, *_args(dump)],
        input="py\nx = task.pid.value_()\nexit()\npy print(x + 1)\nsys | grep -c RELEASE\n",
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(panic_pid + 1), "1"]


def test_arm64_shell_matches_one_shot_commands(corpus: list[dict[str, Any]]) -> None:
    """On arm64 dumps the shell (``-c``) prints what the one-shot commands print, with the
    vmlinux and without it: ``sys`` (MACHINE aarch64), ``bt`` (crash's arm64 register block:
    PC and LR named, X29 … X0), ``mod``."""
    arm = [e for e in corpus if e.get("arch") == "arm64"]
    assert arm, "the corpus has no arm64 dump"
    e = arm[0]
    for args in ([e["path"], e["vmlinux"]], [e["path"], "--no-debuginfo"]):
        one = ""
        for cmd in ("sys", "bt", "mod"):
            p = subprocess.run(
                [*KCRASH, cmd, *args], capture_output=True, text=True, timeout=DEADLINE
            )
            assert p.returncode in (0, 4), p.stderr  # 4: partial (no per-CPU data)
            one += p.stdout
        sh = subprocess.run(
            [*KCRASH, *args, "-c", "sys; bt; mod"],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in sh.stderr, sh.stderr
        assert sh.stdout == one, args
        assert "MACHINE: aarch64  (unknown Mhz)" in one
        assert re.search(r"^     PC: [0-9a-f]{16}  \[kcrash_get_refcount\+\d+\]$", one, re.M), one
        assert re.search(r"^    X29: [0-9a-f]{16}  X28: ", one, re.M)
        assert re.search(r"^\S+\s+kcrash_crash\s", one, re.M)
