"""``kcrash batch`` on real corpus dumps, plus the files a real /var/crash also holds.

The directory under test mixes real dumps (symlinked, as an operator's copy would be), a
garbage file and a truncated copy of a real dump: the garbage and the truncated file must be
listed with their reason, and must not stop the others from being analyzed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import pick

from kcrash.batch_runner import (
    NOT_A_DUMP,
    OK,
    TIMEOUT,
    Options,
    find_inputs,
    output_names,
    run_batch,
    summary_dict,
    write_summary,
)
from kcrash.cli import main
from kcrash.errors import KcrashError


def _deb12(corpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two boots (null-deref, sysrq), null-deref in two formats: two signature buckets."""
    want = [
        ("null-deref", "kdump", "zlib"),
        ("null-deref", "kdump", "lzo"),
        ("sysrq", "kdump", "zlib"),
    ]
    out = []
    for scenario, fmt, comp in want:
        got = pick(corpus, kernel="deb12", scenario=scenario, format=fmt, compression=comp)
        if not got:
            pytest.fail(f"the corpus lacks deb12/{scenario}/{fmt}-{comp}")
        out.append(got[0])
    return out


def _make_input(tmp_path: Path, entries: list[dict[str, Any]]) -> tuple[Path, Path, Path]:
    src = tmp_path / "crashes"
    src.mkdir()
    for e in entries:
        (src / e["id"].replace("/", "_")).symlink_to(e["path"])
    garbage = src / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 64)
    truncated = src / "truncated.kdump-zlib"
    with open(entries[0]["path"], "rb") as f:
        truncated.write_bytes(f.read(os.path.getsize(entries[0]["path"]) // 3))
    return src, garbage, truncated


@pytest.mark.corpus
def test_batch_directory_of_real_dumps(corpus: list[dict[str, Any]], tmp_path: Path) -> None:
    entries = _deb12(corpus)
    src, garbage, truncated = _make_input(tmp_path, entries)
    out = tmp_path / "out"
    # the inputs are symlinks into the corpus: followed on purpose (issue 15)
    opts = Options(debuginfo_dirs=[str(Path(entries[0]["vmlinux"]).parent)], follow_symlinks=True)
    outcomes = run_batch(find_inputs([str(src)]), str(out), opts=opts, jobs=2, timeout=300)

    by_path = {Path(o.path).name: o for o in outcomes}
    assert len(outcomes) == len(entries) + 2
    for e in entries:
        o = by_path[e["id"].replace("/", "_")]
        assert o.status == OK, o.reason
        report = json.loads(Path(o.json).read_text())  # type: ignore[arg-type]
        assert report["signature"]["id"] == o.signature
        assert report["verdict"]["class"] == e["expected"]["class"]
        assert Path(o.text).read_text().strip()  # type: ignore[arg-type]

    g = by_path[garbage.name]
    assert g.status == NOT_A_DUMP
    assert "not a vmcore" in (g.reason or "")
    # A dump cut short in its page data is read as far as it goes (issue 15), and the
    # summary says so.
    t = by_path[truncated.name]
    assert t.status == OK, t.reason
    assert any("truncated" in d and "pages are missing" in d for d in t.degraded), t.degraded

    summary = summary_dict(outcomes, jobs=2, seconds=1.0)
    write_summary(str(out), summary)
    assert summary["analyzed"] == len(entries) + 1
    md = (out / "summary.md").read_text()
    assert "garbage.bin" in md and "truncated.kdump-zlib" in md and "pages are missing" in md
    assert json.loads((out / "summary.json").read_text())["not_analyzed"] == 1
    # The same bug in two formats is one bucket; sysrq is another.
    real = [o for o in outcomes if o.status == OK and o is not t]
    assert len({o.signature for o in real}) == 2


@pytest.mark.corpus
def test_batch_cli_exit_status(corpus: list[dict[str, Any]], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    entries = _deb12(corpus)[:1]
    src, garbage, _ = _make_input(tmp_path, entries)
    di = str(Path(entries[0]["vmlinux"]).parent)
    rc = main(
        [
            "batch",
            str(src),
            "--out",
            str(tmp_path / "o1"),
            "--jobs",
            "2",
            "--debuginfo",
            di,
            "--no-progress",
            "--follow-symlinks",  # the input is a symlink into the corpus
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "2 of 3 files analyzed" in printed and "garbage.bin" in printed

    # Nothing analyzable: the only failure mode with a non-zero status.
    rc = main(["batch", str(garbage), "--out", str(tmp_path / "o2"), "--no-progress"])
    assert rc == 1


@pytest.mark.corpus
def test_batch_timeout_kills_and_goes_on(corpus: list[dict[str, Any]], tmp_path: Path) -> None:
    """A dump that runs past its bound is killed and reported; the next one still runs."""
    entries = _deb12(corpus)[:1]
    src, garbage, _ = _make_input(tmp_path, entries)
    dump = str(src / entries[0]["id"].replace("/", "_"))
    outcomes = run_batch(
        [dump, str(garbage)],
        str(tmp_path / "out"),
        opts=Options(vmlinux=entries[0]["vmlinux"], follow_symlinks=True),
        jobs=1,
        timeout=0.05,
    )
    assert outcomes[0].status == TIMEOUT
    assert "killed" in (outcomes[0].reason or "")
    assert outcomes[1].status == NOT_A_DUMP


def test_output_names_are_unique_and_safe() -> None:
    names = output_names(
        ["/c/a/kdump/vmcore.kdump-zlib", "/c/b/kdump/vmcore.kdump-zlib", "/c/b/x y|z"]
    )
    assert names == ["a_kdump_vmcore.kdump-zlib", "b_kdump_vmcore.kdump-zlib", "b_x_y_z"]
    # "summary" is the batch's own file name; ".x" would hide the report.
    assert output_names(["/d/summary", "/d/.x"]) == ["summary-2", "x"]


def test_find_inputs(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "dump.1").write_bytes(b"x")
    (tmp_path / "d" / ".partial").write_bytes(b"x")
    (tmp_path / "e.vmcore").write_bytes(b"x")
    assert find_inputs([str(tmp_path / "d")]) == [str(tmp_path / "d" / "dump.1")]
    assert find_inputs([str(tmp_path / "*.vmcore")]) == [str(tmp_path / "e.vmcore")]
    with pytest.raises(KcrashError):
        find_inputs([str(tmp_path / "missing")])
    with pytest.raises(KcrashError):
        find_inputs([str(tmp_path / "*.nothing")])


@pytest.mark.corpus
def test_batch_mixed_kernels_find_their_own_vmlinux(
    corpus: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Debian 11 and 12 dumps in one batch: each finds its vmlinux by build id."""
    entries = []
    for kernel in ("deb11", "deb12"):
        got = pick(corpus, kernel=kernel, scenario="null-deref", format="kdump", compression="zlib")
        if not got:
            pytest.fail(f"the corpus lacks {kernel}/null-deref/kdump-zlib")
        entries.append(got[0])
    src = tmp_path / "in"
    src.mkdir()
    for e in entries:
        (src / e["id"].replace("/", "_")).symlink_to(e["path"])
    dirs = sorted({str(Path(e["vmlinux"]).parent) for e in entries})
    outcomes = run_batch(
        find_inputs([str(src)]),
        str(tmp_path / "out"),
        opts=Options(debuginfo_dirs=dirs, follow_symlinks=True),  # links into the corpus
        jobs=2,
    )
    assert [o.status for o in outcomes] == [OK, OK], [o.reason for o in outcomes]
    assert {o.mode for o in outcomes} == {"dwarf"}
    vmlinuxes = {
        json.loads(Path(o.json).read_text())["input"]["vmlinux"]  # type: ignore[arg-type]
        for o in outcomes
    }
    assert vmlinuxes == {os.path.abspath(e["vmlinux"]) for e in entries}
