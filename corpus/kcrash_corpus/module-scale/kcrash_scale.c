// SPDX-License-Identifier: GPL-2.0
/*
 * kcrash_scale: make a guest look big before it crashes, for kcrash's scale scenarios
 * (issue 19).
 *
 * A module apart from kcrash_crash so that its scenarios leave every cached dump valid (the
 * kernel's recipe hashes kcrash_crash's source, not this one). Writing an action to
 * /proc/kcrash_scale:
 *
 *   crowd  one holder thread takes kcrash_crowd_lock and waits for a completion nobody
 *          signals; KCRASH_CROWD_WAITERS threads then block on that mutex (D state) and
 *          KCRASH_CROWD_IDLE threads sleep interruptibly (S state): ten thousand tasks,
 *          thousands of them hung behind one owner. The write returns when all are started.
 *   fill   allocates the guest's free memory in 2 MB chunks, leaving KCRASH_FILL_KEEP_MB,
 *          and writes a compressible pattern into every byte: memory really touched, which
 *          a QEMU capture must write out (a kernel allocation, so the pages stay owned).
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/proc_fs.h>
#include <linux/uaccess.h>
#include <linux/mutex.h>
#include <linux/completion.h>
#include <linux/kthread.h>
#include <linux/wait.h>
#include <linux/mm.h>
#include <linux/gfp.h>
#include <linux/list.h>
#include <linux/sched.h>
#include <linux/err.h>
#include <linux/string.h>

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kcrash project");
MODULE_DESCRIPTION("Many tasks or much touched memory for the kcrash vmcore corpus");

#define KCRASH_CROWD_WAITERS 6000
#define KCRASH_CROWD_IDLE 4000
#define KCRASH_FILL_ORDER 9
#define KCRASH_FILL_KEEP_MB 384

/* The lock the crowd waits for, and what its holder waits for in turn. */
static DEFINE_MUTEX(kcrash_crowd_lock);
static DECLARE_COMPLETION(kcrash_crowd_io_done);	/* never completed */
static DECLARE_COMPLETION(kcrash_crowd_held);
static DECLARE_WAIT_QUEUE_HEAD(kcrash_idle_wq);		/* never woken */
static unsigned long kcrash_crowd_generation;

/* Pages of `fill`, linked through their struct page so the dump can find them. */
static LIST_HEAD(kcrash_fill_chunks);
static unsigned long kcrash_fill_mb;

static noinline int kcrash_crowd_holder(void *unused)
{
	mutex_lock(&kcrash_crowd_lock);
	complete(&kcrash_crowd_held);
	wait_for_completion(&kcrash_crowd_io_done);
	mutex_unlock(&kcrash_crowd_lock);
	return 0;
}

static noinline int kcrash_crowd_waiter(void *unused)
{
	mutex_lock(&kcrash_crowd_lock);	/* held by crowd_holder */
	kcrash_crowd_generation++;
	mutex_unlock(&kcrash_crowd_lock);
	return 0;
}

static noinline int kcrash_crowd_idle(void *unused)
{
	/* Interruptible and never woken: S state, not hung. */
	wait_event_interruptible(kcrash_idle_wq, kthread_should_stop());
	return 0;
}

static int kcrash_crowd(void)
{
	struct task_struct *t;
	int i;

	t = kthread_run(kcrash_crowd_holder, NULL, "crowd_holder");
	if (IS_ERR(t))
		return PTR_ERR(t);
	wait_for_completion(&kcrash_crowd_held);
	for (i = 0; i < KCRASH_CROWD_WAITERS; i++) {
		t = kthread_run(kcrash_crowd_waiter, NULL, "crowd_w/%d", i);
		if (IS_ERR(t))
			return PTR_ERR(t);
		cond_resched();
	}
	for (i = 0; i < KCRASH_CROWD_IDLE; i++) {
		t = kthread_run(kcrash_crowd_idle, NULL, "crowd_idle/%d", i);
		if (IS_ERR(t))
			return PTR_ERR(t);
		cond_resched();
	}
	pr_info("kcrash_scale: %d threads wait for kcrash_crowd_lock, %d sleep\n",
		KCRASH_CROWD_WAITERS, KCRASH_CROWD_IDLE);
	return 0;
}

static noinline void kcrash_fill_chunk(struct page *page, unsigned long n)
{
	u64 *p = page_address(page);
	size_t words = (PAGE_SIZE << KCRASH_FILL_ORDER) / sizeof(u64);
	size_t i;

	/* A repeating pattern (compresses well) stamped with the chunk number per page. */
	for (i = 0; i < words; i++)
		p[i] = (i % (PAGE_SIZE / sizeof(u64))) ? 0x6b63726173682d21ULL : n;
}

static int kcrash_fill(void)
{
	unsigned long keep = KCRASH_FILL_KEEP_MB << (20 - PAGE_SHIFT);
	struct page *page;

	while (si_mem_available() > keep) {
		page = alloc_pages(GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN, KCRASH_FILL_ORDER);
		if (!page)
			break;
		kcrash_fill_chunk(page, kcrash_fill_mb);
		list_add(&page->lru, &kcrash_fill_chunks);
		kcrash_fill_mb += (PAGE_SIZE << KCRASH_FILL_ORDER) >> 20;
		cond_resched();
	}
	pr_info("kcrash_scale: filled %lu MB\n", kcrash_fill_mb);
	return 0;
}

struct kcrash_scale_action {
	const char *name;
	int (*fn)(void);
};

static const struct kcrash_scale_action kcrash_scale_actions[] = {
	{ "crowd", kcrash_crowd },
	{ "fill", kcrash_fill },
};

static ssize_t kcrash_scale_write(struct file *file, const char __user *ubuf, size_t count,
				  loff_t *ppos)
{
	char cmd[32];
	size_t n = min(count, sizeof(cmd) - 1);
	size_t i;

	if (copy_from_user(cmd, ubuf, n))
		return -EFAULT;
	cmd[n] = '\0';
	strim(cmd);
	for (i = 0; i < ARRAY_SIZE(kcrash_scale_actions); i++) {
		if (strcmp(cmd, kcrash_scale_actions[i].name) == 0) {
			int err;

			pr_info("kcrash_scale: running '%s'\n", cmd);
			err = kcrash_scale_actions[i].fn();
			return err ? err : count;
		}
	}
	return -EINVAL;
}

static const struct proc_ops kcrash_scale_proc_ops = {
	.proc_write = kcrash_scale_write,
};

static int __init kcrash_scale_init(void)
{
	if (!proc_create("kcrash_scale", 0200, NULL, &kcrash_scale_proc_ops))
		return -ENOMEM;
	return 0;
}

/* No exit: its threads never end and its memory is never freed; it must never unload. */
module_init(kcrash_scale_init);
