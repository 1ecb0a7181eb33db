"""A Chinese report (``--lang zh``) says every sentence in Chinese, in every output format.

What counts as an English leak, precisely: after dropping what is not prose
(Markdown code spans in backquotes, HTML markup, and English glosses in
full-width parentheses right after the Chinese term, e.g. ``软死锁（soft
lockup）``), an ASCII word of three letters or more is a leak unless it is

- part of an identifier-like token: one holding a digit, ``_``, ``.``, ``/``,
  ``:``, ``=`` or ``$`` (function and module names, paths, addresses, hex,
  symbols, versions, ``kernel.panic_on_warn``, ``root=``);
- written in capitals (an acronym or a register: CPU, RIP, NMI, BTF; crash's
  ``sys`` field names and its markers ``[TAINTED]``, ``[PARTIAL DUMP]``,
  kept as crash prints them so the two can be compared);
- a word of the input: it occurs in a *value* of the report (a string of the
  JSON report outside its sentences: the panic line, the report's first
  line, function, module and command names, paths, system fields);
- one of :data:`TERMS`, kernel and tool vocabulary that Chinese kernel
  writing keeps as is (each with its reason).

Which strings of the JSON report are sentences (kcrash's own words, which
must be in Chinese) is listed in :func:`_sentences`; the rest are values.
Run on every output path: one dump of every format and of every scenario of
the corpus, with and without debuginfo; the kernel log text of every scenario;
damaged dumps (cut short at two points, page data zeroed); and ``kcrash
batch`` (each report it writes and its summary, whose reasons for a file it
could not analyze are kcrash's error lines, English as printed, so values).
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from checks import each
from conftest import pick
from hostile import flip_bit, kdump_offsets, truncate, zero_block

from kcrash.batch_runner import OK, Options, run_batch, summary_dict, summary_markdown
from kcrash.pipeline import analyze_path, render_to_string
from kcrash.report.render_text import render as render_text

#: Words kept in English by Chinese kernel writing (and by kcrash's zh catalogue).
TERMS = {
    # what crashes are called, and the kernel's own facilities
    "panic": "the kernel's panic(), named as in its messages",
    "oops": "the kernel's 'Oops' report",
    "lockdep": "the kernel's lock validator",
    "kmemleak": "the kernel's leak detector",
    "sanitizer": "KASAN/KCSAN/UBSAN are 'sanitizers' in the kernel's docs",
    "slab": "the kernel's object allocator",
    "vmalloc": "the kernel's allocator",
    "initramfs": "the early root file system",
    "completion": "struct completion, a kernel wait primitive",
    "put": "the get/put reference-counting pair (dev_hold/dev_put)",
    "flags": "struct page's 'flags' field as printed by dump_page()",
    "mapcount": "struct page's field as printed by dump_page()",
    "refcount": "struct page's field as printed by dump_page()",
    "bank": "an MCE register name (MCi_STATUS of bank i)",
    "status": "an MCE register name (MCi_STATUS)",
    "staging": "drivers/staging, the taint C",
    "retpoline": "the Spectre-v2 thunk's name",
    "thunk": "the retpoline thunk",
    "dead": "the 0xdead… list-poison pattern",
    "div": "an x86 instruction",
    "idiv": "an x86 instruction",
    # formats and tools
    "vmlinux": "the kernel image file",
    "vmcore": "the dump file",
    "kallsyms": "the kernel's symbol table",
    "crash": "the crash utility",
    "kcrash": "this tool",
    "gdb": "the debugger",
    "mcelog": "a tool's name",
    "rasdaemon": "a tool's name",
    "iLO": "HPE's management controller",
    "Mem-Info": "the heading of the OOM report",
    "Panic": "the kernel's panic(), at the start of a heading",
    "SysRq": "the Magic SysRq key, named as in the kernel's docs",
    "Mhz": "crash's unit in the MACHINE field",
}

#: Spans that are not prose: code in backquotes, and an English gloss in
#: full-width parentheses right after a Chinese character.
_NOT_PROSE = re.compile(r"`[^`\n]*`|(?<=[\u4e00-\u9fff])（[^（）]*）")
_TOKEN = re.compile(r"[A-Za-z0-9_./:=$+\-]+")
_IDENTIFIER = re.compile(r"[0-9_./:=$]")


def _tokens(text: str) -> list[str]:
    """ASCII tokens of ``text``, without the punctuation that ends a phrase."""
    return [t for t in (tok.strip("-.:+") for tok in _TOKEN.findall(text)) if t]


def _words(text: str) -> set[str]:
    """ASCII words of ``text``, hyphenated words split (so ``out-of-tree`` is three)."""
    out = set()
    for tok in _tokens(text):
        out.add(tok)
        out.update(w for w in tok.split("-") if w)
    return out


def leaks(text: str, values: set[str]) -> list[str]:
    """English words of ``text`` by the definition of this module's docstring."""
    found = []
    for tok in _tokens(_NOT_PROSE.sub(" ", text)):
        if not tok or _IDENTIFIER.search(tok) or tok in TERMS or tok in values:
            continue
        for w in tok.split("-"):
            letters = sum(c.isalpha() for c in w)
            if letters < 3 or w.isupper() or w in TERMS or w in values:
                continue
            found.append(w)
    return found


