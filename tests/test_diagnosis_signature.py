"""Signature scheme v1: what is hashed, what is normalised (hand-built values)."""

from __future__ import annotations

from kcrash.diagnosis.signature import make_signature, normalize_function, normalize_text


def test_normalize_function() -> None:
    assert normalize_function("foo.isra.0") == "foo"
    assert normalize_function("foo.constprop.0.cold") == "foo"
    assert normalize_function("__handle_sysrq.cold") == "__handle_sysrq"
    assert normalize_function("foo.part.3") == "foo"
    assert normalize_function("__x64_sys_write") == "sys_write"
    assert normalize_function("__se_sys_ioctl") == "sys_ioctl"
    assert normalize_function("__do_sys_ioctl") == "sys_ioctl"
    assert normalize_function("__ia32_compat_sys_ioctl") == "compat_sys_ioctl"
    assert normalize_function("SyS_write") == "sys_write"
    assert normalize_function(None) is None


def test_normalize_text() -> None:
    assert normalize_text("oops at ffffffffc0a1b2c3 count 12") == "oops at ADDR count NUM"
    assert normalize_text("in: foo+0x1a/0x40 [m]") == "in: foo [m]"


def test_same_bucket_across_release_taint_and_suffixes() -> None:
    a = make_signature(
        "null-deref", None, "foo_submit.isra.0", "foo", release="6.1.0-28", taint="G OE"
    )
    b = make_signature("null-deref", None, "foo_submit", "foo", release="5.10.0-33", taint="G")
    assert a.id == b.id
    assert a.title == "null-deref in foo_submit [foo]"
    assert a.attributes["release"] == "6.1.0-28"
    assert a.scheme == "v1" and len(a.id) == 16


def test_class_module_and_qualifier_change_the_bucket() -> None:
    base = make_signature("null-deref", None, "foo", "foo")
    assert make_signature("gpf", None, "foo", "foo").id != base.id
    assert make_signature("null-deref", None, "foo", "bar").id != base.id
    q1 = make_signature("bug-on", "drivers/x/a.c", "foo", "vmlinux")
    q2 = make_signature("bug-on", "fs/a.c", "foo", "vmlinux")
    assert q1.id == q2.id  # directories are not hashed, the file name is
    assert make_signature("bug-on", "b.c", "foo", "vmlinux").id != q1.id


def test_core_kernel_title_has_no_module() -> None:
    s = make_signature("sysrq", None, "sysrq_handle_crash", "vmlinux")
    assert s.title == "sysrq in sysrq_handle_crash"
    s = make_signature(
        "sanitizer", "KASAN: slab-use-after-free Read", "f", "vmlinux", qualifier_in_title=True
    )
    assert s.title == "sanitizer: KASAN: slab-use-after-free Read in f"


def test_no_culprit_falls_back_to_normalised_message() -> None:
    a = make_signature("panic", None, None, None, fallback="Aiee at 0xffff888012345678 cpu 3")
    b = make_signature("panic", None, None, None, fallback="Aiee at 0xffff888087654321 cpu 1")
    assert a.id == b.id
    assert a.title == "panic: Aiee at ADDR cpu NUM"
