// SPDX-License-Identifier: GPL-2.0
/* A module that panics the kernel in its init, on purpose: modverify must record it as
 * `crashed`, boot the guest again and still load the modules after it. */
#include <linux/module.h>
#include <linux/kernel.h>

static int __init crashme_init(void)
{
	panic("modverify test module crashme: panicking on purpose");
	return 0;
}
module_init(crashme_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modverify test: panics in init");
