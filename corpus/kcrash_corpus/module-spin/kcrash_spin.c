// SPDX-License-Identifier: GPL-2.0
/*
 * kcrash_spin: a soft lockup behind a spinlock another CPU holds, for kcrash's corpus.
 *
 * A module apart from kcrash_crash and kcrash_hang so that its scenarios leave every
 * cached dump of theirs valid (a boot's recipe hashes the source of the module it loads).
 * Writing a scenario name to /proc/kcrash_spin starts two kernel threads: the holder, bound
 * to CPU 1, takes a spinlock and polls a "device" that never becomes ready, touching the
 * watchdog as drivers' poll loops do (so CPU 1 never reports a lockup itself); the waiter,
 * bound to CPU 0, spins in spin_lock() for it until the soft-lockup watchdog fires there
 * (softlockup_panic=1). Debian's kernels have no CONFIG_DEBUG_SPINLOCK: the qspinlock
 * records no owner, so a reader of the dump must find the holder from the CPUs' stacks.
 *
 * spin-held:      the lock is a static global, kcrash_spin_lock (named by kallsyms).
 * spin-held-heap: the lock is the member `lock` of a kmalloc'ed struct kcrash_spin_dev
 *                 (named `&dev->lock` where the frames' DWARF variables tell).
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/proc_fs.h>
#include <linux/uaccess.h>
#include <linux/spinlock.h>
#include <linux/completion.h>
#include <linux/kthread.h>
#include <linux/delay.h>
#include <linux/nmi.h>
#include <linux/slab.h>
#include <linux/err.h>
#include <linux/string.h>

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kcrash project");
MODULE_DESCRIPTION("Soft lockup behind a spinlock held by another CPU, for the kcrash corpus");

static DEFINE_SPINLOCK(kcrash_spin_lock);
static unsigned long kcrash_spin_polls;
static bool kcrash_spin_ready;	/* never set: the "device" never answers */
static DECLARE_COMPLETION(kcrash_spin_held);

/* A device-like object on the heap: its lock is named by member, not by symbol. */
struct kcrash_spin_dev {
	char name[16];
	unsigned long polls;
	spinlock_t lock;
	unsigned long generation;
};

/* Busy-waits for the device with whatever lock the caller holds. */
static noinline void kcrash_poll_ready(unsigned long *polls)
{
	while (!READ_ONCE(kcrash_spin_ready)) {
		mdelay(1);
		(*polls)++;
		touch_nmi_watchdog();
	}
}

static noinline int kcrash_spin_holder(void *unused)
{
	spin_lock(&kcrash_spin_lock);
	complete(&kcrash_spin_held);
	kcrash_poll_ready(&kcrash_spin_polls);
	spin_unlock(&kcrash_spin_lock);
	return 0;
}

static noinline int kcrash_spin_waiter(void *unused)
{
	spin_lock(&kcrash_spin_lock);	/* held by kcrash_spin_holder on CPU 1 */
	kcrash_spin_polls = 0;
	spin_unlock(&kcrash_spin_lock);
	return 0;
}

static noinline int kcrash_dev_holder(void *data)
{
	struct kcrash_spin_dev *dev = data;

	spin_lock(&dev->lock);
	complete(&kcrash_spin_held);
	kcrash_poll_ready(&dev->polls);
	spin_unlock(&dev->lock);
	return 0;
}

static noinline int kcrash_dev_waiter(void *data)
{
	struct kcrash_spin_dev *dev = data;

	spin_lock(&dev->lock);	/* held by kcrash_dev_holder on CPU 1 */
	dev->generation++;
	spin_unlock(&dev->lock);
	return 0;
}

static int kcrash_start_on(int (*fn)(void *), void *data, unsigned int cpu, const char *name)
{
	struct task_struct *t = kthread_create(fn, data, "%s", name);

	if (IS_ERR(t))
		return PTR_ERR(t);
	kthread_bind(t, cpu);
	wake_up_process(t);
	return 0;
}

/* The holder first (it must own the lock before the waiter tries), then the waiter. */
static int kcrash_pair(int (*holder)(void *), int (*waiter)(void *), void *data,
		       const char *hname, const char *wname)
{
	int err;

	if (num_online_cpus() < 2)
		return -ENODEV;
	err = kcrash_start_on(holder, data, 1, hname);
	if (err)
		return err;
	wait_for_completion(&kcrash_spin_held);
	return kcrash_start_on(waiter, data, 0, wname);
}

static int kcrash_spin_held_static(void)
{
	return kcrash_pair(kcrash_spin_holder, kcrash_spin_waiter, NULL,
			   "kcrash_spin_holder", "kcrash_spin_waiter");
}

static int kcrash_spin_held_heap(void)
{
	struct kcrash_spin_dev *dev = kzalloc(sizeof(*dev), GFP_KERNEL);

	if (!dev)
		return -ENOMEM;
	strscpy(dev->name, "kcrash-spin", sizeof(dev->name));
	spin_lock_init(&dev->lock);
	return kcrash_pair(kcrash_dev_holder, kcrash_dev_waiter, dev,
			   "kcrash_dev_holder", "kcrash_dev_waiter");
}

struct kcrash_spin_action {
	const char *name;
	int (*fn)(void);
};

static const struct kcrash_spin_action kcrash_spin_actions[] = {
	{ "spin-held", kcrash_spin_held_static },
	{ "spin-held-heap", kcrash_spin_held_heap },
};

static ssize_t kcrash_spin_write(struct file *file, const char __user *ubuf, size_t count,
				 loff_t *ppos)
{
	char cmd[32];
	size_t n = min(count, sizeof(cmd) - 1);
	size_t i;

	if (copy_from_user(cmd, ubuf, n))
		return -EFAULT;
	cmd[n] = '\0';
	strim(cmd);
	for (i = 0; i < ARRAY_SIZE(kcrash_spin_actions); i++) {
		if (strcmp(cmd, kcrash_spin_actions[i].name) == 0) {
			int err;

			pr_info("kcrash_spin: running '%s'\n", cmd);
			err = kcrash_spin_actions[i].fn();
			return err ? err : count;
		}
	}
	return -EINVAL;
}

static const struct proc_ops kcrash_spin_proc_ops = {
	.proc_write = kcrash_spin_write,
};

static int __init kcrash_spin_init(void)
{
	if (!proc_create("kcrash_spin", 0200, NULL, &kcrash_spin_proc_ops))
		return -ENOMEM;
	return 0;
}

/* No exit: the threads it starts never end, so the module must never unload. */
module_init(kcrash_spin_init);
