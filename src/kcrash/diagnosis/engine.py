"""``diagnose(facts)``: from facts to verdicts.  No I/O, no drgn, no printing.

Why the culprit comes from the log event first: a vmcore and its
``vmcore-dmesg.txt`` (or the console capture) share the same oops text, so
taking class, culprit and signature from the event makes all modes agree.
The vmcore's own unwound stack (``facts.panic_stack``) only adds source
lines, or stands in when the log has no event at all.
"""

from __future__ import annotations

import re
from typing import Any

from kcrash.crash_classes import (
    OOPS_CLASS,
    PANIC_CLASS,
    RULES_BY_ID,
    TRAILER_TARGETS,
    TRAILERS_BY_WORDING,
    Rule,
    classify_lines,
    has_evidence,
)
from kcrash.diagnosis import decode
from kcrash.diagnosis.classify import Classified, classify_events, select
from kcrash.diagnosis.culprit import Pick, base_name, blame, is_skipped, skip_reason
from kcrash.diagnosis.signature import make_signature, normalize_function
from kcrash.diagnosis.verdict import CodeLine, Culprit, Diagnosis, Evidence, Message
from kcrash.model import CrashFacts, Frame, ModuleInfo, OopsEvent
from kcrash.oops.lines import FAULT_ADDR_RES, parse_frame

_LIST_BAD_RE = re.compile(
    r"but was (?:0x)?(?P<v>[0-9a-f]{6,16})|is (?:LIST_POISON\d|NULL) \((?:0x)?(?P<p>[0-9a-f]+)\)"
)


def _list_bad_pointer(lines: list[str]) -> int | None:
    """The corrupted pointer a lib/list_debug.c report names (5.x/6.x wordings)."""
    for ln in lines[:10]:
        m = _LIST_BAD_RE.search(ln)
        if m:
            return int(m.group("v") or m.group("p"), 16)
    return None


def diagnose(facts: CrashFacts) -> list[Diagnosis]:
    """Every crash found in ``facts``, the primary (the cause of the panic) first.

    Always returns at least one :class:`Diagnosis` (class ``unknown`` when
    nothing could be recognised), never raises on odd facts.
    """
    events = facts.events
    if not events and facts.log:
        from kcrash.oops.blocks import events_from_log

        events = events_from_log(facts.log)
    cl = classify_events(events)
    sel = select(cl)
    out: list[Diagnosis] = []
    if sel.primary is not None:
        related = [c.event.header for c in sel.chain if c is not sel.primary and c.rule]
        d = _build(sel.primary, facts, primary=True, chain=sel.chain, related=related)
        if sel.panic is not None and sel.panic is not sel.primary and sel.panic.rule is not None:
            d.explanation.append(_trailer_message(sel.panic))
        out.append(d)
    else:
        out.append(_from_panic_string(facts))
    seen = {out[0].signature.id}
    for c in sel.others:
        d = _build(c, facts, primary=False, chain=[c], related=[])
        if d.signature.id in seen:
            continue
        seen.add(d.signature.id)
        out.append(d)
    if len(out) > 1 and sel.primary is not None:
        # say which report stopped the kernel (a panic, or a fatal oops), else which led
        stopped = sel.panic is not None or _fatal_rule(sel.primary.rule)
        mid = "explain.primary_of_several" + ("" if stopped else "~warning")
        out[0].explanation.append(Message(mid, {"count": len(out)}))
    return out


def _fatal_rule(rule: Rule | None) -> bool:
    return rule is not None and rule.severity == "fatal"


def _trailer_message(panic: Classified) -> Message:
    """Why the primary report turned into a panic (which sysctl or context)."""
    q = (panic.match.groupdict().get("q") if panic.match else None) or ""
    trailer = TRAILERS_BY_WORDING.get(q)
    key = trailer.key if trailer is not None else "other"
    return Message(f"explain.trailer.{key}", {"panic_message": panic.event.panic_message or ""})


