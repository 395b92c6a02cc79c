// SPDX-License-Identifier: GPL-2.0
/*
 * parkvisor_spin: test helper for the crash-dump scenario. Pins a kernel
 * thread to one CPU and has it spin in pv_spin_masked() with interrupts
 * masked, the case where stock arm64 Linux without pseudo-NMI cannot stop
 * the CPU on a panic (the crash IPI is never taken) and the vmcore lacks its
 * registers. The test then panics and checks that the capture kernel's
 * vmcore holds this CPU's note with a PC inside pv_spin_masked().
 *
 * There is no way back: the thread never ends, so the module cannot be
 * unloaded. Load it only right before a deliberate crash.
 */
#define pr_fmt(fmt) "parkvisor_spin: " fmt

#include <linux/delay.h>
#include <linux/err.h>
#include <linux/irqflags.h>
#include <linux/kthread.h>
#include <linux/module.h>

static unsigned int cpu = 1;
module_param(cpu, uint, 0444);
MODULE_PARM_DESC(cpu, "CPU to spin on with interrupts masked (default 1)");

static int started;

/* Its own function, kept out of line, so that a PC inside it identifies the
 * spinner in a vmcore. */
static noinline void pv_spin_masked(void)
{
	WRITE_ONCE(started, 1);
	for (;;)
		cpu_relax();
}

static int spin_thread(void *unused)
{
	local_irq_disable();
	pv_spin_masked();
	return 0;
}

static int __init parkvisor_spin_init(void)
{
	struct task_struct *t;
	int i;

	if (cpu >= nr_cpu_ids || !cpu_online(cpu))
		return -EINVAL;
	t = kthread_create_on_cpu(spin_thread, NULL, cpu, "pv_spin/%u");
	if (IS_ERR(t))
		return PTR_ERR(t);
	wake_up_process(t);
	for (i = 0; i < 1000 && !READ_ONCE(started); i++)
		msleep(1);
	if (!READ_ONCE(started))
		return -ETIMEDOUT;	/* the thread keeps trying; we cannot stop it */
	pr_info("CPU %u spins in pv_spin_masked with interrupts masked\n", cpu);
	return 0;
}

module_init(parkvisor_spin_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("parkvisor test: spin with interrupts masked on one CPU");
