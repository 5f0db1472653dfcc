// SPDX-License-Identifier: GPL-2.0
/* A module whose init never returns and never lets the CPU go (interrupts off): the
 * guest stops dead, and modverify must record `hung` within its silence timeout. */
#include <linux/module.h>
#include <linux/irqflags.h>
#include <asm/processor.h>

static int __init hangme_init(void)
{
	local_irq_disable();
	for (;;)
		cpu_relax();
	return 0;
}
module_init(hangme_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modverify test: hangs in init");