def _from_panic_string(facts: CrashFacts) -> Diagnosis:
    """No report block in the log: classify crash's PANIC line and the panic stack."""
    text = facts.system.panic or ""
    text = text.strip().strip('"')
    frames = list(facts.panic_stack.frames) if facts.panic_stack else []
    ev = OopsEvent(header=text, lines=[text] if text else [], call_trace=frames)
    if "not syncing:" in text:
        ev.panic_message = text.split("not syncing:", 1)[1].strip()
    for rx in FAULT_ADDR_RES:  # crash's PANIC: "BUG: unable to handle ... at (null)"
        m = rx.search(text)
        if m:
            a = m.group("a")
            ev.fault_address = 0 if a == "(null)" else int(a, 16)
            break
    got = classify_lines(ev.lines) if text else None
    rip = _exception_frame(frames)
    if got is None and rip is not None:
        # no panic line, but bt shows an exception frame: the kernel oopsed there
        got = (RULES_BY_ID[OOPS_CLASS], None)  # type: ignore[assignment]
    if rip is not None:
        ev.rip = rip
        ev.registers = {k.upper(): v for k, v in (rip.regs or {}).items()}
        if "pc" in (rip.regs or {}):
            ev.arch = "arm64"
    c = Classified(0, ev, got[0] if got else None, got[1] if got else None)
    d = _build(c, facts, primary=True, chain=[c], related=[])
    d.source = "panic_stack" if frames else "none"
    return d


def _exception_frame(frames: list[Frame]) -> Frame | None:
    """The first frame carrying exception registers (where the fault happened)."""
    for f in frames:
        if f.regs and ("rip" in f.regs or "pc" in f.regs) and f.function:
            return f
    return None


def _stack_for(
    c: Classified, chain: list[Classified], facts: CrashFacts, primary: bool
) -> tuple[Frame | None, list[Frame]]:
    """RIP and trace of an event; borrowed from its chain or the vmcore if it has none."""
    ev = c.event
    if ev.call_trace or (ev.rip and ev.rip.function):
        return ev.rip, ev.call_trace
    for other in chain:
        if other is c:
            continue
        if other.event.call_trace and (
            other.rule is None or other.class_id == c.class_id or other.index > c.index
        ):
            return other.event.rip, other.event.call_trace
    if primary and facts.panic_stack and facts.panic_stack.frames:
        frames = facts.panic_stack.frames
        return _exception_frame(frames), frames
    return None, []


def _build(
    c: Classified, facts: CrashFacts, *, primary: bool, chain: list[Classified], related: list[str]
) -> Diagnosis:
    ev = c.event
    rule: Rule | None = c.rule
    class_id = rule.id if rule is not None else "unknown"
    if rule is not None and rule.trailer:
        # the report the trailer follows is missing (truncated log): the trailer
        # still names its class ("softlockup: hung tasks" -> soft-lockup)
        q = (c.match.groupdict().get("q") if c.match else None) or ""
        targets = TRAILER_TARGETS.get(q, ())
        class_id = targets[-1] if targets else PANIC_CLASS
        rule = RULES_BY_ID[class_id]
    groups: dict[str, Any] = {
        k: v for k, v in (c.match.groupdict() if c.match else {}).items() if v is not None
    }
    qualifier = groups.get(rule.qualifier) if rule is not None and rule.qualifier else None

    rip, trace = _stack_for(c, chain, facts, primary)
    strategy = rule.culprit if rule is not None else "first"
    if strategy == "recursion":  # unless one function fills the stack (below)
        strategy = "overflow"
    last_fn = _last_function(ev)
    if last_fn is not None:
        strategy, groups["sym"] = "message", last_fn
    b = blame(
        strategy,
        rip,
        trace,
        class_id=class_id,
        extra_skip=rule.skip if rule is not None else (),
        message_symbol=groups.get("sym"),
        header_symbol=_header_symbol(ev),
        lead=_lock_sites(ev) if rule is not None and rule.culprit == "lock" else None,
        double_fault=any("PANIC: double fault" in ln for ln in ev.lines[:5]),
    )
    pick = b.culprit
    if rule is not None and rule.culprit == "none":
        pick = None  # hardware errors: the code that ran is not to blame
    elif rule is not None and rule.culprit == "recursion" and _dominant_recursion(trace):
        # a stack overflow is almost always unbounded recursion: blame the function
        # that repeats, not the one that happened to touch the guard page
        name = _recursion(trace, True)[0]  # type: ignore[index]
        fr = next(f for f in trace if f.function and base_name(f.function) == name)
        pick = Pick(fr, trace.index(fr), "recursion")
    culprit = _culprit(pick, ev, facts) if pick is not None else None
    site = _culprit(Pick(b.site, 0, "crash_site"), ev, facts) if b.site is not None else None

    evidence = _evidence(rule, ev, facts)
    hw_kind: str | None = None
    if has_evidence(rule, "hardware"):
        # the GHES/MCE record is often its own block before the panic: read the chain
        lines = [ln for c2 in chain for ln in c2.event.lines]
        for f in decode.decode_hardware_error(lines):
            evidence.messages.append(Message("evidence." + f.id, f.params))
            if f.id == "hw.source":
                hw_kind = " ".join(v for v in (f.params["severity"], f.params["section"]) if v)
            elif f.id == "hw.mce" and hw_kind is None:
                hw_kind = "machine check"
    release = ev.release or facts.system.release
    taint = ev.taint or facts.system.taint
    sig = make_signature(
        class_id,
        qualifier,
        culprit.function if culprit else None,
        culprit.module if culprit else None,
        qualifier_in_title=bool(rule and rule.qualifier_in_title),
        fallback=ev.panic_message or ev.header or None,
        release=release,
        taint=taint.strip() if taint else None,
    )
    params = _params(ev, groups, culprit, evidence, qualifier)
    expl_id = rule.explanation_id if rule else "rule.unknown.explanation"
    if hw_kind:
        expl_id, params = expl_id + "~hardware", params | {"hw_kind": hw_kind}
    explanation = [Message(expl_id, params)]
    explanation.extend(_evidence_explanations(evidence, params))
    if (
        site is not None
        and culprit is not None
        and site.function
        and culprit.function
        and (site.function, site.module) != (culprit.function, culprit.module)
    ):
        why = skip_reason(site.function, class_id)
        explanation.append(
            Message(
                "explain.crash_site" if why else "explain.crash_site_other",
                params | {"site": site.function, "site_module": site.module, "why": why or ""},
            )
        )
    step_ids = rule.next_step_ids if rule is not None else ("rule.unknown.next.1",)
    next_steps = [Message(i, params) for i in step_ids]
    next_steps.extend(_extra_steps(class_id, culprit, evidence, params))
    frames = ([rip] if rip is not None and (not trace or trace[0] is not rip) else []) + list(trace)
    if culprit is not None and pick is not None:
        culprit.frame_index = next((i for i, f in enumerate(frames) if f is pick.frame), None)
    if site is not None and b.site is not None:
        site.frame_index = next((i for i, f in enumerate(frames) if f is b.site), None)
    return Diagnosis(
        class_id=class_id,
        title=sig.title,
        meaning=Message(rule.meaning_id if rule else "rule.unknown.meaning", params),
        explanation=explanation,
        next_steps=next_steps,
        culprit=culprit,
        evidence=evidence,
        signature=sig,
        crash_site=site,
        frames=frames,
        event=ev,
        primary=primary,
        qualifier=qualifier,
        cpu=ev.cpu,
        pid=ev.pid,
        comm=ev.comm,
        related=related,
    )


_SYM = r"[A-Za-z_][\w.]*\+0x[0-9a-f]+(?:/0x[0-9a-f]+)?(?: \[[\w-]+\])?"
#: Report headers that name the function where the report fired (no RIP line needed).
_HEADER_SYMBOL_RES = (
    # lib/bug.c / kernel/panic.c __warn(): "WARNING: CPU: 0 PID: 1 at f.c:12 f+0x1/0x2"
    re.compile(r"WARNING: (?:CPU: \d+ PID: \d+ )?at \S+ (?P<s>" + _SYM + r")"),
    # 6.19+: "WARNING: [cond] f.c:12 at f+0x1/0x2, CPU#0: comm/pid"
    re.compile(r"WARNING: (?:\[.*\] )?\S+:\d+ at (?P<s>" + _SYM + r"), CPU#"),
    # mm/kasan/report.c, mm/kfence/report.c, mm/kmsan/report.c: "... in f+0x1/0x2"
    re.compile(r"BUG: (?:KASAN|KFENCE|KMSAN): [\w -]+? in (?P<s>" + _SYM + r")"),
    # kernel/kcsan/report.c: "BUG: KCSAN: data-race in f / g" (first access)
    re.compile(r"BUG: KCSAN: [\w -:]+? in (?P<s>[A-Za-z_][\w.]*(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?)"),
)


def _header_symbol(ev: OopsEvent) -> str | None:
    """The ``f+0x1/0x2`` a report header names (WARNING, KASAN, KFENCE, KMSAN, KCSAN)."""
    for ln in ev.lines[:3] or [ev.header]:
        for rx in _HEADER_SYMBOL_RES:
            m = rx.search(ln)
            if m:
                s = m.group("s")
                return s if "+0x" in s else s + "+0x0"
    return None


