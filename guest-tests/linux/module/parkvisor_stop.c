// SPDX-License-Identifier: GPL-2.0
/*
 * parkvisor_stop: let an unmodified Linux stop its secondary CPUs with
 * parkvisor's FAST_STOP hypercall when it kexecs or takes a crash dump.
 *
 * Stock 6.1 takes the secondaries down one at a time through CPU hotplug on
 * kexec (smp_shutdown_nonboot_cpus), and on a panic gives up after one second
 * on a CPU that spins with interrupts masked (crash_smp_send_stop), leaving
 * that CPU's registers out of the vmcore. parkvisor can park every other vCPU
 * at once, at whatever instruction it is executing, and (with the SAVE_REGS
 * flag) hand back the registers each one had at that moment.
 *
 * Neither function is exported or has a hook, so this module puts a kprobe on
 * the first instruction of each and has the pre-handler move the PC to a
 * replacement here ("Changing Execution Path" in
 * Documentation/trace/kprobes.rst). The replacement runs as if it had been
 * called instead: same arguments, returns to the same caller.
 *
 * Loaded anywhere but under parkvisor it logs so and registers nothing.
 */
#define pr_fmt(fmt) "parkvisor_stop: " fmt

#include <linux/arm-smccc.h>
#include <linux/console.h>
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/cpumask.h>
#include <linux/crash_core.h>
#include <linux/delay.h>
#include <linux/irqflags.h>
#include <linux/kexec.h>
#include <linux/kprobes.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <asm/cputype.h>
#include <asm/ptrace.h>

/* Vendor hypervisor service, docs/abi.md (owner 6). */
#define PV_CALL_UID		0x8600FF01
#define PV_FEATURES		0x86000000
#define PV_FAST_STOP		0xC6000001
#define PV_FAST_STOP_FLAGS	0x86000004
#define PV_FEAT_FAST_STOP	BIT(1)
#define PV_FEAT_FAST_STOP_FLAGS	BIT(4)
#define PV_STOP_SAVE_REGS	BIT(0)
/* UUID f98411cd-4dea-4c9d-973e-208eee288f9b as CALL_UID returns it. */
static const u32 pv_uid[4] = { 0xCD1184F9, 0x9D4CEA4D, 0x8E203E97, 0x9B8F28EE };

/* One SAVE_REGS entry (SAVE_REGS ABI): mpidr, status, then user_pt_regs. */
struct pv_saved_cpu {
	u64 mpidr;
	u64 status;
	struct user_pt_regs regs;
};
static_assert(sizeof(struct pv_saved_cpu) == 288);

static unsigned int timeout_us = 500000;
module_param(timeout_us, uint, 0644);
MODULE_PARM_DESC(timeout_us, "FAST_STOP deadline in microseconds (default 500000)");

static bool kexec = true;
module_param(kexec, bool, 0444);
MODULE_PARM_DESC(kexec, "Replace the kexec CPU teardown (default on)");

static bool kdump = true;
module_param(kdump, bool, 0444);
MODULE_PARM_DESC(kdump, "Replace the crash-dump CPU stop (default on)");

static bool fail_once;
module_param(fail_once, bool, 0644);
MODULE_PARM_DESC(fail_once, "Test only: pretend the next FAST_STOP failed, to exercise the fallback");

static bool console_guard = true;
module_param(console_guard, bool, 0644);
MODULE_PARM_DESC(console_guard, "Test only: 0 drops the console precautions around the kexec stop, to show the hazard they prevent");

static bool save_regs;		/* the hypervisor offers SAVE_REGS */
static struct pv_saved_cpu *save_area;
static size_t save_area_size;
static void (*crash_save_cpu_fn)(struct pt_regs *regs, int cpu);

/* MPIDR of each Linux CPU, to match the hypervisor's entries (its vCPU order
 * need not be Linux's logical order). Filled as CPUs come online. */
static DEFINE_PER_CPU(u64, cpu_mpidr);
static enum cpuhp_state mpidr_state;

/* Set while the stock function runs as our fallback, so the probe lets it be. */
static bool in_fallback;
static bool kexec_probed, kdump_probed;

static int note_mpidr(unsigned int cpu)
{
	this_cpu_write(cpu_mpidr, read_cpuid_mpidr() & MPIDR_HWID_BITMASK);
	return 0;
}

/* SMCCC discovery: a 1.1 HVC conduit, the vendor UID, the FEATURES bit. */
static bool parkvisor_present(char *why, size_t len)
{
	struct arm_smccc_res res;

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
	arm_smccc_1_1_hvc(PV_FEATURES, &res);
	if ((long)res.a0 < 0 || !(res.a0 & PV_FEAT_FAST_STOP)) {
		snprintf(why, len, "parkvisor without FAST_STOP (features %#lx)", res.a0);
		return false;
	}
	if (res.a0 & PV_FEAT_FAST_STOP_FLAGS) {
		arm_smccc_1_1_hvc(PV_FAST_STOP_FLAGS, &res);
		save_regs = (long)res.a0 > 0 && (res.a0 & PV_STOP_SAVE_REGS);
	}
	return true;
}

