// SPDX-License-Identifier: GPL-2.0
/*
 * kcrash_crash: crash the kernel on demand, for kcrash's real-vmcore corpus.
 *
 * Writing a scenario name to /proc/kcrash_crash makes the writing task (or a
 * timer, for "irq-timer") hit that kind of failure, so the resulting vmcores look
 * like real ones: a syscall path into a module function that faults.  Built for
 * Debian 11 (5.10) and Debian 12 (6.1) kernels; nothing here is version specific
 * beyond proc_ops (5.6+) and timer_setup (4.15+).
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/proc_fs.h>
#include <linux/uaccess.h>
#include <linux/slab.h>
#include <linux/list.h>
#include <linux/timer.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/delay.h>
#include <linux/vmalloc.h>
#include <linux/kthread.h>
#include <linux/gfp.h>
#include <linux/string.h>
#include <linux/stddef.h>
#include <linux/build_bug.h>

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kcrash project");
MODULE_DESCRIPTION("Provoke kernel crashes on demand for the kcrash vmcore corpus");

/* A device-like struct whose 'refcount' member sits at offset 0x74, as in the
 * classic "NULL pointer dereference at 0000000000000074" report. */
struct kcrash_device {
	char name[64];			/* 0x00 */
	unsigned long flags;		/* 0x40 */
	void *priv;			/* 0x48 */
	struct list_head node;		/* 0x50 */
	unsigned long stats[2];		/* 0x60 */
	unsigned int mode;		/* 0x70 */
	unsigned int refcount;		/* 0x74 */
};

struct kcrash_item {
	struct list_head node;
	struct kcrash_device *dev;
	unsigned long cookie;
};

static struct kcrash_device *volatile kcrash_current_dev; /* stays NULL */
static DEFINE_MUTEX(kcrash_lock);
static struct timer_list kcrash_timer;
static LIST_HEAD(kcrash_items);

static noinline unsigned int kcrash_get_refcount(struct kcrash_device *dev)
{
	return READ_ONCE(dev->refcount);
}

static noinline int kcrash_null_deref(void)
{
	BUILD_BUG_ON(offsetof(struct kcrash_device, refcount) != 0x74);
	return kcrash_get_refcount(kcrash_current_dev);
}

static noinline int kcrash_bug_on(void)
{
	int state = READ_ONCE(kcrash_items.next) == &kcrash_items ? 1 : 0;

	BUG_ON(state == 1);
	return state;
}

static noinline int kcrash_panic(void)
{
	panic("kcrash: deliberate panic from the test module");
	return 0;
}

static noinline int kcrash_soft_lockup(void)
{
	unsigned long spins = 0;

	/* Spin with preemption off: the watchdog thread never runs on this CPU. */
	preempt_disable();
	for (;;) {
		spins++;
		cpu_relax();
	}
	preempt_enable();
	return (int)spins;
}

static noinline int kcrash_hung_task(void)
{
	/* Take the lock twice: the second mutex_lock() sleeps in D state forever. */
	mutex_lock(&kcrash_lock);
	mutex_lock(&kcrash_lock);
	return 0;
}

static noinline int kcrash_divide_error(void)
{
	volatile int divisor = 0;
	int total = 1000;

	return total / divisor;
}

static noinline int kcrash_list_corruption(void)
{
	struct kcrash_item *item = kzalloc(sizeof(*item), GFP_KERNEL);

	if (!item)
		return -ENOMEM;
	list_add(&item->node, &kcrash_items);
	/* A stray write clobbers the neighbour's back pointer, then we unlink. */
	WRITE_ONCE(kcrash_items.prev, (struct list_head *)0xdead4ead00000000UL);
	list_del(&item->node);
	return 0;
}

static noinline int kcrash_warn(void)
{
	WARN_ON(READ_ONCE(kcrash_current_dev) == NULL);
	return 0;
}

/* The bad pointer is loaded from memory into a register first, as a corrupted pointer
 * would be; a constant address would become a movabs whose operand the kernel's #GP
 * decoder misreports ("maybe for address ..."). */
static unsigned long *volatile kcrash_bad_ptr = (unsigned long *)0x8000000000000000UL;

static noinline int kcrash_gpf(void)
{
	unsigned long *p = kcrash_bad_ptr;

	return (int)READ_ONCE(*p);
}

