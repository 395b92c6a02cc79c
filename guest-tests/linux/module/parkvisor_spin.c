// SPDX-License-Identifier: GPL-2.0
/*
 * parkvisor_spin: test helper for the crash-dump scenario. Pins a kernel
 * thread to one CPU and has it spin in pv_spin_masked() with interrupts
 * masked, the case where stock arm64 Linux without pseudo-NMI cannot stop
 * the CPU on a panic (the crash IPI is never taken) and the vmcore lacks its
 * registers. The test then panics and checks that the capture kernel's
 * vmcore holds this CPU's note with a PC inside pv_spin_masked().
 *
 * Spinning starts only when 1 is written to the "go" parameter: once the CPU
 * stops answering IPIs, anything that waits for every CPU (loading the capture
 * kernel, loading a module: both synchronise instruction caches with an IPI
 * to all CPUs) hangs, so the test prepares everything first.
 *
 * There is no way back: the thread never ends, so the module cannot be
 * unloaded. Load it only right before a deliberate crash.
 */
#define pr_fmt(fmt) "parkvisor_spin: " fmt

#include <linux/delay.h>
#include <linux/err.h>
#include <linux/irqflags.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/module.h>

static unsigned int cpu = 1;
module_param(cpu, uint, 0444);
MODULE_PARM_DESC(cpu, "CPU to spin on with interrupts masked (default 1)");

static bool go;
module_param(go, bool, 0644);
MODULE_PARM_DESC(go, "Write 1 to start spinning (the thread waits until then)");

static bool spinning;
module_param(spinning, bool, 0444);
MODULE_PARM_DESC(spinning, "Reads 1 once the CPU spins with interrupts masked");

/*
 * For the capture kernel's check of cpu_online_mask in /proc/vmcore: its
 * physical address (the vmcore's PT_LOAD segments give theirs). Debian
 * builds without CONFIG_KALLSYMS_ALL: /proc/kallsyms has no data symbols.
 */
static unsigned long online_mask;
module_param(online_mask, ulong, 0444);
MODULE_PARM_DESC(online_mask, "Physical address of cpu_online_mask");

/*
 * Its own function, kept out of line, so that a PC inside it identifies the
 * spinner in a vmcore.
 *
 * Only every 256th pass yields (cpu_relax() is YIELD on arm64). Under QEMU
 * -icount one host thread runs all vCPUs round-robin, guest time is the
 * count of executed instructions, and every YIELD ends this vCPU's turn.
 * Yielding on each pass let guest time advance by two instructions per
 * turn, each turn costing the emulator microseconds of host time, while
 * the other CPUs slept on timers: the test shell's short sleep took many
 * minutes, and the scenario looked hung (seen at 2 and at 4 vCPUs). A burst
 * of ~500 instructions per turn keeps guest time moving like any busy CPU
 * does, and a CPU that polls the clock in a cpu_relax() loop (udelay() on
 * the panicking CPU) still sees 1 us pass in a round or two. Without
 * -icount YIELD is a no-op to QEMU, and on hardware a hint.
 */
static noinline void pv_spin_masked(void)
{
	unsigned int i;

	WRITE_ONCE(spinning, true);
	for (;;) {
		for (i = 0; i < 256; i++)
			barrier();
		cpu_relax();
	}
}

static int spin_thread(void *unused)
{
	while (!READ_ONCE(go))
		usleep_range(1000, 2000);
	local_irq_disable();
	pv_spin_masked();
	return 0;
}

static int __init parkvisor_spin_init(void)
{
	struct task_struct *t;

	if (cpu >= nr_cpu_ids || !cpu_online(cpu))
		return -EINVAL;
	online_mask = __pa_symbol(cpu_online_mask);
	t = kthread_create_on_cpu(spin_thread, NULL, cpu, "pv_spin/%u");
	if (IS_ERR(t))
		return PTR_ERR(t);
	wake_up_process(t);
	pr_info("CPU %u will spin in pv_spin_masked with interrupts masked once 'go' is 1\n", cpu);
	return 0;
}

module_init(parkvisor_spin_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("parkvisor test: spin with interrupts masked on one CPU");
