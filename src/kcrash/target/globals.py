"""C types of the kernel globals that BTF does not describe.

Why: pahole (before 1.27 with ``global_var``) only emits ``VAR`` records for
per-CPU variables (the ``.data..percpu`` DATASEC), so with BTF alone drgn
knows the *type* ``struct task_struct`` but not that ``init_task`` is one.
kallsyms gives the address; this table gives the type.  It lists what drgn's
helpers and crash-compatible commands (``drgn.commands._crash``) and kcrash's
facts read, with the kernel versions each declaration holds for, from the
kernel sources (``kernel/``, ``mm/``, ``arch/x86/``).

Array lengths that are configuration-dependent are written as ``{NAME}``
and resolved at run time from the BTF itself (an enumerator such as
``NR_SOFTIRQS``) or from a derived size (``NR_CPUS`` = bits of ``struct
cpumask``, ``MAX_NUMNODES`` from ``struct zonelist``), never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import drgn
from drgn import Program, Type

Version = tuple[int, int]


@dataclass(frozen=True)
class Global:
    """One kernel global: its C type for kernels ``since <= v < until``."""

    name: str
    ctype: str
    since: Version = (0, 0)
    until: Version | None = None
    note: str = ""
    #: The one architecture that has it (``arch/x86/`` code), or None for every one: a
    #: same-named arm64 variable has another type (``vmemmap_base``) or none at all.
    arch: str | None = None

    def holds_for(self, version: Version | None) -> bool:
        if version is None:
            return True
        return self.since <= version and (self.until is None or version < self.until)

    def holds_on(self, prog: Program) -> bool:
        """Whether this architecture has it (drgn's platform of the dump; a program with
        no platform yet is taken to have it, as before the table knew architectures)."""
        return self.arch is None or _arch(prog) in (None, self.arch)


def _arch(prog: Program) -> str | None:
    platform = prog.platform
    if platform is None:
        return None
    return {drgn.Architecture.X86_64: X86, drgn.Architecture.AARCH64: "arm64"}.get(platform.arch)


#: Architecture names of :attr:`Global.arch`.
X86 = "x86_64"


# Keep sorted by name; several entries per name when the type changed.
GLOBALS: tuple[Global, ...] = (
    Global("__cpu_active_mask", "struct cpumask", (4, 5)),
    Global("__cpu_online_mask", "struct cpumask", (4, 5)),
    Global("__cpu_possible_mask", "struct cpumask", (4, 5)),
    Global("__cpu_present_mask", "struct cpumask", (4, 5)),
    Global("__per_cpu_offset", "unsigned long [{NR_CPUS}]", note="x86-64 SMP"),
    Global("_totalram_pages", "atomic_long_t", (5, 0), note="mm/page_alloc.c"),
    Global("avenrun", "unsigned long [3]", note="kernel/sched/loadavg.c"),
    Global("block_class", "struct class", (2, 6), (6, 4), note="const from 6.4"),
    Global("block_class", "const struct class", (6, 4)),
    Global("btf_idr", "struct idr", (4, 18), note="kernel/bpf/btf.c: every parsed BTF"),
    Global("boot_command_line", "char [{COMMAND_LINE_SIZE}]"),
    Global("cgrp_dfl_root", "struct cgroup_root", (3, 16)),
    Global(
        "class_kset", "struct kset *", (2, 6), note="drivers/base/class.c: for_each_disk's path"
    ),
    Global("clear_seq", "struct latched_seq", (5, 13), note="u64 before 5.13"),
    Global("cpu_khz", "unsigned int"),
    Global("crash_notes", "note_buf_t *", note="per-CPU pointer (note_buf_t __percpu *)"),
    Global("crashing_cpu", "int", (4, 10), note="arch/x86/kernel/reboot.c", arch=X86),
    Global("dentry_hashtable", "struct hlist_bl_head *", (2, 6)),
    Global("high_memory", "void *", note="mm/memory.c: end of the direct map (crash's ps %MEM)"),
    Global("hugetlb_max_hstate", "int", (3, 2)),
    Global("hstates", "struct hstate [{HUGE_MAX_HSTATE}]"),
    Global("idt_table", "gate_desc [256]", note="arch/x86/kernel/idt.c", arch=X86),
    Global("init_fs", "struct fs_struct"),
    Global("init_ipc_ns", "struct ipc_namespace"),
    Global("init_mm", "struct mm_struct"),
    Global("init_net", "struct net"),
    Global("init_pid_ns", "struct pid_namespace"),
    Global("init_task", "struct task_struct"),
    Global("init_uts_ns", "struct uts_namespace"),
    Global("iomem_resource", "struct resource"),
    Global("ioport_resource", "struct resource"),
    Global("irq_desc_tree", "struct xarray", (4, 20), (6, 5), note="maple tree sparse_irqs 6.5+"),
    Global("sparse_irqs", "struct maple_tree", (6, 5)),
    Global("jiffies_64", "u64", note="drgn derives 'jiffies' from it"),
    Global("kexec_crash_image", "struct kimage *"),
    Global(
        "kmalloc_caches", "struct kmem_cache *[{NR_KMALLOC_TYPES}][{KMALLOC_SHIFT_HIGH1}]", (5, 0)
    ),
    Global("linux_banner", "const char []"),
    Global("log_buf", "char *", note="both printk designs"),
    Global("log_buf_len", "u32", (3, 5)),
    Global("log_first_idx", "u32", (3, 5), (5, 10)),
    Global("log_first_seq", "u64", (3, 5), (5, 10)),
    Global("log_next_idx", "u32", (3, 5), (5, 10)),
    Global("log_next_seq", "u64", (3, 5), (5, 10)),
    Global("max_low_pfn", "unsigned long"),
    Global("max_pfn", "unsigned long"),
    Global("mem_section", "struct mem_section **", (4, 15), note="SPARSEMEM_EXTREME"),
    Global("memblock", "struct memblock"),
    Global("min_low_pfn", "unsigned long"),
    Global("mod_tree", "struct mod_tree_root", (4, 2)),
    Global("modules", "struct list_head", note="kernel/module/main.c (kernel/module.c <5.19)"),
    Global("net_namespace_list", "struct list_head"),
    Global("node_data", "pg_data_t *[{MAX_NUMNODES}]", (0, 0), (6, 12), note="NUMA, x86 numa.c"),
    Global(
        "node_data",
        "struct pglist_data *[{MAX_NUMNODES}]",
        (6, 12),
        note="moved to mm/numa.c ('arch, mm: move definition of node_data to generic code')",
    ),
    Global("node_states", "nodemask_t [{NR_NODE_STATES}]"),
    Global("nr_cpu_ids", "unsigned int", (4, 14)),
    Global("nr_irqs", "int"),
    Global("nr_node_ids", "unsigned int", (4, 14)),
    Global("nr_swap_pages", "atomic_long_t"),
    Global("nr_swapfiles", "unsigned int"),
    Global("nr_threads", "int"),
    Global("oops_in_progress", "int"),
    Global("page_offset_base", "unsigned long", (4, 8), note="x86-64 KASLR", arch=X86),
    Global("panic_cpu", "atomic_t", (4, 5)),
    Global("panic_notifier_list", "struct atomic_notifier_head"),
    Global("panic_on_oops", "int"),
    Global("pid_max", "int"),
    Global("prb", "struct printk_ringbuffer *", (5, 10), note="lockless printk"),
    Global("printk_rb_static", "struct printk_ringbuffer", (5, 10)),
    Global("root_task_group", "struct task_group"),
    Global("saved_command_line", "char *"),
    Global("slab_caches", "struct list_head"),
    Global(
        "stack_slabs",
        "void *[]",
        (4, 6),
        (6, 3),
        note="lib/stackdepot.c; stack_pools since 6.3: slub_debug=U stacks (kcrash.facts.slab)",
    ),
    Global("softirq_vec", "struct softirq_action [{NR_SOFTIRQS}]"),
    Global("swap_info", "struct swap_info_struct *[{MAX_SWAPFILES}]"),
    Global("swapper_spaces", "struct address_space *[{MAX_SWAPFILES}]", (4, 11)),
    Global("sysctl_overcommit_kbytes", "unsigned long"),
    Global("sysctl_overcommit_ratio", "int"),
    Global("system_state", "enum system_states"),
    Global("tainted_mask", "unsigned long"),
    Global("taint_flags", "const struct taint_flag [{TAINT_FLAGS_COUNT}]", (4, 10)),
    Global("task_state_array", "const char * const [{TASK_STATE_ARRAY_LEN}]", (4, 14)),
    Global("tk_core", "{TK_CORE}", note="anonymous struct { seq; struct timekeeper timekeeper; }"),
    Global("total_forks", "unsigned long"),
    Global("total_swap_pages", "long"),
    Global("totalreserve_pages", "unsigned long"),
    Global("tsc_khz", "unsigned int"),
    Global("uidhash_table", "struct hlist_head [128]", note="UIDHASH_SZ = 1 << 7"),
    Global("vm_committed_as", "struct percpu_counter"),
    Global("vm_event_states", "struct vm_event_state", note="per-CPU"),
    Global("vm_node_stat", "atomic_long_t [{NR_VM_NODE_STAT_ITEMS}]", (4, 8)),
    Global("vm_numa_event", "atomic_long_t [{NR_VM_NUMA_EVENT_ITEMS}]", (5, 14)),
    Global("vm_numa_stat", "atomic_long_t [{NR_VM_NUMA_STAT_ITEMS}]", (4, 14), (5, 14)),
    Global("vm_zone_stat", "atomic_long_t [{NR_VM_ZONE_STAT_ITEMS}]"),
    Global("vmalloc_base", "unsigned long", (4, 8), arch=X86),
    Global("vmcoreinfo_data", "unsigned char *"),
    Global("vmemmap_base", "unsigned long", (4, 8), arch=X86),
)

# Per-CPU variables (``DEFINE_PER_CPU``): BTF describes them in its
# ``.data..percpu`` DATASEC when pahole >= 1.18 made it (Debian 12's 6.1);
# Debian 11's 5.10 BTF has no VAR records at all, so drgn's helpers need these
# (their kallsyms address is the per-CPU offset).  BTF wins when it has them.
PERCPU: tuple[Global, ...] = (
    Global("cpu_info", "struct cpuinfo_x86", arch=X86),
    Global("cpu_number", "int", until=(6, 2), note="pcpu_hot.cpu_number since 6.2"),
    Global("cpu_tss_rw", "struct tss_struct", arch=X86),
    Global(
        "current_task", "struct task_struct *", until=(6, 2), note="pcpu_hot since 6.2", arch=X86
    ),
    Global("exception_stacks", "struct exception_stacks", arch=X86),
    Global("fixed_percpu_data", "struct fixed_percpu_data", until=(6, 2), arch=X86),
    Global("hardirq_stack_ptr", "struct irq_stack *", (5, 9), (6, 0), arch=X86),
    Global("hardirq_stack_ptr", "void *", (6, 0), (6, 2), arch=X86),
    Global("hrtimer_bases", "struct hrtimer_cpu_base"),
    Global("idle_threads", "struct task_struct *"),
    Global("irq_stat", "irq_cpustat_t"),
    Global("kernel_cpustat", "struct kernel_cpustat"),
    Global("ksoftirqd", "struct task_struct *"),
    Global("kstat", "struct kernel_stat"),
    Global("runqueues", "struct rq", note="drgn's cpu_curr(), crashed_thread()"),
    Global("this_cpu_off", "unsigned long", arch=X86),
    Global(
        "timer_bases",
        "struct timer_base [2]",
        (0, 0),
        (6, 9),
        note="NR_BASES = 2 with NO_HZ_COMMON",
    ),
    Global(
        "timer_bases",
        "struct timer_base [3]",
        (6, 9),
        note="BASE_LOCAL, BASE_GLOBAL, BASE_DEF: the timer migration hierarchy (6.9)",
    ),
)

_BY_NAME: dict[str, list[Global]] = {}
for _g in (*GLOBALS, *PERCPU):
    _BY_NAME.setdefault(_g.name, []).append(_g)


def parse_version(release: str | None) -> Version | None:
    """``"6.1.0-28-amd64"`` -> ``(6, 1)``."""
    if not release:
        return None
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def lookup(name: str, version: Version | None) -> Global | None:
    """The table entry for ``name`` that holds for ``version``."""
    for g in _BY_NAME.get(name, ()):
        if g.holds_for(version):
            return g
    return None


def _cpumask_bits(prog: Program) -> int:
    return drgn.sizeof(prog.type("struct cpumask")) * 8


def _tk_core_type(prog: Program) -> Type:
    """``static struct { seqcount_raw_spinlock_t seq; struct timekeeper timekeeper; }``.

    kernel/time/timekeeping.c; the sequence counter is ``seqcount_t`` before
    5.10 and ``seqcount_raw_spinlock_t`` since.  ``timekeeper`` follows it at
    the next multiple of its alignment (8 on x86-64).
    """
    try:
        seq = prog.type("seqcount_raw_spinlock_t")
    except LookupError:
        seq = prog.type("seqcount_t")
    tk = prog.type("struct timekeeper")
    align = drgn.alignof(tk)
    off = -(-drgn.sizeof(seq) // align) * align
    size = -(-(off + drgn.sizeof(tk)) // align) * align
    return prog.struct_type(
        None,
        size,
        [drgn.TypeMember(seq, "seq", 0), drgn.TypeMember(tk, "timekeeper", off * 8)],
    )


def _constant(prog: Program, name: str) -> int:
    return prog.constant(name).value_()


def _taint_flags_count(version: Version | None) -> int:
    """TAINT_FLAGS_COUNT is a #define (not in BTF): 18 since 4.15 (TAINT_AUX),
    19 since 5.17 (TAINT_TEST), 20 since 6.15 (TAINT_FWCTL)."""
    if version is None or version >= (6, 15):
        return 20
    if version >= (5, 17):
        return 19
    return 18 if version >= (4, 15) else 17


def _max_numnodes(prog: Program) -> int:
    """MAX_NUMNODES (1 << CONFIG_NODES_SHIFT), exactly: ``struct zonelist``'s
    ``_zonerefs[MAX_NUMNODES * MAX_NR_ZONES + 1]`` (include/linux/mmzone.h, 2.6.26+).
    The bits of ``nodemask_t`` are rounded up to a long: 64 for arm64's NODES_SHIFT=4
    (16 nodes); they are the fallback, exact for x86's NODES_SHIFT=10."""
    try:
        refs = prog.type("struct zonelist").member("_zonerefs").type.length
        zones = prog.constant("__MAX_NR_ZONES").value_()
        if refs and zones and (refs - 1) % zones == 0:
            return (refs - 1) // zones
    except (LookupError, AttributeError, ValueError):
        pass
    return drgn.sizeof(prog.type("nodemask_t")) * 8


