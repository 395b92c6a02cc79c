// SPDX-License-Identifier: GPL-2.0
/*
 * parkvisor_lock: test helper for the crash-dump scenario. Pins a kernel
 * thread to one CPU and has it take one interrupt's irq_desc lock over and
 * over: irq_get_irqchip_state() holds it, interrupts masked, across a GIC
 * distributor read (trapped and emulated, so the lock is held most of the
 * time). The crash path takes every irq_desc lock after the CPUs are stopped
 * (machine_kexec_mask_interrupts()), so a stop that parks this CPU inside
 * its section hangs the panic there. A stop IPI only lands between two
 * sections, where interrupts are enabled.
 *
 * Starts on "go", like parkvisor_spin; the thread never ends, so the module
 * cannot be unloaded. Load it only right before a deliberate crash.
 */
#define pr_fmt(fmt) "parkvisor_lock: " fmt

#include <linux/delay.h>
#include <linux/err.h>
#include <linux/interrupt.h>
#include <linux/irq.h>
#include <linux/kthread.h>
#include <linux/module.h>

static unsigned int cpu = 1;
module_param(cpu, uint, 0444);
MODULE_PARM_DESC(cpu, "CPU whose thread takes the lock (default 1)");

static unsigned int irq;
module_param(irq, uint, 0444);
MODULE_PARM_DESC(irq, "Linux interrupt number whose irq_desc lock is taken");

static bool go;
module_param(go, bool, 0644);
MODULE_PARM_DESC(go, "Write 1 to start (the thread waits until then)");

static unsigned long rounds;
module_param(rounds, ulong, 0444);
MODULE_PARM_DESC(rounds, "Lock sections done so far");

static int lock_thread(void *unused)
{
	bool pending;

	while (!READ_ONCE(go))
		usleep_range(1000, 2000);
	for (;;) {
		if (irq_get_irqchip_state(irq, IRQCHIP_STATE_PENDING, &pending))
			break;
		WRITE_ONCE(rounds, rounds + 1);
		cond_resched();
	}
	pr_err("irq_get_irqchip_state(%u) failed after %lu rounds\n", irq, rounds);
	return 0;
}

static int __init parkvisor_lock_init(void)
{
	struct task_struct *t;
	bool pending;

	if (cpu >= nr_cpu_ids || !cpu_online(cpu))
		return -EINVAL;
	if (irq_get_irqchip_state(irq, IRQCHIP_STATE_PENDING, &pending))
		return -EINVAL;
	t = kthread_create_on_cpu(lock_thread, NULL, cpu, "pv_lock/%u");
	if (IS_ERR(t))
		return PTR_ERR(t);
	wake_up_process(t);
	pr_info("CPU %u will take irq %u's descriptor lock in a loop once 'go' is 1\n", cpu, irq);
	return 0;
}

module_init(parkvisor_lock_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("parkvisor test: take an irq_desc lock in a loop on one CPU");
