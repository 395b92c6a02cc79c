// SPDX-License-Identifier: GPL-2.0
/*
 * parkvisor_stop: let an unmodified Linux stop the secondary CPUs that do
 * not answer the usual stop IPI with parkvisor's FAST_STOP hypercall, when
 * it kexecs or takes a crash dump.
 *
 * Both paths follow arm64's IPI-then-NMI pattern: the stop IPI first, which
 * a CPU only takes where its interrupts are enabled (so never inside an
 * IRQ-masked spinlock section), then FAST_STOP for the CPUs still running
 * once the wait is over. FAST_STOP parks a vCPU wherever it is, interrupts
 * masked or not, and (flag SAVE_REGS) hands back the registers it had, which
 * become its crash note. Stock 6.1 has no NMI on Debian's kernels: a CPU
 * spinning with interrupts masked is simply left running on a panic, and its
 * registers miss from the vmcore.
 *
 * Neither stock function is exported or has a hook, so this module puts a
 * kprobe on the first instruction of each and has the pre-handler move the PC
 * to a replacement here ("Changing Execution Path" in
 * Documentation/trace/kprobes.rst). The replacement runs as if it had been
 * called instead: same arguments, returns to the same caller.
 *
 * Loaded anywhere but under parkvisor it logs why and refuses to load.
 */
#define pr_fmt(fmt) "parkvisor_stop: " fmt

#include <linux/arm-smccc.h>
#include <linux/console.h>
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/cpumask.h>
#include <linux/device.h>
#include <linux/crash_core.h>
#include <linux/delay.h>
#include <linux/elf.h>
#include <linux/elfcore.h>
#include <linux/gfp.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/kexec.h>
#include <linux/kprobes.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/of.h>
#include <linux/percpu.h>
#include <linux/printk.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <uapi/linux/psci.h>
#include <asm/barrier.h>
#include <asm/cputype.h>
#include <asm/ptrace.h>

/* The vendor hypervisor service, generated from parkvisor-abi. */
#include "parkvisor_abi.h"

/* UUID f98411cd-4dea-4c9d-973e-208eee288f9b as CALL_UID returns it. */
static const u32 pv_uid[4] = { PV_UID0, PV_UID1, PV_UID2, PV_UID3 };

/* FAST_STOP attempts for the CPUs the stop IPI left running. */
#define PV_STOP_ATTEMPTS	3
/* No MPIDR recorded yet: matches no hypervisor entry. */
#define PV_NO_MPIDR		(~0ULL)

/*
 * One SAVE_REGS entry (docs/abi.md): mpidr, status, user_pt_regs, and with
 * SAVE_SP_EL0 the stopped context's SP_EL0 (the running task, in EL1).
 */
struct pv_saved_cpu {
	u64 mpidr;
	u64 status;
	struct user_pt_regs regs;
	u64 sp_el0;
};

static_assert(offsetof(struct pv_saved_cpu, status) == PV_SAVE_STATUS_OFFSET);
static_assert(offsetof(struct pv_saved_cpu, regs) == PV_SAVE_REGS_OFFSET);
static_assert(offsetof(struct pv_saved_cpu, sp_el0) == PV_SAVE_SP_EL0_OFFSET);
static_assert(sizeof(struct pv_saved_cpu) == PV_SAVE_ENTRY_BYTES_SP_EL0);

static unsigned int timeout_us = 500000;
module_param(timeout_us, uint, 0644);
MODULE_PARM_DESC(timeout_us, "FAST_STOP deadline in microseconds (default 500000)");

static unsigned int ipi_wait_us = 1000000;
module_param(ipi_wait_us, uint, 0644);
MODULE_PARM_DESC(ipi_wait_us,
		 "kexec: how long the stop IPI is given before FAST_STOP (default 1 s, 0: no IPI)");

static bool kexec = true;
module_param(kexec, bool, 0444);
MODULE_PARM_DESC(kexec, "Replace the kexec CPU teardown (default on)");

static bool kdump = true;
module_param(kdump, bool, 0444);
MODULE_PARM_DESC(kdump, "Add FAST_STOP to the crash-dump CPU stop (default on)");