struct stop_result {
	long status;		/* x0: 0, or a PSCI error */
	unsigned long stopped;	/* x1: vCPUs this call parked */
	unsigned long missed;	/* x2: vCPUs not confirmed by the deadline */
	unsigned long ns;	/* x3: hypervisor-timed duration */
};

static struct stop_result fast_stop(bool with_regs)
{
	struct arm_smccc_res res;
	struct stop_result r;

	if (fail_once) {
		/* Nothing is stopped: the caller must take the stock path. */
		fail_once = false;
		return (struct stop_result){ .status = -6 };
	}
	if (with_regs)
		arm_smccc_1_1_hvc(PV_FAST_STOP, timeout_us, PV_STOP_SAVE_REGS,
				  virt_to_phys(save_area), save_area_size, &res);
	else
		arm_smccc_1_1_hvc(PV_FAST_STOP, timeout_us, 0, &res);
	r.status = res.a0;
	r.stopped = res.a1;
	r.missed = res.a2;
	r.ns = res.a3;
	return r;
}

#define PV_VCPU_STATE		0xC6000002
#define PV_VCPU_OFF		1

/*
 * Take the CPUs that are no longer running out of the online mask, as each
 * CPU's own teardown would have (set_cpu_online() is not exported in 6.1).
 * After a successful stop that is every other CPU; after a failed one, those
 * the hypervisor reports parked (VCPU_STATE), so that the stock path that
 * follows only waits for CPUs that can still answer.
 */
static void offline_stopped_cpus(bool all_stopped)
{
	unsigned int cpu, self = smp_processor_id();
	struct arm_smccc_res res;

	for_each_online_cpu(cpu) {
		if (cpu == self)
			continue;
		if (!all_stopped) {
			arm_smccc_1_1_hvc(PV_VCPU_STATE, per_cpu(cpu_mpidr, cpu), &res);
			if (res.a0 != PV_VCPU_OFF)
				continue;
		}
		cpumask_clear_cpu(cpu, &__cpu_online_mask);
		atomic_dec(&__num_online_cpus);
	}
}

static struct kprobe kexec_probe = { .symbol_name = "smp_shutdown_nonboot_cpus" };
static struct kprobe crash_probe = { .symbol_name = "crash_smp_send_stop" };

/*
 * Replaces smp_shutdown_nonboot_cpus(primary_cpu) on kexec. Called from
 * kernel_kexec() in process context on the reboot CPU (the task is already
 * bound to it), after device_shutdown(). machine_kexec() then wants exactly
 * one CPU online and CPU hotplug disabled.
 *
 * The other CPUs stop at an arbitrary instruction and may hold any lock
 * forever. What this CPU still does afterwards is therefore limited to:
 * clearing bits in the online mask, printing through the console, and what
 * kernel_kexec() does next (kmsg_dump, the "Bye!" printk, the jump), all with
 * interrupts masked so that no handler (a timer, a scheduler tick balancing
 * runqueues, an RCU callback) can spin on a lock a stopped CPU holds. Nothing
 * on that path waits for another CPU. The console hazards:
 *  - console_sem held by a stopped CPU would keep every later message in the
 *    buffer: take it ourselves (bounded wait) before the stop, so no stopped
 *    CPU can own it, and release it after, which prints what is pending;
 *  - the UART port lock held by a stopped CPU mid tty write would deadlock the
 *    console write: oops_in_progress makes the PL011 console write use a
 *    trylock and print regardless, as it does in an oops.
 */
static void fast_shutdown_nonboot_cpus(unsigned int primary_cpu)
{
	bool console_held = false;
	struct stop_result r;
	u64 t_entry = ktime_get_mono_fast_ns(), t0, t1;
	int i;

	/* What smp_shutdown_nonboot_cpus() ends with; a mutex, so taken before
	 * the stop, while no stopped CPU can be holding it. */
	cpu_hotplug_disable();

	for (i = 0; console_guard && i < 1000 && !(console_held = console_trylock()); i++)
		udelay(100);

	local_irq_disable();
	t0 = ktime_get_mono_fast_ns();
	r = fast_stop(false);
	t1 = ktime_get_mono_fast_ns();
	if (r.status == 0) {
		offline_stopped_cpus(true);
		if (console_guard)
			oops_in_progress = 1;
		if (console_held)
			console_unlock();
		/* Interrupts stay masked; machine_kexec() masks them anyway. */
		pr_info("kexec: FAST_STOP parked %lu CPUs in %lu ns (hypervisor clock); %llu us in the call, %llu us before it%s\n",
			r.stopped, r.ns, (t1 - t0) / 1000, (t0 - t_entry) / 1000,
			console_held ? "" : " (console_sem stayed busy)");
		return;
	}
	offline_stopped_cpus(false);
	local_irq_enable();
	if (console_held)
		console_unlock();
	cpu_hotplug_enable();
	pr_warn("kexec: FAST_STOP failed (status %ld, parked %lu, %lu missed the %u us deadline, %llu us): stock CPU teardown\n",
		r.status, r.stopped, r.missed, timeout_us, (t1 - t0) / 1000);
	/* Through the probe, which lets the stock code run this time. */
	WRITE_ONCE(in_fallback, true);
	((void (*)(unsigned int))kexec_probe.addr)(primary_cpu);
	WRITE_ONCE(in_fallback, false);
}

