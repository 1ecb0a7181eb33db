// SPDX-License-Identifier: GPL-2.0
/*
 * kcrash_hang: hang kernel threads on locks, for kcrash's real-vmcore corpus.
 *
 * A module apart from kcrash_crash so that its scenarios leave every cached dump of
 * kcrash_crash valid (the kernel's recipe hashes that module's source). Writing a
 * scenario name to /proc/kcrash_hang starts kernel threads that block for good;
 * hung_task_panic=1 turns the first one khungtaskd sees into a panic. Each lock sits
 * in a global of its own, or as a member of a global struct, so that a reader of the
 * dump can name it: kcrash_lock_a, kcrash_hang_dev.io_lock.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/proc_fs.h>
#include <linux/uaccess.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/completion.h>
#include <linux/kthread.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/string.h>

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kcrash project");
MODULE_DESCRIPTION("Hang kernel threads on locks for the kcrash vmcore corpus");

/* ABBA: thread A takes a then b, thread B takes b then a. */
static DEFINE_MUTEX(kcrash_lock_a);
static DEFINE_MUTEX(kcrash_lock_b);
static DECLARE_COMPLETION(kcrash_a_held);
static DECLARE_COMPLETION(kcrash_b_held);

/* A device-like struct: its locks are named "member of kcrash_hang_dev". */
struct kcrash_hang_dev {
	char name[16];
	struct mutex io_lock;
	struct completion io_done;	/* never completed */
	struct rw_semaphore cfg_sem;
	unsigned long generation;
};

static struct kcrash_hang_dev kcrash_hang_dev = {
	.name = "kcrash-hang",
	.io_lock = __MUTEX_INITIALIZER(kcrash_hang_dev.io_lock),
	.io_done = COMPLETION_INITIALIZER(kcrash_hang_dev.io_done),
	.cfg_sem = __RWSEM_INITIALIZER(kcrash_hang_dev.cfg_sem),
};

static DECLARE_COMPLETION(kcrash_reader_in);

static noinline int kcrash_abba_a(void *unused)
{
	mutex_lock(&kcrash_lock_a);
	complete(&kcrash_a_held);
	wait_for_completion(&kcrash_b_held);
	mutex_lock(&kcrash_lock_b);	/* held by kcrash_abba_b: never returns */
	mutex_unlock(&kcrash_lock_b);
	mutex_unlock(&kcrash_lock_a);
	return 0;
}

static noinline int kcrash_abba_b(void *unused)
{
	mutex_lock(&kcrash_lock_b);
	complete(&kcrash_b_held);
	wait_for_completion(&kcrash_a_held);
	mutex_lock(&kcrash_lock_a);	/* held by kcrash_abba_a: never returns */
	mutex_unlock(&kcrash_lock_a);
	mutex_unlock(&kcrash_lock_b);
	return 0;
}

/* Takes io_lock, then waits for an I/O completion nobody will signal. */
static noinline int kcrash_io_holder(void *unused)
{
	mutex_lock(&kcrash_hang_dev.io_lock);
	wait_for_completion(&kcrash_hang_dev.io_done);
	mutex_unlock(&kcrash_hang_dev.io_lock);
	return 0;
}

static noinline int kcrash_io_waiter(void *unused)
{
	mutex_lock(&kcrash_hang_dev.io_lock);	/* held by kcrash_io_holder */
	kcrash_hang_dev.generation++;
	mutex_unlock(&kcrash_hang_dev.io_lock);
	return 0;
}

/* Holds cfg_sem for reading and sleeps (msleep: not hung itself, it wakes each second). */
static noinline int kcrash_cfg_reader(void *unused)
{
	down_read(&kcrash_hang_dev.cfg_sem);
	complete(&kcrash_reader_in);
	for (;;)
		msleep(1000);
	up_read(&kcrash_hang_dev.cfg_sem);
	return 0;
}

static noinline int kcrash_cfg_writer(void *unused)
{
	down_write(&kcrash_hang_dev.cfg_sem);	/* a reader holds it */
	kcrash_hang_dev.generation++;
	up_write(&kcrash_hang_dev.cfg_sem);
	return 0;
}

static int kcrash_start(int (*fn)(void *), const char *name)
{
	struct task_struct *t = kthread_run(fn, NULL, "%s", name);

	return PTR_ERR_OR_ZERO(t);
}

static int kcrash_abba_deadlock(void)
{
	int err = kcrash_start(kcrash_abba_a, "kcrash_abba_a");

	return err ?: kcrash_start(kcrash_abba_b, "kcrash_abba_b");
}

static int kcrash_mutex_owner_waits(void)
{
	int err = kcrash_start(kcrash_io_holder, "kcrash_io_holder");

	msleep(200);	/* the holder takes io_lock first */
	return err ?: kcrash_start(kcrash_io_waiter, "kcrash_io_waiter");
}

static int kcrash_rwsem_writer_stall(void)
{
	int err = kcrash_start(kcrash_cfg_reader, "kcrash_cfg_reader");

	if (!err)
		wait_for_completion(&kcrash_reader_in);
	return err ?: kcrash_start(kcrash_cfg_writer, "kcrash_cfg_writer");
}

struct kcrash_hang_action {
	const char *name;
	int (*fn)(void);
};

static const struct kcrash_hang_action kcrash_hang_actions[] = {
	{ "abba-deadlock", kcrash_abba_deadlock },
	{ "mutex-owner-waits", kcrash_mutex_owner_waits },
	{ "rwsem-writer-stall", kcrash_rwsem_writer_stall },
};

static ssize_t kcrash_hang_write(struct file *file, const char __user *ubuf, size_t count,
				 loff_t *ppos)
{
	char cmd[32];
	size_t n = min(count, sizeof(cmd) - 1);
	size_t i;

	if (copy_from_user(cmd, ubuf, n))
		return -EFAULT;
	cmd[n] = '\0';
	strim(cmd);
	for (i = 0; i < ARRAY_SIZE(kcrash_hang_actions); i++) {
		if (strcmp(cmd, kcrash_hang_actions[i].name) == 0) {
			int err;

			pr_info("kcrash_hang: running '%s'\n", cmd);
			err = kcrash_hang_actions[i].fn();
			return err ? err : count;
		}
	}
	return -EINVAL;
}

static const struct proc_ops kcrash_hang_proc_ops = {
	.proc_write = kcrash_hang_write,
};

static int __init kcrash_hang_init(void)
{
	if (!proc_create("kcrash_hang", 0200, NULL, &kcrash_hang_proc_ops))
		return -ENOMEM;
	return 0;
}

/* No exit: the threads it starts never end, so the module must never unload. */
module_init(kcrash_hang_init);