static bool fail_once;
module_param(fail_once, bool, 0644);
MODULE_PARM_DESC(fail_once, "Test only: the next FAST_STOP pretends to fail, parking nothing");

static unsigned int first_deadline_us;
module_param(first_deadline_us, uint, 0644);
MODULE_PARM_DESC(first_deadline_us,
		 "Test only: deadline of the first FAST_STOP attempt, to provoke a partial stop");

static bool console_guard = true;
module_param(console_guard, bool, 0644);
MODULE_PARM_DESC(console_guard,
		 "Test only: 0 drops the console precautions around the kexec stop");

static u64 save_flags;		/* the SAVE_* flags this hypervisor accepts */
static struct pv_saved_cpu *save_area;
static size_t save_entries, entry_bytes;
static void (*crash_save_cpu_fn)(struct pt_regs *regs, int cpu);
static DEFINE_PER_CPU(void *, note_buf);	/* each CPU's crash note */

/*
 * MPIDR of each Linux CPU, to match the hypervisor's entries (its vCPU order
 * need not be Linux's logical order). Filled as CPUs come online.
 */
static DEFINE_PER_CPU(u64, cpu_mpidr) = PV_NO_MPIDR;
static enum cpuhp_state mpidr_state;
/* Set on the CPU that runs the stock function, so the probe lets it be. */
static DEFINE_PER_CPU(bool, in_stock);
/* The CPU's crash note was written (by the crash IPI or by us). */
static DEFINE_PER_CPU(bool, noted);
static DEFINE_PER_CPU(call_single_data_t, stop_csd);
static bool kexec_probed, kdump_probed, noted_probed;

static int note_mpidr(unsigned int cpu)
{
	this_cpu_write(cpu_mpidr, read_cpuid_mpidr() & MPIDR_HWID_BITMASK);
	return 0;
}

/* SMCCC discovery: a 1.1 HVC conduit, the vendor UID, the FEATURES bits. */
static bool parkvisor_present(char *why, size_t len)
{
	struct arm_smccc_res res;
	s32 features, flags;

	if (arm_smccc_get_version() < ARM_SMCCC_VERSION_1_1) {
		snprintf(why, len, "SMCCC %#x < 1.1", arm_smccc_get_version());
		return false;
	}
	if (arm_smccc_1_1_get_conduit() != SMCCC_CONDUIT_HVC) {
		snprintf(why, len, "SMCCC conduit is not HVC");
		return false;
	}
	arm_smccc_1_1_hvc(PV_CALL_UID, &res);
	if ((u32)res.a0 != pv_uid[0] || (u32)res.a1 != pv_uid[1] ||
	    (u32)res.a2 != pv_uid[2] || (u32)res.a3 != pv_uid[3]) {
		snprintf(why, len, "hypervisor UID %08x-%08x-%08x-%08x is not parkvisor's",
			 (u32)res.a0, (u32)res.a1, (u32)res.a2, (u32)res.a3);
		return false;
	}
	/* SMC32 functions: the result is the low 32 bits of x0. */
	arm_smccc_1_1_hvc(PV_FEATURES, &res);
	features = (s32)res.a0;
	if (features < 0 || !(features & PV_FEAT_FAST_STOP) || !(features & PV_FEAT_VCPU_STATE)) {
		snprintf(why, len, "parkvisor without FAST_STOP and VCPU_STATE (features %#x)",
			 features);
		return false;
	}
	if (features & PV_FEAT_FAST_STOP_FLAGS) {
		arm_smccc_1_1_hvc(PV_FAST_STOP_FLAGS, &res);
		flags = (s32)res.a0;
		if (flags > 0 && (flags & PV_STOP_SAVE_REGS))
			save_flags = flags & (PV_STOP_SAVE_REGS | PV_STOP_SAVE_SP_EL0);
	}
	return true;
}

struct stop_result {
	long status;		/* x0: 0, or a PSCI error */
	unsigned long stopped;	/* x1: vCPUs this call parked */
	unsigned long missed;	/* x2: vCPUs not confirmed by the deadline */
	unsigned long ns;	/* x3: hypervisor-timed duration */
};

static struct stop_result fast_stop(u64 flags, unsigned int deadline_us)
{
	struct arm_smccc_res res;

	if (flags)
		arm_smccc_1_1_hvc(PV_FAST_STOP, deadline_us, flags, virt_to_phys(save_area),
				  save_entries * entry_bytes, &res);
	else
		arm_smccc_1_1_hvc(PV_FAST_STOP, deadline_us, 0, &res);
	return (struct stop_result){ res.a0, res.a1, res.a2, res.a3 };
}

static bool vcpu_off(unsigned int cpu)
{
	struct arm_smccc_res res;
	u64 mpidr = per_cpu(cpu_mpidr, cpu);

	if (mpidr == PV_NO_MPIDR)
		return false;
	arm_smccc_1_1_hvc(PV_VCPU_STATE, mpidr, &res);
	return (long)res.a0 == PV_VCPU_OFF;
}

/* Drops from @cpus every CPU the hypervisor reports OFF (parked). */
static void drop_parked(struct cpumask *cpus)
{
	unsigned int cpu;

	for_each_cpu(cpu, cpus)
		if (vcpu_off(cpu))
			cpumask_clear_cpu(cpu, cpus);
}

static int cpu_of_mpidr(u64 mpidr)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu)
		if (per_cpu(cpu_mpidr, cpu) == mpidr)
			return cpu;
	return -1;
}

static struct pv_saved_cpu *entry(size_t i)
{
	return (struct pv_saved_cpu *)((char *)save_area + i * entry_bytes);
}

/*
 * The pid of the task a CPU stopped in EL1 was running: arm64 keeps
 * `current` in SP_EL0 while in the kernel. 0 (the idle task's) when unknown:
 * stopped in EL0, no SP_EL0 from the hypervisor, or not a readable task.
 */
static pid_t stopped_pid(const struct pv_saved_cpu *e)
{
	const struct task_struct *task = (const void *)e->sp_el0;
	u64 mode = e->regs.pstate & PSR_MODE_MASK;
	pid_t pid;

	if (!(save_flags & PV_STOP_SAVE_SP_EL0) || (mode != PSR_MODE_EL1h && mode != PSR_MODE_EL1t))
		return 0;
	if ((long)e->sp_el0 >= 0 || copy_from_kernel_nofault(&pid, &task->pid, sizeof(pid)))
		return 0;
	return pid;
}

/*
 * crash_save_cpu() writes the calling task's pid into the note; put the
 * stopped CPU's own there. The note: Elf64_Nhdr, "CORE" padded to 8, then
 * struct elf_prstatus.
 */
static void fix_note_pid(unsigned int cpu, pid_t pid)
{
	struct elf_prstatus *prs;
	char *buf = per_cpu(note_buf, cpu);

	if (!buf)
		return;
	prs = (void *)(buf + sizeof(struct elf_note) + ALIGN(sizeof(KEXEC_CORE_NOTE_NAME), 4));
	prs->common.pr_pid = pid;
}

/*
 * Writes a crash note for every CPU the last FAST_STOP saved registers of
 * and that has none yet, exactly as the crash IPI handler would have. Any
 * result: a stop that missed its deadline still saved those it parked.
 */
static unsigned int save_notes(void)
{
	unsigned int saved = 0, self = smp_processor_id();
	struct pt_regs regs;
	size_t i;
	int cpu;

	for (i = 0; i < save_entries; i++) {
		struct pv_saved_cpu *e = entry(i);

		if (e->status != PV_SAVE_STATUS_SAVED)
			continue;
		cpu = cpu_of_mpidr(e->mpidr);
		if (cpu < 0 || cpu == self || per_cpu(noted, cpu))
			continue;
		memset(&regs, 0, sizeof(regs));
		regs.user_regs = e->regs;
		crash_save_cpu_fn(&regs, cpu);
		fix_note_pid(cpu, stopped_pid(e));
		per_cpu(noted, cpu) = true;
		saved++;
	}
	return saved;
}

struct stop_tally {
	unsigned int attempts, saved;
	long first_status, last_status;
	unsigned long parked, first_parked;
};