def _sentences(report: dict[str, Any]) -> list[str]:
    """Every string of ``report`` that is kcrash's own words (the rest are values)."""
    out: list[str] = []

    def one(r: dict[str, Any]) -> None:
        v = r["verdict"]
        out.extend(x for x in (v.get("class_name"), v.get("summary")) if x)
        if v.get("culprit"):
            out.append(v["culprit"]["reason"])
        out.extend(r.get("explanation") or [])
        out.extend(r.get("next_steps") or [])
        for item in r["evidence"].get("decoded") or []:
            out.extend(x for x in (item.get("label"), item["text"]) if x)

    one(report)
    for o in report.get("other_reports") or []:
        one(o)
    out.extend(report["input"].get("lacks") or [])
    out.extend(s["reason"] for s in report.get("steps") or [] if s.get("reason"))
    out.extend((report.get("system") or {}).get("unknown", {}).values())  # why a field is unknown
    if not report["input"].get("vmlinux") and report.get("system", {}).get("kernel"):
        out.append(report["system"]["kernel"])  # "(no vmlinux: …)" is kcrash's sentence
    return out


def _values(report: dict[str, Any]) -> set[str]:
    """The words of every string of ``report`` that is not one of its sentences."""
    sentences = set(_sentences(report))
    words: set[str] = set()

    def walk(x: Any, key: str = "") -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if k not in ("lang", "class_name", "summary", "reason", "label", "text"):
                    walk(v, k)
        elif isinstance(x, list):
            for v in x:
                walk(v, key)
        elif isinstance(x, str) and x not in sentences:
            words.update(_words(x))

    walk(report)
    return words


class _Text(HTMLParser):
    """The text a browser shows: no markup, no <style>/<head>; a <code> element in
    backquotes (a backquote inside it is part of the code, not a span of its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0
        self._code = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._skip += tag in ("style", "head", "title")
        if tag == "code":
            self._code += 1
            self.parts.append("`")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "head", "title")
        if tag == "code":
            self._code -= 1
            self.parts.append("`")
        self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data.replace("`", "'") if self._code else data)


def _html_text(page: str) -> str:
    p = _Text()
    p.feed(page)
    return html.unescape("".join(p.parts))


def outputs(report: dict[str, Any]) -> dict[str, str]:
    """Each output path's words: text (unwrapped), Markdown, HTML as shown, JSON's sentences."""
    return {
        "text": render_text(report, width=2000),
        "markdown": render_to_string(report, "markdown"),
        "html": _html_text(render_to_string(report, "html")),
        "json": "\n".join(_sentences(json.loads(render_to_string(report, "json")))),
    }


def check_report(report: dict[str, Any]) -> None:
    assert report["lang"] == "zh"
    values = _values(report)
    bad = {fmt: sorted(set(leaks(text, values))) for fmt, text in outputs(report).items()}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"English in a Chinese report: {bad}"
    assert re.search(r"[\u4e00-\u9fff]", "".join(_sentences(report)))


def kinds(corpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dump of every format (and compression) and one of every scenario."""
    chosen: dict[str, dict[str, Any]] = {}
    for e in corpus:
        chosen.setdefault(f"{e['format']}/{e.get('compression')}", e)
    for e in corpus:
        if e not in chosen.values():
            chosen.setdefault(f"scenario {e['kernel']}/{e['scenario']}", e)
    return list(chosen.values())


def test_the_definition_catches_english() -> None:
    """The check itself: English prose is caught, identifiers and Chinese are not."""
    values = _words("kernel BUG at kcrash_crash.c:70!")
    assert leaks("no source lines (no DWARF): install linux-image-6.1-dbg", values) == [
        "source",
        "lines",
        "install",
    ]
    assert leaks("树外模块 out-of-tree", values) == ["out", "tree"]
    assert leaks("肇事函数: kcrash_bug_on [kcrash_crash] — kcrash_crash.c:70", values) == []
    assert leaks("软死锁（soft lockup）", values) == []
    assert leaks("kernel BUG at kcrash_crash.c:70!", values) == []
    assert leaks("RIP: 0010:ffffffffc03c7040 [TAINTED]", values) == []


