#!/bin/busybox sh
# PID 1 of the corpus guests (both the crashing kernel and the kdump capture kernel).
# It mounts the host share, then runs the per-boot script the host wrote there:
# /share/job.sh in the first kernel, /share/capture.sh when /proc/vmcore exists (we are the
# capture kernel started by `kexec -p`). Messages starting with KCRASH- are read by the host.
/bin/busybox mkdir -p /proc /sys /dev /share /tmp /usr/sbin /usr/bin /sbin
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp

fail() {
	echo "KCRASH-FAIL: $*" > /dev/console
	sync
	poweroff -f
}

for m in $(cat /lib/modules/kcrash/modules.order); do
	insmod "/lib/modules/kcrash/$m.ko" || echo "KCRASH-WARN: insmod $m failed" > /dev/console
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 kcrash /share || fail "mount 9p share"

if [ -e /proc/vmcore ]; then
	echo "KCRASH-CAPTURE-START" > /dev/console
	. /share/capture.sh
	sync
	echo "KCRASH-CAPTURE-DONE" > /dev/console
	poweroff -f
else
	echo "KCRASH-BOOTED $(uname -r)" > /dev/console
	. /share/job.sh
	# The job crashes the kernel; if we get here, it did not.
	sleep 3600
	fail "job finished without a crash"
fi
