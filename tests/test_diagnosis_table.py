"""A crash class is one row of ``crash_classes.py``, its catalogue keys and a sample.

What this enforces, so that adding a class cannot need an edit nobody is told
about (issue 14):

* every row's message ids exist in both catalogues (``rules.en.json`` and
  ``rules.zh.json``), and every ``class.<id>`` of the catalogues has a row;
* every name a row uses (evidence, context, skip tables, trailers, culprit
  strategy, block-start kind) is defined where the row says;
* every trailer's pattern matches its own wording, and its sentence exists;
* every class has a sample (real log text of ``tests/data/``, else a
  hand-built one of ``test_diagnosis_rules.SAMPLES``) that the whole text path
  (block cutting, classification) turns into that class;
* no module outside the table lists class ids: the per-class behaviour lives
  in the row, not in lists elsewhere (an AST search of ``src/``).
"""

from __future__ import annotations

import ast
import io
import json
import re
from importlib import resources
from pathlib import Path

from test_diagnosis_rules import SAMPLES

from kcrash.crash_classes import (
    _NOT_SYNCING,
    CONTEXT,
    EVIDENCE,
    RULES,
    RULES_BY_ID,
    TRAILER_TARGETS,
    TRAILERS,
)
from kcrash.diagnosis import diagnose
from kcrash.diagnosis.culprit import CLASS_SKIPS
from kcrash.errors import KcrashError
from kcrash.oops.text import read_text

SRC = Path(__file__).parents[1] / "src" / "kcrash"
DATA = Path(__file__).parent / "data"
#: Rule.culprit values :func:`kcrash.diagnosis.culprit.blame` and the engine know.
STRATEGIES = {
    "first",
    "access",
    "anchor",
    "sleeping",
    "waits",
    "lock",
    "message",
    "overflow",
    "recursion",
    "none",
}
#: the kinds :mod:`kcrash.oops.blocks` gives a start line
START_KINDS = {"pre", "start", "aside"}
CLASSES = [r for r in RULES if not r.trailer]


def _catalogue(lang: str) -> dict[str, str]:
    ref = resources.files("kcrash.report").joinpath("i18n", f"rules.{lang}.json")
    return json.loads(ref.read_text(encoding="utf-8"))


def test_every_row_has_its_sentences_in_both_languages() -> None:
    for lang in ("en", "zh"):
        cat = _catalogue(lang)
        for r in RULES:
            for key in (f"class.{r.id}", r.meaning_id, r.explanation_id, *r.next_step_ids):
                assert key in cat, f"{lang}: {key}"
        rows = {k.split(".", 1)[1] for k in cat if k.startswith("class.")}
        assert rows - {"unknown"} == set(RULES_BY_ID), f"{lang}: class.* without a row"


def test_every_name_a_row_uses_is_defined() -> None:
    wordings = {t.wording for t in TRAILERS}
    for r in RULES:
        assert r.culprit in STRATEGIES, r.id
        assert set(r.evidence) <= set(EVIDENCE), r.id
        assert set(r.context) <= set(CONTEXT), r.id
        assert set(r.skip_tables) <= set(CLASS_SKIPS), r.id
        assert set(r.trailed_by) <= wordings, r.id
        assert set(r.folds) <= set(RULES_BY_ID), r.id
        assert {kind for kind, _ in r.starts} <= START_KINDS, r.id
        for _, rx in r.starts:
            re.compile(rx)
    used = {name for r in RULES for name in r.skip_tables}
    assert used == set(CLASS_SKIPS), "a skip table no row uses"


def test_trailers_match_their_wording_and_have_a_sentence() -> None:
    cats = [_catalogue("en"), _catalogue("zh")]
    trailer_row = next(r for r in RULES if r.trailer)
    for t in TRAILERS:
        line = f"Kernel panic - not syncing: {t.wording}"
        m = re.search(_NOT_SYNCING + t.pattern, line)
        assert m is not None and m.group("q") == t.wording, t.wording
        assert trailer_row.match(line) is not None, t.wording
        for cat in cats:
            assert f"explain.trailer.{t.key}" in cat, t.key
    # a report lost before panic_on_warn's panic(): the most generic class, WARNING
    assert TRAILER_TARGETS["panic_on_warn set"][-1] == "warn"


def _real_samples() -> list[tuple[str, str]]:
    """(name, text) of the real logs: tests/data/oops, then syzkaller's reports."""
    files = sorted((DATA / "oops").glob("*.txt"))
    files += sorted((DATA / "syzkaller" / "report").iterdir(), key=lambda p: p.name)
    return [(p.name, p.read_text(encoding="utf-8", errors="replace")) for p in files]


def _primary_class(text: str) -> str | None:
    try:
        return diagnose(read_text(io.StringIO(text)).facts)[0].class_id
    except KcrashError:
        return None


def test_every_class_has_a_sample() -> None:
    """Real text first; a hand-built sample (cited printk format) where none exists."""
    missing = {r.id for r in CLASSES}
    for _name, (text, cls, _culprit) in SAMPLES.items():
        if cls in missing and _primary_class(text) == cls:
            missing.discard(cls)
    for _name, text in _real_samples():
        if not missing:
            break
        cls = _primary_class(text)
        missing.discard(cls)  # type: ignore[arg-type]
    assert not missing, f"classes without a sample: {sorted(missing)}"


#: Class ids that are also other words of the code; a literal of one is only a
#: class name when it sits with another class id or is compared with a class.
AMBIGUOUS = {
    "panic": "the kernel's panic() (a frame name), crash's PANIC field",
    "nmi": "a frame's interrupt context and a kind of log block",
    "warn": "taint flag W and a doctor verdict level",
    "sysrq": "the kernel.sysrq sysctl that doctor checks",
    "oops": "the oops-text parser's name",
}


def _is_class_name(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    if not isinstance(node, ast.Constant) or node.value not in RULES_BY_ID:
        return False
    if node.value not in AMBIGUOUS:
        return True
    parent = parents.get(node)
    if isinstance(parent, (ast.Tuple, ast.List, ast.Set)):
        others = [e for e in parent.elts if e is not node]
        if any(isinstance(e, ast.Constant) and e.value in RULES_BY_ID for e in others):
            return True
    if isinstance(parent, ast.Dict):
        others = [k for k in parent.keys if k is not node]
        if any(isinstance(k, ast.Constant) and k.value in RULES_BY_ID for k in others):
            return True
    if isinstance(parent, ast.Compare):
        names = [ast.unparse(x) for x in (parent.left, *parent.comparators)]
        return any("class" in n or n.endswith(".id") or n == "cls" for n in names)
    return False


def test_no_module_outside_the_table_lists_class_names() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "crash_classes.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if _is_class_name(node, parents):
                where = path.relative_to(SRC)
                found.append(f"{where}:{node.lineno}: {node.value!r}")  # type: ignore[attr-defined]
    assert not found, "class ids outside crash_classes.py:\n" + "\n".join(found)