def test_chinese_report_of_every_dump_kind(corpus: list[dict[str, Any]]) -> None:
    def check(e: dict[str, Any]) -> None:
        for dwarf in (True, False):
            check_report(
                analyze_path(
                    e["path"], e["vmlinux"] if dwarf else None, no_debuginfo=not dwarf, lang="zh"
                )
            )

    each(kinds(corpus), check)


def test_chinese_report_of_kernel_log_text(corpus: list[dict[str, Any]]) -> None:
    """The log of every scenario (as kdump saved it) and the built-in example's."""
    logs = {e["boot"]: e["dmesg"] for e in corpus if e.get("dmesg")}
    example = Path(__file__).parents[1] / "src" / "kcrash" / "examples" / "vmcore-dmesg.txt"
    entries = [{"id": b, "dmesg": p} for b, p in logs.items()]
    entries.append({"id": "example", "dmesg": str(example)})
    each(entries, lambda e: check_report(analyze_path(e["dmesg"], lang="zh")))


def _null_deref(corpus: list[dict[str, Any]]) -> dict[str, Any]:
    got = pick(corpus, kernel="deb12", scenario="null-deref", format="kdump", compression="zlib")
    assert got, "the corpus lacks deb12/null-deref/kdump-zlib"
    return got[0]


def _damaged(src: Path, tmp_path: Path) -> list[Path]:
    """``src`` (kdump-compressed) cut in its page data at two points, with page data
    zeroed, and with a page-bitmap bit flipped."""
    off = kdump_offsets(src)
    out = []
    for name, make in (
        ("cut-98", lambda d: truncate(src, d, 0.985)),
        ("cut-70", lambda d: truncate(src, d, 0.70)),
        ("zeroed", lambda d: zero_block(src, d, off["page_data"] + 4096 * 64, 1 << 20)),
        # one page-bitmap bit off: some sys fields cannot be read ("unknown: why")
        ("bitmap-bit", lambda d: flip_bit(src, d, off["bitmap2"] + 100, 3)),
    ):
        path = tmp_path / f"{name}.vmcore"
        make(path)
        out.append(path)
    return out


def test_chinese_report_of_a_damaged_dump(corpus: list[dict[str, Any]], tmp_path: Path) -> None:
    """What a damaged dump lacks (cut short, unreadable pages, failed steps) in Chinese."""
    e = _null_deref(corpus)
    vmlinux = e["vmlinux"]
    entries = [{"id": p.name, "path": str(p)} for p in _damaged(Path(e["path"]), tmp_path)]

    def check(e: dict[str, Any]) -> None:
        for dwarf in (True, False):
            report = analyze_path(
                e["path"], vmlinux if dwarf else None, no_debuginfo=not dwarf, lang="zh"
            )
            check_report(report)

    each(entries, check)
    cut = analyze_path(entries[0]["path"], no_debuginfo=True, lang="zh")
    assert any(x.startswith("转储已截断") for x in cut["input"]["lacks"]), cut["input"]["lacks"]
    flipped = analyze_path(entries[3]["path"], vmlinux, lang="zh")
    unknown = flipped["system"]["unknown"]
    assert unknown and all(re.search(r"[\u4e00-\u9fff]", v) for v in unknown.values()), unknown


def test_chinese_batch(corpus: list[dict[str, Any]], tmp_path: Path) -> None:
    """``kcrash batch --lang zh``: every report it writes, and its summary."""
    chosen = [
        pick(corpus, kernel=k, scenario=s, format="kdump", compression="zlib")[0]
        for k, s in (("deb12", "hung-task"), ("deb13", "warn"), ("deb11", "soft-lockup"))
    ]
    damaged = _damaged(Path(_null_deref(corpus)["path"]), tmp_path)[:2]
    paths = [e["path"] for e in chosen] + [str(p) for p in damaged]
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 64)
    paths.append(str(garbage))
    opts = Options(lang="zh", no_debuginfo=True)
    outcomes = run_batch(paths, str(tmp_path / "out"), opts=opts, jobs=2, timeout=300)
    assert [o.status == OK for o in outcomes] == [True] * 5 + [False]
    for o in outcomes[:5]:
        report = json.loads(Path(o.json).read_text(encoding="utf-8"))  # type: ignore[arg-type]
        check_report(report)  # every format of the report it wrote (its .txt is one)
    summary = summary_dict(outcomes, jobs=2, seconds=1.0, lang="zh")
    sentences = [d for o in summary["dumps"] for d in o["degraded"]]
    assert any(d.startswith("转储已截断") for d in sentences), sentences
    values: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if k != "degraded":
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, str):
            values.update(_words(x))

    walk(summary)
    md = summary_markdown(summary)
    bad = sorted(set(leaks(md, values)))
    assert not bad, f"English in the Chinese batch summary: {bad}"