/*
 * FAST_STOP for the CPUs in @left, again for those a missed deadline left
 * running (the ones parked stay parked: a retry only asks those still ON).
 * Interrupts masked. Clears @left as CPUs park; true when it is empty.
 */
static bool fast_stop_rest(struct cpumask *left, bool notes, struct stop_tally *t)
{
	u64 flags = notes ? save_flags : 0;
	struct stop_result r;

	if (cpumask_empty(left))
		return true;
	if (fail_once) {
		/* As if every attempt missed its deadline with nothing parked. */
		fail_once = false;
		t->attempts = PV_STOP_ATTEMPTS;
		t->first_status = PV_RET_INTERNAL_FAILURE;
		t->last_status = PV_RET_INTERNAL_FAILURE;
		return false;
	}
	while (!cpumask_empty(left) && t->attempts < PV_STOP_ATTEMPTS) {
		unsigned int deadline = t->attempts || !first_deadline_us ?
					timeout_us : first_deadline_us;

		if (flags)
			memset(save_area, 0, save_entries * entry_bytes);
		r = fast_stop(flags, deadline);
		if (!t->attempts) {
			t->first_status = r.status;
			t->first_parked = r.stopped;
		}
		t->attempts++;
		t->last_status = r.status;
		t->parked += r.stopped;
		if (flags)
			t->saved += save_notes();
		if (r.status == 0)
			cpumask_clear(left);
		else
			drop_parked(left);
		if (r.status != 0 && r.status != PV_RET_INTERNAL_FAILURE)
			break;	/* bad flags or another stop: a retry does not help */
	}
	return cpumask_empty(left);
}

/*
 * Takes the CPUs in @stopped out of the online mask, as each CPU's own
 * teardown would have (set_cpu_online() is not exported in 6.1).
 */
static void mark_offline(const struct cpumask *stopped)
{
	unsigned int cpu;

	for_each_cpu(cpu, stopped) {
		if (cpumask_test_and_clear_cpu(cpu, &__cpu_online_mask))
			atomic_dec(&__num_online_cpus);
	}
}

/*
 * The kexec stop IPI: what a CPU the stock crash IPI stops does, minus the
 * note. It runs in interrupt context, so the CPU it stops holds no lock
 * taken with interrupts masked. PSCI CPU_OFF parks it in parkvisor.
 */
static void park_self(void *unused)
{
	struct arm_smccc_res res;

	arm_smccc_1_1_hvc(PSCI_0_2_FN_CPU_OFF, &res);
	for (;;) {
		wfe();
		wfi();
	}
}

static struct kprobe kexec_probe = { .symbol_name = "smp_shutdown_nonboot_cpus" };
static struct kprobe crash_probe = { .symbol_name = "crash_smp_send_stop" };

static void stock_shutdown_nonboot_cpus(unsigned int primary_cpu)
{
	/* Through the probe, which lets the stock code run on this CPU. */
	this_cpu_write(in_stock, true);
	((void (*)(unsigned int))kexec_probe.addr)(primary_cpu);
	this_cpu_write(in_stock, false);
}

/*
 * Replaces smp_shutdown_nonboot_cpus(primary_cpu) on kexec. Called from
 * kernel_kexec() in process context on the reboot CPU (the task is already
 * bound to it), after device_shutdown(). machine_kexec() then wants exactly
 * one CPU online and CPU hotplug disabled.
 *
 * The stock path (hotplug, one CPU at a time) is taken whenever nothing is
 * parked yet and the stop cannot be made safe: this is not the reboot CPU,
 * or console_sem stays busy (its owner, stopped inside a console driver,
 * would make every later printk spin in console_trylock_spinning()).
 *
 * Otherwise, holding console_sem so that no stopped CPU can own it or be
 * printing: the stop IPI, then FAST_STOP (retried) for those that did not
 * answer in ipi_wait_us. What this CPU does afterwards (console_unlock,
 * printk, kmsg_dump, machine_kexec) takes no lock a CPU stopped by the IPI
 * can hold, since all of those are taken with interrupts masked; with
 * oops_in_progress the PL011 console write only trylocks its port lock.
 * Interrupts stay masked (machine_kexec() masks them first anyway), so no
 * handler runs that could wait for a stopped CPU.
 */
