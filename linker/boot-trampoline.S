/*
 * A minimal arm64 Linux Image that jumps to the hypervisor's ELF entry
 * (HV_ENTRY, given with --defsym), with x0 (the DTB) untouched.
 *
 * QEMU's raspi4b enters an ELF -kernel at EL3 on every CPU and puts the
 * DTB over the spin tables; a Linux Image it enters at EL2 on CPU 0 with
 * the DTB in x0, the other CPUs waiting in its spin-table stub. It places
 * the DTB after the Image, which must lie in the RAM it describes (below
 * 0x3c000000), so the Image is this trampoline at 0x80000, and the
 * hypervisor itself is loaded at its link address by -device loader
 * (scripts/run.sh, HV_BOOT=trampoline).
 */
	.text
	.globl	_start
_start:
	b	1f			/* code0 */
	.word	0			/* code1 */
	.quad	0x80000			/* text_offset: load at RAM base + 512 KiB */
	.quad	end - _start		/* image_size (non-zero: text_offset is valid) */
	.quad	0xa			/* flags: little-endian, 4 KiB pages, anywhere */
	.quad	0, 0, 0
	.ascii	"ARM\x64"		/* magic */
	.word	0
1:	ldr	x16, =HV_ENTRY
	br	x16
	.ltorg
end:
