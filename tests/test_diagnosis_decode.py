"""Unit tests of the decoders over hand-built values (in addition to the corpus tests)."""

from __future__ import annotations

from kcrash.diagnosis import decode


def test_taint_letters_and_bits() -> None:
    facts = decode.decode_taint("G    B      OE")
    assert [(f.params["letter"], f.params["bit"]) for f in facts] == [
        ("B", 5),
        ("O", 12),
        ("E", 13),
    ]
    assert decode.decode_taint("G") == []
    assert decode.decode_taint(None) == []
    assert decode.decode_taint("P")[0].id == "taint.proprietary_module"


def test_taint_from_mask_round_trip() -> None:
    mask = (1 << 12) | (1 << 13) | (1 << 7)
    printed = decode.taint_from_mask(mask)
    assert printed.startswith("G")
    assert decode.taint_letters(printed) == ["D", "O", "E"]


def test_pf_error_code_bits() -> None:
    ids = [f.id for f in decode.decode_pf(0x0)]
    assert ids == ["pf.access.read", "pf.mode.kernel", "pf.cause.not_present"]
    ids = [f.id for f in decode.decode_pf(0x2)]
    assert ids[0] == "pf.access.write"
    ids = [f.id for f in decode.decode_pf(0x11)]
    assert ids == ["pf.access.instr", "pf.mode.kernel", "pf.cause.protection"]
    ids = [f.id for f in decode.decode_pf(0x4 | 0x1 | 0x8)]
    assert "pf.mode.user" in ids and "pf.cause.reserved" in ids


def test_address_classes() -> None:
    c = decode.classify_address
    assert c(0x74).id == "address.null_offset"
    assert c(0x74).params["offset"] == "0x74"
    assert c(0).id == "address.null"
    assert c(0xDEAD000000000100).params["poison"] == "LIST_POISON1"
    assert c(0xDEAD000000000122).params["poison"] == "LIST_POISON2"
    assert c(0x6B6B6B6B6B6B6B6B).id == "address.poison.slab_free"
    assert c(0x6B6B6B6B6B6B6BD3).id == "address.poison.slab_free"  # poison + member offset
    assert c(0x5A5A5A5A5A5A5A5A).id == "address.poison.slab_inuse"
    assert c(0x8000000000000000).id == "address.non_canonical"
    # 0x6a is not a poison value of include/linux/poison.h
    assert c(0x6A6A6A6A6A6A6A6A).id == "address.non_canonical"
    k = c(0xDFFFFC000000000E)
    assert k.id == "address.kasan_null" and k.params["start"] == "0x70"
    assert c(0xFFFFC90000123000).id == "address.vmalloc"
    assert c(0x00007F0000001000).id == "address.user"
    assert c(None) is None


def test_disassemble_code_marks_faulting_instruction() -> None:
    # Code: line of a real 6.1 NULL dereference (mov eax,[rdi+0x74])
    code = bytes.fromhex(
        "0000000000000f1f440000554889e541545348"
        "89d34883ec0865488b042528000000"
        "488945e831c0488b3d000000008b477448"
        "89d8488b55e865482b14252800000075"
        "07"
    )
    ip = code.index(bytes.fromhex("8b4774"))
    dec = decode.disassemble_code(list(code), ip)
    assert dec is not None
    faulting = [i for i in dec.insns if i.faulting]
    assert len(faulting) == 1 and faulting[0].offset == 0
    assert faulting[0].text == "mov eax, dword ptr [rdi + 0x74]"
    assert dec.mem_base == "rdi" and dec.mem_disp == 0x74 and dec.access == "read"
    fr = decode.fault_register(dec, {"RDI": 0}, 0x74)
    assert fr is not None and fr.id == "code.null_base" and fr.params["register"] == "rdi"
    fr = decode.fault_register(dec, {"RDI": 0x6B6B6B6B6B6B6B6B}, None)
    assert fr is not None and fr.id == "code.poison_base"


def test_disassemble_garbage_never_raises() -> None:
    assert decode.disassemble_code(None, None) is None
    assert decode.disassemble_code([0xFF] * 3, 5) is None
    decode.disassemble_code([0xFF, 0xFF, 0x0F, 0x0B], 2)


def test_register_value_aliases() -> None:
    regs = {"RAX": 1, "R08": 8, "R12": 12}
    assert decode.register_value(regs, "eax") == 1
    assert decode.register_value(regs, "r8") == 8
    assert decode.register_value(regs, "r12d") == 12
    assert decode.register_value(regs, None) is None


def test_effective_address_of_moffs_and_base_index() -> None:
    # movabs rax, [0x8000000000000000]
    code = [0x48, 0xA1, 0, 0, 0, 0, 0, 0, 0, 0x80, 0xC3]
    dec = decode.disassemble_code(code, 0)
    assert decode.effective_address(dec, {}) == 0x8000000000000000
    # mov eax, [rdi + rsi*8 + 0x10]
    code = [0x8B, 0x44, 0xF7, 0x10, 0xC3]
    dec = decode.disassemble_code(code, 0)
    assert decode.effective_address(dec, {"RDI": 0x1000, "RSI": 2}) == 0x1020
    assert decode.effective_address(dec, {"RDI": 0x1000}) is None  # unknown index