/*
 * Replaces crash_smp_send_stop() in machine_crash_shutdown(): the panicking
 * CPU, interrupts masked. Stock sends the crash IPI and waits up to 1 s; a
 * CPU spinning with interrupts masked never takes it, and its registers
 * never reach the vmcore. FAST_STOP parks every CPU wherever it is and, with
 * SAVE_REGS, returns the registers it had; crash_save_cpu() writes them into
 * that CPU's ELF note exactly as the crash IPI handler would have.
 */
static void fast_crash_smp_send_stop(void)
{
	static bool done;	/* the panic path may call this twice */
	bool with_regs = save_regs && save_area && crash_save_cpu_fn;
	unsigned int cpu, saved = 0, i, n;
	struct stop_result r;

	if (done)
		return;
	done = true;
	if (num_online_cpus() == 1)
		return;
	if (with_regs)
		memset(save_area, 0, save_area_size);
	r = fast_stop(with_regs);
	if (r.status == 0 && with_regs) {
		n = save_area_size / sizeof(*save_area);
		for (i = 0; i < n; i++) {
			struct pv_saved_cpu *e = &save_area[i];
			struct pt_regs regs;

			if (e->status != 1)
				continue;
			for_each_online_cpu(cpu) {
				if (per_cpu(cpu_mpidr, cpu) != e->mpidr ||
				    cpu == smp_processor_id())
					continue;
				memset(&regs, 0, sizeof(regs));
				regs.user_regs = e->regs;
				crash_save_cpu_fn(&regs, cpu);
				saved++;
				break;
			}
		}
	}
	if (r.status == 0) {
		offline_stopped_cpus(true);
		pr_info("crash: FAST_STOP parked %lu CPUs in %lu ns, registers of %u saved\n",
			r.stopped, r.ns, saved);
		return;
	}
	offline_stopped_cpus(false);
	pr_warn("crash: FAST_STOP failed (status %ld, parked %lu, %lu missed the deadline): stock crash IPI for CPUs %*pbl\n",
		r.status, r.stopped, r.missed, cpumask_pr_args(cpu_online_mask));
	WRITE_ONCE(in_fallback, true);
	((void (*)(void))crash_probe.addr)();
	WRITE_ONCE(in_fallback, false);
}

/* Pre-handler: run the replacement instead of the probed function. The probe
 * sits on its first instruction, so x0..x7 and the link register still hold
 * the call's arguments and return address. */
static int redirect(struct kprobe *p, struct pt_regs *regs)
{
	if (READ_ONCE(in_fallback))
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

static int __init parkvisor_stop_init(void)
{
	char why[96] = "";
	int ret;

	if (!parkvisor_present(why, sizeof(why))) {
		pr_info("not running under parkvisor (%s): nothing changed\n", why);
		return 0;
	}
	ret = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "parkvisor_stop:mpidr", note_mpidr, NULL);
	if (ret < 0)
		return ret;
	mpidr_state = ret;

	if (kdump && save_regs) {
		crash_save_cpu_fn = symbol_address("crash_save_cpu");
		save_area_size = nr_cpu_ids * sizeof(*save_area);
		save_area = kzalloc(save_area_size, GFP_KERNEL);
	}
	if (kexec) {
		kexec_probe.pre_handler = redirect;
		ret = register_kprobe(&kexec_probe);
		if (ret)
			pr_warn("cannot probe %s (%d): kexec stays stock\n", kexec_probe.symbol_name, ret);
		kexec_probed = !ret;
	}
	if (kdump) {
		crash_probe.pre_handler = redirect;
		ret = register_kprobe(&crash_probe);
		if (ret)
			pr_warn("cannot probe %s (%d): kdump stays stock\n", crash_probe.symbol_name, ret);
		kdump_probed = !ret;
	}
	pr_info("parkvisor found (SMCCC %#x, FAST_STOP%s): kexec %s, kdump %s%s\n",
		arm_smccc_get_version(), save_regs ? " + SAVE_REGS" : "",
		kexec_probed ? "via FAST_STOP" : "stock",
		kdump_probed ? "via FAST_STOP" : "stock",
		kdump_probed && !(save_area && crash_save_cpu_fn) ?
			" (no register save: stopped CPUs get no vmcore note)" : "");
	return 0;
}

static void __exit parkvisor_stop_exit(void)
{
	if (kexec_probed)
		unregister_kprobe(&kexec_probe);
	if (kdump_probed)
		unregister_kprobe(&crash_probe);
	if (mpidr_state > 0)
		cpuhp_remove_state(mpidr_state);
	kfree(save_area);
}

module_init(parkvisor_stop_init);
module_exit(parkvisor_stop_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Stop secondary CPUs with parkvisor's FAST_STOP on kexec and kdump");