static void fast_shutdown_nonboot_cpus(unsigned int primary_cpu)
{
	static struct cpumask others, left;	/* kexec is serialised */
	unsigned int self = smp_processor_id(), cpu, n, by_ipi;
	struct stop_tally t = { 0 };
	bool console_held = false;
	u64 t0, t1;
	int i;

	if (!cpu_online(primary_cpu))
		primary_cpu = cpumask_first(cpu_online_mask);
	if (primary_cpu != self) {
		pr_info("kexec: reboot CPU %u is not this CPU %u: stock CPU teardown\n",
			primary_cpu, self);
		stock_shutdown_nonboot_cpus(primary_cpu);
		return;
	}
	/* What smp_shutdown_nonboot_cpus() ends with; a mutex: before any stop. */
	cpu_hotplug_disable();
	for (i = 0; console_guard && i < 1000 && !(console_held = console_trylock()); i++)
		usleep_range(100, 200);
	if (console_guard && !console_held) {
		cpu_hotplug_enable();
		pr_info("kexec: console_sem stayed busy for 100 ms: stock CPU teardown\n");
		stock_shutdown_nonboot_cpus(primary_cpu);
		return;
	}

	cpumask_copy(&others, cpu_online_mask);
	cpumask_clear_cpu(self, &others);
	cpumask_copy(&left, &others);
	n = cpumask_weight(&others);
	/*
	 * From the first IPI on, this CPU neither sleeps nor takes interrupts:
	 * another task, a handler or a softirq here could spin on a plain or
	 * _bh spinlock that a CPU parked by the IPI holds.
	 */
	local_irq_disable();
	t0 = ktime_get_mono_fast_ns();
	if (ipi_wait_us) {
		u64 end = t0 + ipi_wait_us * 1000ULL;

		for_each_cpu(cpu, &left)
			smp_call_function_single_async(cpu, per_cpu_ptr(&stop_csd, cpu));
		do {
			drop_parked(&left);
			if (cpumask_empty(&left))
				break;
			cpu_relax();
		} while (ktime_get_mono_fast_ns() < end);
	}
	by_ipi = n - cpumask_weight(&left);
	fast_stop_rest(&left, false, &t);
	t1 = ktime_get_mono_fast_ns();

	if (cpumask_equal(&left, &others)) {
		/*
		 * Nothing parked, by VCPU_STATE (a vCPU that acknowledges after a
		 * missed deadline parks without being counted in x1): the stock
		 * teardown is still safe.
		 */
		local_irq_enable();
		if (console_held)
			console_unlock();
		cpu_hotplug_enable();
		pr_warn("kexec: FAST_STOP failed (status %ld, %u attempts, parked 0): stock CPU teardown\n",
			t.last_status, t.attempts);
		stock_shutdown_nonboot_cpus(primary_cpu);
		return;
	}
	cpumask_andnot(&others, &others, &left);
	mark_offline(&others);
	if (console_guard)
		oops_in_progress = 1;
	if (console_held)
		console_unlock();
	if (!cpumask_empty(&left)) {
		/* machine_kexec() will refuse, as after a failed stock cpu_down(). */
		pr_emerg("kexec: CPUs %*pbl still running after %u FAST_STOP attempts (status %ld)\n",
			 cpumask_pr_args(&left), t.attempts, t.last_status);
		return;
	}
	pr_info("kexec: stopped %u CPUs in %llu us: %u by the stop IPI, %u by FAST_STOP (%u attempts; first: status %ld, parked %lu)\n",
		n, (t1 - t0) / 1000, by_ipi, n - by_ipi, t.attempts, t.first_status,
		t.first_parked);
}

/* Marks the CPUs whose note is written, by the crash IPI or by us. */
static int note_written(struct kprobe *p, struct pt_regs *regs)
{
	unsigned long cpu = regs->regs[1];

	if (cpu < nr_cpu_ids)
		per_cpu(noted, cpu) = true;
	return 0;
}

static struct kprobe noted_probe = { .symbol_name = "crash_save_cpu", .pre_handler = note_written };