# kernel/locking/lockdep.c: the line after which an "at: f+0x1/0x2" says where the
# offending lock is taken (print_circular_bug, print_usage_bug, print_irq_inversion_bug,
# print_unlock_imbalance_bug, debug_check_no_locks_freed, lockdep_print_held_locks)
_LOCK_MARK_RE = re.compile(
    r"is trying to acquire lock|is trying to release lock|\btakes:|just changed the state of"
    r"|held lock freed|still has locks held|is leaving the kernel with locks still held"
    r"|which became \S+ at:"
)
_LOCK_AT_RE = re.compile(r"\bat: (?:\[<[0-9a-f]+>\] )?(?P<s>" + _SYM + r")")
# the held-lock list and the scenario are context, not where the bad lock is taken
_LOCK_STOP_RE = re.compile(r"\d+ locks? held by|other info that might help|no locks held by")
# "is trying to release lock (x) at:" puts the symbol on the next line (< 4.15)
_LOCK_NEXT_RE = re.compile(r"^\s*(?:\[<[0-9a-f]+>\] )?(?P<s>" + _SYM + r")\s*$")


def _lock_sites(ev: OopsEvent) -> list[Frame]:
    """Functions of lockdep's ``at:`` lines after the first marker, in order."""
    out: list[Frame] = []
    marked = False
    held_matter = False
    in_stack = False
    prev = ""
    for ln in ev.lines[:80]:
        if ln.strip() in ("Call Trace:", "Call trace:", "stack backtrace:"):
            break
        if marked and not held_matter and _LOCK_STOP_RE.search(ln):
            break
        if not marked:
            mark = _LOCK_MARK_RE.search(ln)
            marked = mark is not None
            # "still has locks held" / "leaving the kernel with locks": the held list is the bug
            held_matter = mark is not None and "held" in mark.group(0)
            prev = ln
            if not marked:
                continue
        m = _LOCK_AT_RE.search(ln)
        if m is None and (prev.rstrip().endswith(" at:") or (out and in_stack)):
            m = _LOCK_NEXT_RE.match(ln)
            in_stack = m is not None  # "which became ... at:" is followed by a whole stack
        else:
            in_stack = False
        prev = ln
        if m:
            fr = parse_frame(m.group("s"))
            if fr is not None and fr.function:
                out.append(fr)
    return out


# kernel/workqueue.c process_one_work(): "BUG: workqueue leaked lock or atomic: ..." then
# "    last function: f": the work function that leaked, named by the report itself
_LAST_FUNCTION_RE = re.compile(r"^\s*last function: (?P<f>[A-Za-z_][\w.]*)")


def _last_function(ev: OopsEvent) -> str | None:
    if "workqueue leaked lock" not in ev.header:
        return None
    for ln in ev.lines[1:6]:
        m = _LAST_FUNCTION_RE.match(ln)
        if m:
            return m.group("f") + "+0x0"
    return None


def _module_taints(name: str, ev: OopsEvent, modules: list[ModuleInfo]) -> str:
    for m in modules:
        if m.name == name:
            return m.taints
    for tok in ev.modules_linked:
        if tok == name or tok.startswith(name + "("):
            return tok[len(name) + 1 : -1] if "(" in tok else ""
    return ""


def _culprit(pick: Pick, ev: OopsEvent, facts: CrashFacts) -> Culprit:
    fr = pick.frame
    module = fr.module or "vmlinux"
    taints = _module_taints(module, ev, facts.modules) if module != "vmlinux" else ""
    source = fr.source or _source_from_vmcore(fr, facts)
    return Culprit(
        function=normalize_function(fr.function) if fr.function else None,
        module=module,
        symbol=fr.symbol if fr.function else None,
        source=source,
        out_of_tree="O" in taints,
        unsigned="E" in taints,
        proprietary="P" in taints,
        module_taints=taints,
        reason=pick.reason,
    )


def _source_from_vmcore(fr: Frame, facts: CrashFacts) -> str | None:
    """file:line of the same function in a stack the vmcore unwound (if any)."""
    if not fr.function:
        return None
    want = base_name(fr.function)
    stacks = ([facts.panic_stack] if facts.panic_stack else []) + list(facts.cpu_stacks)
    for st in stacks:
        for f in st.frames:
            if (
                f.function
                and f.source
                and base_name(f.function) == want
                and ((f.module or "vmlinux") == (fr.module or "vmlinux"))
            ):
                return f.source
    return None


