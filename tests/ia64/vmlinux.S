// A miniature ia64 vmlinux: real functions, exported the way the ia64 kernel exports them
// (include/linux/export.h + arch/ia64/include/asm/export.h): the value of a function export
// is @fptr(name), an official function descriptor in .opd, not the code address.
	.macro FUNC sym
	.text
	.global \sym
	.proc \sym
\sym:	br.ret.sptk.many b0
	.endp \sym
	.endm

	.macro EXPORT sym, crc, tab="", ns=""
	.section "___ksymtab\tab+\sym", "a"
	.align 8
__ksymtab_\sym:
	data8 @fptr(\sym)
	data8 __kstrtab_\sym
	data8 __kstrtabns_\sym
	.section "__ksymtab_strings", "a"
__kstrtab_\sym: stringz "\sym"
__kstrtabns_\sym: stringz "\ns"
	// Assembled with --defsym nocrc_<sym>=1, the export gets no CRC slot at all: what
	// modpost did in Linux 5.19 for a symbol whose CRC generation failed.
	.ifndef nocrc_\sym
	.section "___kcrctab\tab+\sym", "a"
	.align 4
__crc_\sym: data4 \crc
	.endif
	.endm

	FUNC kfree
	FUNC module_layout
	FUNC memset
	FUNC crypto_alloc_shash
	FUNC ia64_pal_call_static
	FUNC ns_only_fn

	EXPORT kfree, 0x9c0b2f11
	EXPORT module_layout, 0x7ab88a45
	EXPORT memset, 0x18e3c7e2
	EXPORT ia64_pal_call_static, 0x0d2e4a31
	EXPORT crypto_alloc_shash, 0x3bbd9d76, _gpl
	EXPORT ns_only_fn, 0x55aa1234, _gpl, TESTNS

	.section .rodata, "a"
	stringz "Linux version 6.6.0-ia64test (modverify@test) (ia64-linux-gnu-as) #1 SMP\n"
	stringz "6.6.0-ia64test SMP mod_unload modversions ia64gcc-12.2"
