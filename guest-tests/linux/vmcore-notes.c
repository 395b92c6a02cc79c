// SPDX-License-Identifier: GPL-2.0
/*
 * vmcore-notes: run inside a kdump capture kernel. Reads the ELF core
 * /proc/vmcore, counts its NT_PRSTATUS notes (one per CPU whose registers the
 * crashed kernel saved) and prints each note's PC. With "RANGE=start-end"
 * (hex addresses) it also reports whether some note's PC lies in [start, end).
 * With a second argument, the physical address of the crashed kernel's
 * cpu_online_mask, it reads that mask's first word out of the PT_LOAD
 * segment that holds it.
 *
 * Output, one line each:  note cpu_index=I pid=P pc=0x...
 *                         online_mask=0x... (or online_mask=unmapped)
 *                         prstatus=N in_range=0|1
 * Exit status 0 when the core could be parsed. Static, no dependencies, so it
 * runs from the tiny capture initramfs.
 */
#include <elf.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* arm64 struct elf_prstatus: pr_pid at 32, pr_reg (x0..x30, sp, pc, pstate) at 112. */
#define PRSTATUS_PID	32
#define PRSTATUS_REG	112
#define PRSTATUS_SIZE	(PRSTATUS_REG + 34 * 8 + 8)

static int read_at(int fd, void *buf, size_t len, off_t off)
{
	return pread(fd, buf, len, off) == (ssize_t)len ? 0 : -1;
}

/* The word at physical address @pa, from the PT_LOAD that holds it. */
static int read_pa(int fd, const Elf64_Ehdr *eh, uint64_t pa, uint64_t *word)
{
	int i;

	for (i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		if (read_at(fd, &ph, sizeof(ph), eh->e_phoff + (off_t)i * eh->e_phentsize))
			return -1;
		if (ph.p_type == PT_LOAD && pa >= ph.p_paddr && pa + 8 <= ph.p_paddr + ph.p_filesz) {
			if (!read_at(fd, word, sizeof(*word), ph.p_offset + (pa - ph.p_paddr)))
				return 0;
			printf("load %d: read at 0x%lx failed\n", i, ph.p_offset + (pa - ph.p_paddr));
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	uint64_t lo = 0, hi = 0, mask_pa = 0, mask;
	int fd, i, count = 0, in_range = 0;
	Elf64_Ehdr eh;

	if ((argc > 1 && argv[1][0] && sscanf(argv[1], "%lx-%lx", &lo, &hi) != 2) ||
	    (argc > 2 && sscanf(argv[2], "%lx", &mask_pa) != 1)) {
		fprintf(stderr, "usage: %s [START-END [ONLINE_MASK_ADDR]]\n", argv[0]);
		return 2;
	}
	fd = open("/proc/vmcore", O_RDONLY);
	if (fd < 0 || read_at(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64) {
		fprintf(stderr, "vmcore-notes: /proc/vmcore is not a 64-bit ELF core\n");
		return 1;
	}
	for (i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		char *notes;
		size_t pos = 0;

		if (read_at(fd, &ph, sizeof(ph), eh.e_phoff + (off_t)i * eh.e_phentsize))
			return 1;
		if (ph.p_type != PT_NOTE)
			continue;
		notes = malloc(ph.p_filesz);
		if (!notes || read_at(fd, notes, ph.p_filesz, ph.p_offset))
			return 1;
		/* Each note: namesz, descsz, type, name and desc padded to 4. */
		while (pos + sizeof(Elf64_Nhdr) <= ph.p_filesz) {
			Elf64_Nhdr *nh = (Elf64_Nhdr *)(notes + pos);
			size_t name = pos + sizeof(*nh);
			size_t desc = name + ((nh->n_namesz + 3) & ~3u);
			size_t next = desc + ((nh->n_descsz + 3) & ~3u);

			if (next > ph.p_filesz || (nh->n_namesz == 0 && nh->n_descsz == 0))
				break;
			if (nh->n_type == NT_PRSTATUS && nh->n_descsz >= PRSTATUS_SIZE) {
				int32_t pid;
				uint64_t pc;

				memcpy(&pid, notes + desc + PRSTATUS_PID, sizeof(pid));
				memcpy(&pc, notes + desc + PRSTATUS_REG + 32 * 8, sizeof(pc));
				printf("note cpu_index=%d pid=%d pc=0x%016lx%s\n", count, pid, pc,
				       hi && pc >= lo && pc < hi ? " (in range)" : "");
				if (hi && pc >= lo && pc < hi)
					in_range = 1;
				count++;
			}
			pos = next;
		}
		free(notes);
	}
	if (mask_pa && !read_pa(fd, &eh, mask_pa, &mask))
		printf("online_mask=0x%lx\n", mask);
	else if (mask_pa)
		printf("online_mask=unmapped\n");
	for (i = 0; mask_pa && i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		if (!read_at(fd, &ph, sizeof(ph), eh.e_phoff + (off_t)i * eh.e_phentsize) &&
		    ph.p_type == PT_LOAD)
			printf("load %d offset=0x%lx vaddr=0x%lx paddr=0x%lx size=0x%lx\n",
			       i, ph.p_offset, ph.p_vaddr, ph.p_paddr, ph.p_filesz);
	}
	printf("prstatus=%d in_range=%d\n", count, in_range);
	return 0;
}