def _evidence(rule: Rule | None, ev: OopsEvent, facts: CrashFacts) -> Evidence:
    """What the block shows, read as the class's row asks (``Rule.evidence``)."""
    e = Evidence(
        header=ev.header or None, panic_message=ev.panic_message, oops_number=ev.oops_number
    )
    taint = ev.taint or facts.system.taint
    e.taint = taint.strip() if taint else None
    for f in decode.decode_taint(taint):
        e.taint_flags.append({"letter": f.params["letter"], "bit": f.params["bit"], "id": f.id})
        e.messages.append(Message("evidence." + f.id, f.params))
    is_pf = has_evidence(rule, "page-fault") or any(
        ln.lstrip().startswith("#PF:") for ln in ev.lines[:12]
    )
    esr = _arm64_esr(ev)
    if esr is not None:
        # arm64: the number of "Internal error: Oops: 96000004" is the ESR, not #PF bits
        e.messages.extend(Message("evidence." + f.id, f.params) for f in decode.decode_esr(esr))
    elif ev.error_code is not None and is_pf:
        facts_pf = decode.decode_pf(ev.error_code)
        e.page_fault = {"error_code": f"{ev.error_code:#x}", "facts": [f.id for f in facts_pf]}
        e.messages.append(Message("evidence.pf.summary", {"error_code": f"{ev.error_code:#06x}"}))
        e.messages.extend(Message("evidence." + f.id, f.params) for f in facts_pf)
    addr = ev.fault_address
    if addr is not None and (has_evidence(rule, "fault-address") or is_pf):
        kind = decode.classify_address(addr, ev.arch)
        e.fault_address = f"{addr:#x}"
        if kind is not None:
            e.address_kind = kind.id
            e.messages.append(Message("evidence." + kind.id, kind.params))
    if has_evidence(rule, "list-pointer"):
        bad = _list_bad_pointer(ev.lines)
        if bad is not None:
            e.messages.append(Message("evidence.list.bad_pointer", {"value": f"{bad:#x}"}))
            kind = decode.classify_address(bad, ev.arch)
            if kind is not None and e.address_kind is None:
                e.fault_address = f"{bad:#x}"
                e.address_kind = kind.id
                e.messages.append(Message("evidence." + kind.id, kind.params))
    dec = decode.disassemble_code(ev.code, ev.code_ip_index, ev.arch)
    if dec is not None:
        e.code = [CodeLine(i.offset, i.bytes, i.text, i.faulting) for i in dec.insns]
        e.fault_instruction = dec.fault_insn
        faulting = has_evidence(rule, "fault-instruction")
        if dec.fault_insn:
            mid = "evidence.code.fault_insn" if faulting else "evidence.code.rip_insn"
            e.messages.append(Message(mid, {"instruction": dec.fault_insn}))
        if faulting:
            eff = decode.effective_address(dec, ev.registers)
            if eff is not None and has_evidence(rule, "operand-address") and eff != addr:
                # a #GP has no CR2: the operand computed from the registers is exact
                e.messages.append(
                    Message("evidence.code.effective_address", {"address": f"{eff:#x}"})
                )
                kind = decode.classify_address(eff, ev.arch)
                if kind is not None:
                    e.fault_address = f"{eff:#x}"
                    if e.address_kind is not None:
                        e.messages = [m for m in e.messages if m.id != "evidence." + e.address_kind]
                    e.address_kind = kind.id
                    e.messages.append(Message("evidence." + kind.id, kind.params))
            fr = decode.fault_register(dec, ev.registers, addr, ev.arch)
            if fr is not None:
                e.fault_register = dict(fr.params)
                e.fault_register["id"] = fr.id
                e.messages.append(Message("evidence." + fr.id, fr.params))
    if ev.panic_message:
        e.messages.append(Message("evidence.panic_message", {"panic_message": ev.panic_message}))
    rec = _recursion(ev.call_trace)
    if rec is not None:
        e.messages.append(Message("evidence.recursion", {"function": rec[0], "count": rec[1]}))
    ctx = _rip_context(ev)
    if ctx is not None:
        e.messages.append(Message(f"evidence.context.{ctx}", {"comm": ev.comm}))
    e.registers = {k: f"{v:#x}" for k, v in ev.registers.items()}
    return e


_ESR_RE = re.compile(
    r"^\s*(?:ESR = 0x(?P<esr>[0-9a-f]+)|Internal error: Oops: (?P<die>[0-9a-f]{8,16}) )"
)


def _arm64_esr(ev: OopsEvent) -> int | None:
    """The ESR of an arm64 oops (the ``ESR = 0x...`` line, else the die line's number)."""
    for ln in ev.lines[:40]:
        m = _ESR_RE.match(ln)
        if m:
            return int(m.group("esr") or m.group("die"), 16)
    return None


def _dominant_recursion(trace: list[Frame]) -> bool:
    """One function fills the stack (``f`` calling itself): it is the overflow's
    culprit.  A cycle through several functions (a bond over a bond) is left to the
    culprit strategy, since no single repeated frame is the story."""
    rec = _recursion(trace, True)
    named = [f for f in trace if f.function and f.reliable and not is_skipped(f.function)]
    return rec is not None and rec[1] >= max(8, len(named) // 2)


def _recursion(trace: list[Frame], code_only: bool = False) -> tuple[str, int] | None:
    """The function repeated most in a call trace, when it looks like recursion
    (the usual cause of a kernel stack overflow); ``code_only`` leaves out the
    plumbing the culprit tables skip (notifier chains, locks)."""
    counts: dict[str, int] = {}
    for f in trace:
        if f.function and f.reliable and not (code_only and is_skipped(f.function)):
            name = base_name(f.function)
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return None
    name, n = max(counts.items(), key=lambda kv: kv[1])
    return (name, n) if n >= 4 else None


def _rip_context(ev: OopsEvent) -> str | None:
    """ "irq"/"softirq"/"nmi" when the code at RIP ran in interrupt context.

    The call trace prints the interrupt stack first (``<IRQ>`` ... ``</IRQ>``,
    4.x+ ``<TASK>`` after it): if its innermost frame is on the IRQ stack, so
    was RIP (e.g. a timer callback run from ``call_timer_fn``).
    """
    if ev.rip is None or not ev.call_trace:
        return None
    first = ev.call_trace[0].context
    return first if first in ("irq", "softirq", "nmi") else None


def _params(
    ev: OopsEvent,
    groups: dict[str, Any],
    culprit: Culprit | None,
    evidence: Evidence,
    qualifier: str | None,
) -> dict[str, Any]:
    """Parameters every rule message may use.

    An unknown value is ``None`` (never a "?" placeholder): the i18n layer then
    uses the sentence's ``~unknown`` variant or says that the log lacks it.
    """
    p: dict[str, Any] = {k: v for k, v in groups.items() if isinstance(v, str)}
    if p.get("addr") == "(null)":  # < 4.15 "... dereference at           (null)"
        p["addr"] = "0x0"
    p.update(
        {
            "function": culprit.function if culprit and culprit.function else None,
            "module": culprit.module if culprit else None,
            "symbol": culprit.symbol if culprit and culprit.symbol else None,
            "header": ev.header,
            "panic_message": ev.panic_message or "",
            "comm": ev.comm or groups.get("comm"),
            "pid": ev.pid if ev.pid is not None else groups.get("pid"),
            "cpu": ev.cpu if ev.cpu is not None else groups.get("cpu"),
            "qualifier": qualifier or "",
            "address": evidence.fault_address,
        }
    )
    if ev.fault_address is not None and ev.fault_address < decode.PAGE_SIZE:
        p["offset"] = f"{ev.fault_address:#x}"
    if "exit" in groups:
        try:
            code = int(groups["exit"], 16)
            p["signal"] = code & 0x7F
            p["exit_status"] = (code >> 8) & 0xFF
        except ValueError:
            pass
    if evidence.fault_register:
        p["register"] = evidence.fault_register.get("register")
    return p


def _evidence_explanations(e: Evidence, params: dict[str, Any]) -> list[Message]:
    out = []
    if e.address_kind:
        out.append(Message("explain." + e.address_kind, params | {"address": e.fault_address}))
    if e.fault_register:
        out.append(Message("explain." + e.fault_register["id"], params | e.fault_register))
    return out


def _extra_steps(
    class_id: str, culprit: Culprit | None, e: Evidence, params: dict[str, Any]
) -> list[Message]:
    out = []
    if culprit is not None and culprit.module != "vmlinux":
        if culprit.out_of_tree or culprit.proprietary:
            out.append(Message("next.oot_module", params))
        else:
            out.append(Message("next.module", params))
    if e.address_kind and ("poison" in e.address_kind or e.address_kind == "address.red_zone"):
        out.append(Message("next.poison", params))
    if e.fault_register and e.fault_register.get("id") == "code.null_base":
        out.append(Message("next.null_register", params | e.fault_register))
    if any(f["letter"] in ("D",) for f in e.taint_flags) and class_id != "unknown":
        out.append(Message("next.died_before", params))
    return out