static noinline int kcrash_use_after_free(void)
{
	struct kcrash_item *item = kmalloc(sizeof(*item), GFP_KERNEL);
	struct kcrash_device *dev;

	if (!item)
		return -ENOMEM;
	item->dev = kzalloc(sizeof(*item->dev), GFP_KERNEL);
	kfree(item->dev);
	kfree(item);
	/* Read a pointer out of freed memory (slub_debug=P poisons it with 0x6b). */
	dev = READ_ONCE(item->dev);
	return READ_ONCE(dev->refcount);
}

static noinline int kcrash_stack_smash(const char *src, size_t len)
{
	char buf[16];
	size_t i;

	for (i = 0; i < len; i++)
		((volatile char *)buf)[i] = src[i % 8];
	return buf[3];
}

static noinline int kcrash_oom(void)
{
	unsigned long pages = 0;

	/* Keep allocating until the OOM killer runs (panic_on_oom turns it into a panic). */
	for (;;) {
		struct page *page = alloc_page(GFP_KERNEL | __GFP_NOWARN);

		if (!page)
			break;
		pages++;
	}
	return (int)pages;
}

static noinline void kcrash_timer_fn(struct timer_list *t)
{
	struct kcrash_device *dev = READ_ONCE(kcrash_current_dev);

	/* NULL dereference in softirq context: "Fatal exception in interrupt". */
	WRITE_ONCE(dev->mode, 1);
}

static noinline int kcrash_irq_timer(void)
{
	timer_setup(&kcrash_timer, kcrash_timer_fn, 0);
	mod_timer(&kcrash_timer, jiffies + 1);
	msleep(2000);
	return 0;
}

static noinline int kcrash_vmalloc_overrun(void)
{
	unsigned char *buf = vmalloc(PAGE_SIZE);
	volatile unsigned char *p = buf;
	size_t i;
	int sum = 0;

	if (!buf)
		return -ENOMEM;
	/* Read one byte past the end: the guard page after the vmalloc area. */
	for (i = 0; i <= PAGE_SIZE; i++)
		sum += p[i];
	return sum;
}

struct kcrash_action {
	const char *name;
	int (*fn)(void);
};

/* 16 bytes of buffer plus the 8-byte canary right above it (gcc's layout on
 * x86-64): the canary is overwritten, the return address is not, so the
 * unwinder still walks the stack normally. */
static volatile size_t kcrash_smash_len = 24;
static const char *volatile kcrash_smash_src = "AAAAAAAA";

static int kcrash_stack_smash_entry(void)
{
	return kcrash_stack_smash(kcrash_smash_src, kcrash_smash_len);
}

static const struct kcrash_action kcrash_actions[] = {
	{ "null-deref", kcrash_null_deref },
	{ "bug-on", kcrash_bug_on },
	{ "panic", kcrash_panic },
	{ "soft-lockup", kcrash_soft_lockup },
	{ "hung-task", kcrash_hung_task },
	{ "divide-error", kcrash_divide_error },
	{ "list-corruption", kcrash_list_corruption },
	{ "warn", kcrash_warn },
	{ "gpf", kcrash_gpf },
	{ "use-after-free", kcrash_use_after_free },
	{ "stack-protector", kcrash_stack_smash_entry },
	{ "oom", kcrash_oom },
	{ "irq-timer", kcrash_irq_timer },
	{ "vmalloc-overrun", kcrash_vmalloc_overrun },
};

static ssize_t kcrash_write(struct file *file, const char __user *ubuf, size_t count,
			    loff_t *ppos)
{
	char cmd[32];
	size_t n = min(count, sizeof(cmd) - 1);
	size_t i;

	if (copy_from_user(cmd, ubuf, n))
		return -EFAULT;
	cmd[n] = '\0';
	strim(cmd);
	for (i = 0; i < ARRAY_SIZE(kcrash_actions); i++) {
		if (strcmp(cmd, kcrash_actions[i].name) == 0) {
			pr_info("kcrash_crash: running '%s' on CPU %d\n", cmd,
				raw_smp_processor_id());
			kcrash_actions[i].fn();
			return count;
		}
	}
	return -EINVAL;
}

static const struct proc_ops kcrash_proc_ops = {
	.proc_write = kcrash_write,
};

static int __init kcrash_init(void)
{
	if (!proc_create("kcrash_crash", 0200, NULL, &kcrash_proc_ops))
		return -ENOMEM;
	return 0;
}

static void __exit kcrash_exit(void)
{
	remove_proc_entry("kcrash_crash", NULL);
}

module_init(kcrash_init);
module_exit(kcrash_exit);
