"""Build the report dict (schema ``docs/report-schema.json``) from facts and diagnoses.

The report is the one model every renderer reads; its JSON form is the
stable interface for other tools.  All sentences are rendered here, in the
requested language, from the diagnosis's message ids (rule catalogues) and
the report labels: renderers never compose prose of their own.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .. import __version__
from ..model import CrashFacts, Frame, Stack
from ..notes import in_lang
from ..steps import Steps
from ..sys_rows import system_values
from .labels import labels

#: 1.1: ``verdict.crash_site`` (the function at RIP/pc) beside ``verdict.culprit``
#: 1.2: ``objects`` (bad pointers: poison, slab cache/object/tracks) and the memory
#: picture of an OOM in ``context.memory`` (breakdown, caches, leak suspect, cgroup)
#:      ``hang`` (issue 18): the wait-for graph of blocked tasks, their locks and holders
SCHEMA_VERSION = "1.3"


def _frame(f: Frame) -> dict[str, Any]:
    d = asdict(f)
    d.pop("regs", None)
    d["exception"] = f.regs is not None  # an exception/interrupt frame starts here
    d["symbol"] = f.symbol
    return d


def _stack(st: Stack | None) -> dict[str, Any] | None:
    if st is None:
        return None
    return {
        "pid": st.pid,
        "comm": st.comm,
        "cpu": st.cpu,
        "task": st.task,
        "error": st.error,
        "frames": [_frame(f) for f in st.frames],
    }


def _verdict(diag: Any, msgs: dict[str, Any]) -> dict[str, Any]:
    c = diag.culprit
    culprit = None
    if c is not None:
        culprit = {
            "function": c.function,
            "module": c.module,
            "symbol": c.symbol,
            "source": c.source,
            "out_of_tree": c.out_of_tree,
            "unsigned": c.unsigned,
            "proprietary": c.proprietary,
            "reason": msgs["culprit_reason"],
        }
    s = getattr(diag, "crash_site", None)
    site = None
    if s is not None:
        site = {"function": s.function, "module": s.module, "symbol": s.symbol, "source": s.source}
    return {
        "class": diag.class_id,
        "class_name": msgs["class_name"],
        "title": diag.title,
        "summary": msgs["meaning"],
        "crash_site": site,
        "culprit": culprit,
        "cpu": diag.cpu,
        "pid": diag.pid,
        "comm": diag.comm,
        "source": diag.source,
    }


def _evidence(
    diag: Any, msgs: dict[str, Any], lang: str, access: dict[str, Any] | None
) -> dict[str, Any]:
    ev = diag.evidence
    lb = labels(lang)
    decoded = [{"label": None, "text": t} for t in msgs["evidence"]]
    if access and access.get("expression"):
        text = lb["access_member"].format(
            instruction=access["instruction"],
            expression=access["expression"],
            struct=access["struct"],
            offset=f"{access['member_offset']:#x}",
            register=access["base_register"],
            value=f"{access['base_value']:#x}",
        )
        decoded.insert(0, {"label": lb["access"], "text": text})
    code = [
        ("=> " if cl.faulting else "   ") + f"{cl.offset:+4d}: {cl.bytes:<24} {cl.text}"
        for cl in ev.code
    ]
    regs = {}
    for k, v in ev.registers.items():
        try:
            regs[k.lower()] = int(v, 16) if isinstance(v, str) else int(v)
        except ValueError:
            continue
    return {
        "header": ev.header,
        "panic_message": ev.panic_message,
        "oops_number": ev.oops_number,
        "taint": ev.taint,
        "taint_flags": ev.taint_flags,
        "page_fault": ev.page_fault,
        "fault_address": ev.fault_address,
        "address_kind": ev.address_kind,
        "fault_instruction": ev.fault_instruction,
        "fault_register": ev.fault_register,
        "access": access,
        "decoded": decoded,
        "code": code,
        "registers": regs,
        "call_trace": [_frame(f) for f in diag.frames],
        "related": list(diag.related),
    }


def _one(diag: Any, lang: str, access: dict[str, Any] | None = None) -> dict[str, Any]:
    from ..diagnosis import render_messages

    msgs = render_messages(diag, lang)
    if access and access.get("expression"):
        # The dump already answered "which variable was in that register?":
        # replace that generic step with the named pointer.
        lb = labels(lang)
        variable = access["expression"].split("->")[0]
        step = lb["access_step"].format(
            expression=access["expression"],
            variable=variable,
            struct=access["struct"],
            function=(diag.culprit.function if diag.culprit else variable),
        )
        msgs["next_steps"] = [
            step if m.id == "next.null_register" else text
            for m, text in zip(diag.next_steps, msgs["next_steps"], strict=True)
        ]
    return {
        "verdict": _verdict(diag, msgs),
        "signature": asdict(diag.signature),
        "explanation": [msgs["meaning"], *msgs["explanation"]],
        "next_steps": msgs["next_steps"],
        "evidence": _evidence(diag, msgs, lang, access),
    }


def _no_verdict(facts: CrashFacts, lang: str) -> dict[str, Any]:
    from ..diagnosis import render

    return {
        "verdict": {
            "class": "unknown",
            "class_name": render("class.unknown", {}, lang),
            "title": facts.system.panic or labels(lang)["no_crash_found"],
            "summary": None,
            "crash_site": None,
            "culprit": None,
        },
        "signature": {"scheme": "v1", "id": None, "title": None, "attributes": {}, "key": []},
        "explanation": [],
        "next_steps": [],
        "evidence": {"decoded": [], "code": [], "registers": {}, "call_trace": []},
    }


def build_report(
    facts: CrashFacts,
    diags: list[Any],
    steps: Steps,
    *,
    lang: str,
    input_info: dict[str, Any],
    access: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole report: primary crash at the top level, others in ``other_reports``."""
    primary = _one(diags[0], lang, access) if diags else _no_verdict(facts, lang)
    if facts.memory or facts.bad_pointers:
        from .memslab import next_steps

        # The dump named the cache, the cgroup or the freed object: say so first.
        found = next_steps(facts.memory, facts.bad_pointers, labels(lang))
        primary["next_steps"] = [*found, *primary["next_steps"]]
    # kcrash's own sentences (what a mode lacks, a step's reason, KERNEL without
    # vmlinux) are Notes: rendered here in the report's language.
    system = {
        k: in_lang(v, lang) if isinstance(v, str) else v
        for k, v in system_values(facts.system).items()
    }
    system["unknown"] = {k: in_lang(v, lang) for k, v in facts.system.unknown.items()}
    input_info = {**input_info, "lacks": [in_lang(x, lang) for x in input_info.get("lacks") or []]}
    from .hang import hang_section, hang_steps

    hang = hang_section(facts.waits, lang)
    spins = [sp["sentence"] for sp in (hang or {}).get("spinlocks") or []]
    if hang and (hang.get("summary") or spins):
        # What the graph shows goes first: it is the answer to "why is it hung"; for a CPU
        # spinning on a spinlock, which lock and which CPU's task holds it.
        said = [hang["summary"]] if hang.get("summary") else []
        primary["explanation"] = [*primary["explanation"], *said, *spins]
        # The generic "find what it waits for / who holds it" steps are answered now.
        from ..crash_classes import RULES_BY_ID

        rule = RULES_BY_ID.get(diags[0].class_id) if diags else None
        answered = {f"rule.{rule.id}.next.{i}" for i in rule.answered_by_waits} if rule else set()
        kept = [
            text
            for m, text in zip(diags[0].next_steps, primary["next_steps"], strict=False)
            if m.id not in answered
        ] if diags else primary["next_steps"]  # fmt: skip
        primary["next_steps"] = [*hang_steps(hang), *kept]
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "kcrash", "version": __version__},
        "lang": lang,
        "input": input_info,
        **primary,
        "system": system,
        "context": {
            "panic_stack": _stack(facts.panic_stack),
            "cpu_stacks": [_stack(s) for s in facts.cpu_stacks],
            "blocked_tasks": [_stack(s) for s in facts.blocked_tasks],
            "modules": [
                {**asdict(m), "out_of_tree": m.out_of_tree, "unsigned": m.unsigned}
                for m in facts.modules
            ],
            "memory": facts.memory or None,
        },
        "hang": hang,
        "steps": [
            {**asdict(r), "reason": in_lang(r.reason, lang) if r.reason else r.reason}
            for r in steps.records
        ],
        "other_reports": [{**_one(d, lang), "position": _position(d, diags[0])} for d in diags[1:]],
        "objects": facts.bad_pointers or None,
    }
    return report


def _position(other: Any, primary: Any) -> str | None:
    """ "before" or "after" the primary crash in the log (None when unknown)."""
    a, b = getattr(other, "event", None), getattr(primary, "event", None)
    if a is None or b is None:
        return None
    return "before" if a.line_index < b.line_index else "after"
