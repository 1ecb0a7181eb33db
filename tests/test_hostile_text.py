"""Text from a dump or a log never controls a terminal or a page (issue 15, rules 1 and 6).

The hostile inputs are generated here from real material (see ``tests/hostile.py``):
a copy of the shipped real vmcore whose printk buffer, module kallsyms and task log
line carry escape sequences, and the real ``vmcore-dmesg.txt`` of that dump with the
payloads put in its comm, function, module and panic strings.  Every output path is
run over them and asserted to emit no raw control character, while showing the
payload visibly (so the tests cannot pass because the payload vanished).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hostile import (
    BIDI,
    C1_CSI,
    ESC_CLEAR,
    EXAMPLE,
    MARKDOWN_PAYLOADS,
    OSC8_LINK,
    OSC_TITLE,
    RAW_CONTROL,
    kcrash,
    patch_kdump_pages,
    same_length,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from kcrash.textsafe import UNSAFE_RANGES, md_block, md_code, md_text, visible, visible_text

DMESG = Path(__file__).parents[1] / "src" / "kcrash" / "examples" / "vmcore-dmesg.txt"

OOPS_LINE = b"Oops: 0000 [#1] PREEMPT SMP NOPTI"
BUG_LINE = b"BUG: kernel NULL pointer dereference, address: 0000000000000074"
PANIC_PAYLOAD = OSC_TITLE + ESC_CLEAR + BIDI  # 15 bytes in UTF-8 with the bidi override


def assert_no_raw_control(p: subprocess.CompletedProcess[str], what: str) -> None:
    for name, out in (("stdout", p.stdout), ("stderr", p.stderr)):
        bad = RAW_CONTROL.findall(out)
        assert not bad, f"{what}: raw control characters on {name}: {bad[:5]}"
    assert "Traceback" not in p.stderr, p.stderr


def strings(obj: object) -> list[str]:
    """Every string value of a JSON document (decoded: the exact characters)."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in strings(v)]
    return []