/*
 * Wraps crash_smp_send_stop() in machine_crash_shutdown(): the panicking
 * CPU, interrupts masked. The stock function runs first, unchanged: the
 * crash IPI, up to 1 s of wait, each CPU that takes it writing its own note
 * and parking itself with CPU_OFF, the SDEI masking. A CPU spinning with
 * interrupts masked never takes it; FAST_STOP then parks it wherever it is
 * and, with SAVE_REGS, its registers become its note. The online mask is
 * left as the stock crash stop leaves it (6.1: every CPU online; 6.12: only
 * the panicking one, when the CPUs that took the IPI went offline): crash(8)
 * reads it, and 6.12's machine_kexec() warns when more than one is online.
 */
static void fast_crash_smp_send_stop(void)
{
	static bool done;	/* the panic path may call this twice */
	static struct cpumask left, stuck;
	bool notes = save_flags && save_area && crash_save_cpu_fn && noted_probed;
	bool ipi_offlines = false;
	unsigned int self = smp_processor_id(), cpu, answered = 0;
	struct stop_tally t = { 0 };

	if (done)
		return;
	done = true;
	this_cpu_write(in_stock, true);
	((void (*)(void))crash_probe.addr)();
	this_cpu_write(in_stock, false);

	cpumask_copy(&left, cpu_online_mask);
	cpumask_clear_cpu(self, &left);
	for_each_possible_cpu(cpu) {
		if (cpu == self || !noted_probed || !per_cpu(noted, cpu))
			continue;
		answered++;
		/* 6.12's crash IPI takes its CPU offline; 6.1's leaves it online. */
		if (!cpu_online(cpu))
			ipi_offlines = true;
		cpumask_clear_cpu(cpu, &left);
	}
	if (cpumask_empty(&left))
		return;
	cpumask_copy(&stuck, &left);
	/* CPUs that took the IPI keep their note even if FAST_STOP parks them. */
	fast_stop_rest(&left, notes, &t);
	/* Those parked leave the online mask as the ones that took the IPI did. */
	if (ipi_offlines) {
		cpumask_andnot(&stuck, &stuck, &left);
		mark_offline(&stuck);
	}
	if (!cpumask_empty(&left))
		pr_emerg("crash: CPUs %*pbl still running after %u FAST_STOP attempts (status %ld)\n",
			 cpumask_pr_args(&left), t.attempts, t.last_status);
	pr_info("crash: %u CPUs took the crash IPI; FAST_STOP parked %lu more (%u attempts; first: status %ld, parked %lu), registers of %u saved\n",
		answered, t.parked, t.attempts, t.first_status, t.first_parked, t.saved);
}

/*
 * Pre-handler: run the replacement instead of the probed function. The probe
 * sits on its first instruction, so x0..x7 and the link register still hold
 * the call's arguments and return address.
 */
static int redirect(struct kprobe *p, struct pt_regs *regs)
{
	if (this_cpu_read(in_stock))
		return 0;	/* single-step the original and go on */
	if (p == &kexec_probe)
		instruction_pointer_set(regs, (unsigned long)fast_shutdown_nonboot_cpus);
	else
		instruction_pointer_set(regs, (unsigned long)fast_crash_smp_send_stop);
	return 1;		/* resume at the new PC, skip the single-step */
}

/*
 * crash_save_cpu() is not exported, nor is kallsyms_lookup_name(). Registering
 * a kprobe on a symbol resolves its address (kprobes may look up any symbol
 * it can probe); we take the address and remove the probe at once. This
 * relies on the symbol's name, like the probes themselves do.
 */
static void *symbol_address(const char *name)
{
	struct kprobe kp = { .symbol_name = name };
	void *addr;

	if (register_kprobe(&kp))
		return NULL;
	addr = kp.addr;
	unregister_kprobe(&kp);
	return addr;
}

/* The hypervisor's vCPU count: cpu nodes in the DT, which nr_cpus= may cut. */
static unsigned int dt_cpus(void)
{
	struct device_node *dn;
	unsigned int n = 0;

	for_each_of_cpu_node(dn)
		n++;
	return max(n, nr_cpu_ids);
}