def _resolve(prog: Program, key: str, version: Version | None) -> int | str:
    if key == "NR_CPUS":
        return _cpumask_bits(prog)
    if key == "MAX_NUMNODES":
        return _max_numnodes(prog)
    if key == "COMMAND_LINE_SIZE":
        return 2048  # arch/x86/include/asm/setup.h since 2.6.x
    if key == "HUGE_MAX_HSTATE":
        platform = prog.platform
        if platform is not None and platform.arch == drgn.Architecture.AARCH64:
            # arch/arm64/include/asm/hugetlb.h (v4.5+, contiguous-bit sizes): 4 with 4K pages
            return 4
        return 2  # x86: 2M and 1G
    if key == "MAX_SWAPFILES":
        # 32 minus the swap types reserved for migration, hwpoison,
        # device-private (when configured) and, since 5.19, PTE markers:
        # checked against DWARF, Debian 5.10 has 29, Debian 6.1 26, Debian
        # 13's 6.12 27 (one reserved type fewer; where between 6.1 and 6.12
        # is not pinned down here: 6.2-6.11 keep 6.1's value).
        if version is None or version >= (6, 12):
            return 27
        if version >= (5, 19):
            # SWP_PTE_MARKER_NUM is 1 with CONFIG_PTE_MARKER, which only uffd-wp selects
            # (HAVE_ARCH_USERFAULTFD_WP: x86-64's alone in 6.1): Debian 12's arm64 has 27.
            platform = prog.platform
            arm64 = platform is not None and platform.arch == drgn.Architecture.AARCH64
            return 27 if arm64 else 26
        return 29
    if key == "TAINT_FLAGS_COUNT":
        return _taint_flags_count(version)
    if key == "TASK_STATE_ARRAY_LEN":
        return 9  # "R S D T t X Z P I" since 4.14
    if key == "KMALLOC_SHIFT_HIGH1":
        return 14  # SLUB: PAGE_SHIFT + 1, plus one for index 0
    if key == "TK_CORE":
        return "TK_CORE"
    return _constant(prog, key)


def global_type(prog: Program, name: str, version: Version | None) -> Type | None:
    """The drgn type of global ``name`` for this kernel, or None if unknown.

    Raises LookupError when the table knows the name but the kernel's BTF
    lacks a type it refers to (e.g. a structure compiled out).
    """
    g = lookup(name, version)
    if g is None or not g.holds_on(prog):
        return None
    if g.ctype == "{TK_CORE}":
        return _tk_core_type(prog)
    ctype = re.sub(r"\{(\w+)\}", lambda m: str(_resolve(prog, m.group(1), version)), g.ctype)
    return prog.type(ctype)