@pytest.fixture(scope="module")
def hostile_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real example dump with escape sequences in its memory (printk buffer,
    the module's kallsyms string table)."""
    dst = tmp_path_factory.mktemp("hostile") / "hostile.vmcore"
    n = patch_kdump_pages(
        EXAMPLE,
        dst,
        {
            # the log's oops header: an OSC title, a screen clear and a bidi override
            OOPS_LINE: same_length(b"Oops: 0000 [#1] " + PANIC_PAYLOAD.encode(), OOPS_LINE),
            # the comm in the "CPU: 0 PID: 105 Comm: sh" line
            b"Comm: sh Kdump": same_length(b"Comm: " + ESC_CLEAR.encode(), b"Comm: sh Kdump", b" "),
            # the first line of the oops: a C1 CSI and a bidi override (the Oops line
            # above becomes the PANIC line crash's sys shows)
            BUG_LINE: same_length(b"BUG: " + (C1_CSI + BIDI).encode(), BUG_LINE),
            # a function name in the module's kallsyms and in the log: an OSC 8 link
            b"kcrash_get_refcount": same_length(
                ("kc" + OSC8_LINK).encode(), b"kcrash_get_refcount"
            ),
        },
    )
    assert n >= 2, "the needles were not found in the example dump's memory"
    return dst


@pytest.mark.parametrize(
    "args, shows",
    [
        (
            ["log"],
            ["\\x1b[2J", "\\x1b]0;pwned\\x07", "\\x9b31m\\u202e", "\\x1b]8;;http://e.x/\\x07"],
        ),
        (["sys"], ["\\x1b]0;pwned\\x07"]),
        (["bt"], ["\\x1b]8;;http://e.x/\\x07"]),
        (["mod"], ["kcrash_crash"]),
        (["ps"], ["PID"]),
        (["log", "--json"], ["\\u001b[2J", "\\u202e"]),
        (["sys", "--json"], ["\\u001b]0;pwned"]),
        (["bt", "--json"], ["\\u001b]8;;http://e.x/\\u0007"]),
        (["analyze"], ["\\x1b]0;pwned\\x07"]),
    ],
)
def test_crash_commands_show_escapes_visibly(
    hostile_dump: Path, args: list[str], shows: list[str]
) -> None:
    p = kcrash(args[0], str(hostile_dump), *args[1:])
    assert p.returncode == 0, p.stderr
    assert_no_raw_control(p, " ".join(args))
    for s in shows:
        assert s in p.stdout, (s, p.stdout[-2000:])
    if "--json" in args:  # JSON keeps the exact value
        flat = "\n".join(strings(json.loads(p.stdout)))
        assert any(c in flat for c in ("\x1b", BIDI)), "the exact values were lost"


def test_shell_commands_show_escapes_visibly(hostile_dump: Path) -> None:
    p = kcrash(str(hostile_dump), "-c", "log | tail -40; bt; sys; ps; foreach bt")
    assert_no_raw_control(p, "shell")
    assert "\\x1b[2J" in p.stdout and "\\x1b]8;;http://e.x/\\x07" in p.stdout


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_analyze_dump_every_format(hostile_dump: Path, fmt: str) -> None:
    p = kcrash("analyze", str(hostile_dump), "-f", fmt)
    assert p.returncode == 0, p.stderr
    assert_no_raw_control(p, f"analyze -f {fmt}")
    if fmt == "json":
        assert PANIC_PAYLOAD in "\n".join(strings(json.loads(p.stdout)))  # exact in JSON
    else:
        assert "\\x1b]0;pwned" in p.stdout


def _hostile_log() -> str:
    """The example dump's real vmcore-dmesg.txt with payloads in every interpolated field."""
    text = DMESG.read_text()
    for old, new in (
        ("Comm: sh", "Comm: " + ESC_CLEAR + MARKDOWN_PAYLOADS[0]),
        ("kcrash_get_refcount", "kc" + OSC8_LINK + MARKDOWN_PAYLOADS[1]),
        ("[kcrash_crash]", "[kc" + C1_CSI + "|x]"),
        ("kcrash_crash(OE)", "kc" + C1_CSI + "|x(OE)"),
        ("address: 0000000000000074", "address: 0000000000000074 " + MARKDOWN_PAYLOADS[2]),
        ("Oops: 0000 [#1]", "Oops: 0000 [#1] " + OSC_TITLE + BIDI + MARKDOWN_PAYLOADS[3]),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text + "Kernel panic - not syncing: Fatal " + ESC_CLEAR + MARKDOWN_PAYLOADS[4] + "\n"


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_analyze_log_text_every_format(fmt: str, tmp_path: Path) -> None:
    log = tmp_path / "dmesg.txt"
    log.write_text(_hostile_log())
    p = kcrash("analyze", str(log), "-f", fmt)
    assert p.returncode == 0, p.stderr
    assert_no_raw_control(p, f"analyze LOG -f {fmt}")
    if fmt == "markdown":
        _assert_markdown_inert(p.stdout)
    if fmt == "html":
        assert "<script>" not in p.stdout and "<img" not in p.stdout
        assert "&lt;script&gt;" in p.stdout or "&lt;img" in p.stdout


def _assert_markdown_inert(doc: str) -> None:
    """No HTML, image or link, and table rows keep their cell counts."""
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(doc)
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or []}
    for bad in ("html_block", "html_inline", "image", "link_open"):
        assert bad not in kinds, (bad, doc)
    # GFM pads or drops cells silently, so count the unescaped pipes of each table's rows
    tables: list[list[int]] = [[]]
    for line in doc.splitlines():
        if line.startswith("|"):
            tables[-1].append(re.sub(r"\\.", "", line).count("|"))
        elif tables[-1]:
            tables.append([])
    for rows in tables:
        assert len(set(rows)) <= 1, (rows, doc)


def test_batch_table_escapes_names(tmp_path: Path) -> None:
    """A file name with ESC, a newline and Markdown goes escaped into every summary."""
    src = tmp_path / "in"
    src.mkdir()
    name = "a\x1b[2J\n<img src=x onerror=alert(1)>|b.vmcore"
    (src / name).write_bytes(b"not a dump at all\n" * 10)
    out = tmp_path / "out"
    p = kcrash("batch", str(src), "--out", str(out), "--jobs", "1", "--no-progress")
    assert_no_raw_control(p, "batch")
    md = (out / "summary.md").read_text()
    assert not RAW_CONTROL.search(md)
    _assert_markdown_inert(md)
    assert "\\x1b[2J" in md
    js = (out / "summary.json").read_text()
    assert not RAW_CONTROL.search(js)
    assert json.loads(js)["dumps"][0]["path"].endswith(name)  # JSON keeps the exact name


# ---------------------------------------------------------------- the sanitiser itself

_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list("\x1b\x07\x9b\u202e\u2066\r\n\t|`*_[]()<>!&#\\~-=+ 1.")),
    ),
    max_size=60,
)