/*
 * Each CPU's crash note buffer, from what its sysfs attribute "crash_notes"
 * shows (the buffer's physical address; the crash_notes variable itself is
 * neither exported nor, without CONFIG_KALLSYMS_ALL, in kallsyms).
 */
static void find_note_buffers(void)
{
	char *page = (char *)__get_free_page(GFP_KERNEL);
	const struct attribute_group **g;
	struct device_attribute *da;
	struct attribute **a;
	struct device *dev;
	unsigned int cpu;
	u64 phys;

	if (!page)
		return;
	for_each_possible_cpu(cpu) {
		dev = get_cpu_device(cpu);
		for (g = dev ? dev->groups : NULL; g && *g; g++) {
			for (a = (*g)->attrs; a && *a; a++) {
				if (strcmp((*a)->name, "crash_notes"))
					continue;
				da = container_of(*a, struct device_attribute, attr);
				if (da->show && da->show(dev, da, page) > 0 &&
				    !kstrtoull(strim(page), 16, &phys))
					per_cpu(note_buf, cpu) = phys_to_virt(phys);
			}
		}
	}
	free_page((unsigned long)page);
}

static void setup_kdump_notes(void)
{
	if (!save_flags)
		return;
	crash_save_cpu_fn = symbol_address("crash_save_cpu");
	if (save_flags & PV_STOP_SAVE_SP_EL0)
		find_note_buffers();
	entry_bytes = save_flags & PV_STOP_SAVE_SP_EL0 ? PV_SAVE_ENTRY_BYTES_SP_EL0 :
						      PV_SAVE_ENTRY_BYTES;
	save_entries = dt_cpus();
	save_area = kcalloc(save_entries, entry_bytes, GFP_KERNEL);
	noted_probed = crash_save_cpu_fn && !register_kprobe(&noted_probe);
}

static int __init parkvisor_stop_init(void)
{
	char why[96] = "";
	unsigned int cpu;
	int ret;

	if (!parkvisor_present(why, sizeof(why))) {
		pr_info("not running under parkvisor (%s): not loaded\n", why);
		return -ENODEV;
	}
	for_each_possible_cpu(cpu)
		INIT_CSD(per_cpu_ptr(&stop_csd, cpu), park_self, NULL);
	ret = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "parkvisor_stop:mpidr", note_mpidr, NULL);
	if (ret < 0)
		return ret;
	mpidr_state = ret;

	if (kdump)
		setup_kdump_notes();
	if (kexec) {
		kexec_probe.pre_handler = redirect;
		ret = register_kprobe(&kexec_probe);
		if (ret)
			pr_warn("cannot probe %s (%d): kexec stays stock\n",
				kexec_probe.symbol_name, ret);
		kexec_probed = !ret;
	}
	if (kdump) {
		crash_probe.pre_handler = redirect;
		ret = register_kprobe(&crash_probe);
		if (ret)
			pr_warn("cannot probe %s (%d): kdump stays stock\n",
				crash_probe.symbol_name, ret);
		kdump_probed = !ret;
	}
	/* The probes enter this module's text at any time from now on. */
	if (kexec_probed || kdump_probed)
		__module_get(THIS_MODULE);
	pr_info("parkvisor found (SMCCC %#x, FAST_STOP%s%s): kexec %s, kdump %s%s\n",
		arm_smccc_get_version(), save_flags ? " + SAVE_REGS" : "",
		save_flags & PV_STOP_SAVE_SP_EL0 ? " + SP_EL0" : "",
		kexec_probed ? "via FAST_STOP" : "stock",
		kdump_probed ? "via FAST_STOP" : "stock",
		kdump_probed && !(save_area && noted_probed) ?
			" (no register save: CPUs it parks get no vmcore note)" : "");
	return 0;
}

/* Only reached when no probe was registered (see the __module_get above). */
static void __exit parkvisor_stop_exit(void)
{
	if (noted_probed)
		unregister_kprobe(&noted_probe);
	if (mpidr_state > 0)
		cpuhp_remove_state(mpidr_state);
	kfree(save_area);
}

module_init(parkvisor_stop_init);
module_exit(parkvisor_stop_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Stop secondary CPUs with parkvisor's FAST_STOP on kexec and kdump");
