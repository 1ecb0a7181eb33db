// SPDX-License-Identifier: GPL-2.0
/*
 * kcrash_memslab: issue 18's memory and slab-object crashes, for kcrash's real-vmcore corpus.
 *
 * A module apart from kcrash_crash so that its scenarios leave every cached dump of
 * kcrash_crash valid (the kernel's recipe hashes that module's source, so a scenario
 * added there rebuilds every dump). Writing a scenario name to /proc/kcrash_memslab makes
 * the writing task run it: "slab-leak" grows a cache of its own until the OOM killer
 * panics, "uaf-track" reads a stale pointer out of a freed, poisoned object.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/proc_fs.h>
#include <linux/uaccess.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/string.h>

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kcrash project");
MODULE_DESCRIPTION("Slab leak and use-after-free crashes for the kcrash vmcore corpus");

/*
 * Memory: a leak that grows one slab cache until the OOM killer panics
 * (vm.panic_on_oom=1). The cache is our own, so the suspect has a name. It is created
 * with a usercopy region, which keeps SLUB from merging it into another cache of the same
 * size (kmem_cache_create_usercopy() skips __kmem_cache_alias() when usersize != 0, 4.16+),
 * so "kcrash_leak" stays its own line in /proc/slabinfo and in the kernel's
 * "Unreclaimable slab info" at the OOM. The objects are zeroed and never written: their
 * pages are zero pages that makedumpfile -d 31 leaves out, so the dump stays small.
 */
struct kcrash_leak {
	char payload[1024];
};

static struct kmem_cache *kcrash_leak_cache;
static unsigned long kcrash_leaked;

static noinline struct kcrash_leak *kcrash_leak_one(void)
{
	struct kcrash_leak *obj = kmem_cache_zalloc(kcrash_leak_cache, GFP_KERNEL);

	if (obj)
		kcrash_leaked++;
	return obj;
}

static noinline int kcrash_slab_leak(void)
{
	kcrash_leak_cache = kmem_cache_create_usercopy("kcrash_leak", sizeof(struct kcrash_leak),
						       0, 0, 0, sizeof(struct kcrash_leak),
						       NULL);
	if (!kcrash_leak_cache)
		return -ENOMEM;
	/* Never freed: each object is lost as soon as it is counted. */
	while (kcrash_leak_one())
		;
	return (int)kcrash_leaked;
}

/*
 * Bad pointers: a use-after-free of an object of our own cache "kcrash_uaf", booted with
 * slub_debug=PU: U stores the allocation and free stacks after each object (struct track:
 * a stack depot handle since v5.17, an addrs[] array before), P poisons the freed object
 * with 0x6b, so the stale pointer read out of it is non-canonical and the kernel reports a
 * general protection fault while a register still holds the freed object's address.
 * Allocation and free happen in functions of their own so that the two stacks differ.
 */

/* The device the stale pointer is meant to reach: 'refcount' at 0x74, as kcrash_crash's. */
struct kcrash_uaf_dev {
	char name[64];			/* 0x00 */
	unsigned long flags;		/* 0x40 */
	void *priv;			/* 0x48 */
	void *node[2];			/* 0x50 */
	unsigned long stats[2];		/* 0x60 */
	unsigned int mode;		/* 0x70 */
	unsigned int refcount;		/* 0x74 */
};

struct kcrash_uaf_obj {
	unsigned long cookie;
	struct kcrash_uaf_dev *dev;
	char pad[176];
};

static struct kmem_cache *kcrash_uaf_cache;
static struct kcrash_uaf_obj *volatile kcrash_uaf_stale;

static noinline struct kcrash_uaf_obj *kcrash_uaf_alloc(void)
{
	struct kcrash_uaf_obj *obj = kmem_cache_zalloc(kcrash_uaf_cache, GFP_KERNEL);

	if (obj)
		obj->cookie = 0x4b435241534855UL;
	return obj;
}

static noinline void kcrash_uaf_release(struct kcrash_uaf_obj *obj)
{
	kmem_cache_free(kcrash_uaf_cache, obj);
}

static noinline unsigned int kcrash_uaf_use(struct kcrash_uaf_obj *obj)
{
	struct kcrash_uaf_dev *dev = READ_ONCE(obj->dev);

	return READ_ONCE(dev->refcount);
}

static noinline int kcrash_uaf_track(void)
{
	struct kcrash_uaf_obj *obj;

	kcrash_uaf_cache = kmem_cache_create("kcrash_uaf", sizeof(struct kcrash_uaf_obj), 0, 0,
					     NULL);
	if (!kcrash_uaf_cache)
		return -ENOMEM;
	obj = kcrash_uaf_alloc();
	if (!obj)
		return -ENOMEM;
	kcrash_uaf_stale = obj;
	kcrash_uaf_release(obj);
	return kcrash_uaf_use(kcrash_uaf_stale);
}

struct kcrash_memslab_action {
	const char *name;
	int (*fn)(void);
};

static const struct kcrash_memslab_action kcrash_memslab_actions[] = {
	{ "slab-leak", kcrash_slab_leak },
	{ "uaf-track", kcrash_uaf_track },
};

static ssize_t kcrash_memslab_write(struct file *file, const char __user *ubuf, size_t count,
				    loff_t *ppos)
{
	char cmd[32];
	size_t n = min(count, sizeof(cmd) - 1);
	size_t i;

	if (copy_from_user(cmd, ubuf, n))
		return -EFAULT;
	cmd[n] = '\0';
	strim(cmd);
	for (i = 0; i < ARRAY_SIZE(kcrash_memslab_actions); i++) {
		if (strcmp(cmd, kcrash_memslab_actions[i].name) == 0) {
			pr_info("kcrash_memslab: running '%s' on CPU %d\n", cmd,
				raw_smp_processor_id());
			kcrash_memslab_actions[i].fn();
			return count;
		}
	}
	return -EINVAL;
}

static const struct proc_ops kcrash_memslab_proc_ops = {
	.proc_write = kcrash_memslab_write,
};

static int __init kcrash_memslab_init(void)
{
	if (!proc_create("kcrash_memslab", 0200, NULL, &kcrash_memslab_proc_ops))
		return -ENOMEM;
	return 0;
}

/* No exit: a scenario's cache and objects are meant to outlive it (until the panic). */
module_init(kcrash_memslab_init);