@_FUZZ
@given(_TEXT)
def test_fuzz_visible_never_emits_a_control(s: str) -> None:
    assert not RAW_CONTROL.search(visible(s))
    assert "\n" not in visible(s) and "\t" not in visible(s)
    kept = visible_text(s)
    assert not RAW_CONTROL.search(kept)
    assert kept.count("\n") == s.count("\n")
    # text with none of the table's characters is left alone
    if not any(lo <= c <= hi for c in s for lo, hi, _ in UNSAFE_RANGES):
        assert visible(s) == s


_MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")


def _inline_text(doc: str) -> tuple[set[str], str]:
    tokens = _MD.parse(doc)
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or []}
    text = "".join(c.content for t in tokens for c in t.children or [] if c.type == "text")
    return kinds, text


@_FUZZ
@given(_TEXT)
def test_fuzz_markdown_text_is_literal(s: str) -> None:
    """Rendered, md_text(s) is one paragraph of plain text equal to visible(s)."""
    kinds, text = _inline_text(md_text(s))
    if not visible(s):
        return
    assert kinds <= {"paragraph_open", "inline", "paragraph_close", "text"}, (s, kinds)
    assert text == visible(s), (s, md_text(s))


@_FUZZ
@given(_TEXT)
def test_fuzz_markdown_code_and_table_cells(s: str) -> None:
    """A code span is literal, and in a table a value never adds or removes a cell."""
    v = visible(s)
    if v.strip(" "):
        tokens = _MD.parse(md_code(s))
        kids = [c for t in tokens for c in t.children or []]
        assert [c.type for c in kids] == ["code_inline"], (s, md_code(s))
        assert kids[0].content.strip(" ") == v.strip(" ")
    table = f"| a | b |\n|---|---|\n| {md_text(s)} | {md_code(s, table=True)} |\n"
    tokens = _MD.parse(table)
    assert sum(t.type == "td_open" for t in tokens) == 2, (s, table)
    assert not {c.type for t in tokens for c in t.children or []} & {"html_inline", "image"}


@_FUZZ
@given(st.lists(_TEXT, max_size=5))
def test_fuzz_markdown_block_stays_one_block(lines: list[str]) -> None:
    tokens = _MD.parse("\n".join(md_block(lines)))
    assert [t.type for t in tokens] == ["fence"], lines
    assert tokens[0].content == "".join(visible(x) + "\n" for x in lines)


@pytest.mark.corpus
@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_analyze_crash_session_text(
    kdump_zlib: list[dict[str, Any]], tmp_path: Path, fmt: str
) -> None:
    """A pasted crash session (crash's own sys/bt/log of a corpus dump) with an OSC 8
    hyperlink in the comm, a C1 CSI in a function name and a bidi override in PANIC."""
    e = next(x for x in kdump_zlib if x["scenario"] == "null-deref")
    parts = []
    for cmd in ("sys", "bt", "log"):
        parts += [f"crash> {cmd}", Path(e["oracle"][cmd]).read_text()]
    text = "\n".join([*parts, "crash> quit", ""])
    for old, new in (
        ('COMMAND: "sh"', 'COMMAND: "' + OSC8_LINK + "sh" + MARKDOWN_PAYLOADS[1] + '"'),
        ("kcrash_get_refcount", "kcrash_get" + C1_CSI + "_refcount"),
        ('PANIC: "', 'PANIC: "' + BIDI + MARKDOWN_PAYLOADS[2]),
    ):
        assert old in text, old
        text = text.replace(old, new)
    session = tmp_path / "session.txt"
    session.write_text(text)
    p = kcrash("analyze", str(session), "-f", fmt)
    assert p.returncode == 0, p.stderr
    assert_no_raw_control(p, f"analyze crash session -f {fmt}")
    if fmt == "markdown":
        _assert_markdown_inert(p.stdout)
    if fmt == "json":
        values = "\n".join(strings(json.loads(p.stdout)))
        assert all(c in values for c in ("\x9b", "\x1b", BIDI))  # exact in JSON
    else:
        assert "\\u202e" in p.stdout  # the PANIC line, shown
