#!/bin/sh
# /init of the lab's initramfs (busybox sh). Loads the modules the kernel
# keeps outside itself (virtio, 9p, overlay, the NIC drivers, soft-RoCE),
# mounts the host's root over 9p read-only under a tmpfs overlay, mounts the
# run directory read-write at the path it has on the host, and hands over to
# guest/pid1.sh from the host's userspace. Any failure here powers the guest
# off with "lab-initramfs: FATAL" on the console, which the runner reports as
# a failed boot.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fatal() {
    echo "lab-initramfs: FATAL: $*" > /dev/console
    echo o > /proc/sysrq-trigger
    sleep 30
}
# nblab.key=value on the kernel command line -> $LAB_key
for w in $(cat /proc/cmdline); do
    case "$w" in nblab.*=*) k=${w%%=*}; k=${k#nblab.}; eval "LAB_$k=\${w#*=}" ;; esac
done
[ -n "${LAB_run:-}" ] || fatal "no nblab.run= on the kernel command line"

for m in $(cat /modules.list); do
    insmod "/modules/$m" || fatal "insmod $m failed"
done

mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower \
    || fatal "cannot mount the host's root (9p tag hostroot)"
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || fatal "cannot mount the overlay root"
# /run for the guest, with this static busybox in it: guest setup runs it
# rather than the host's dynamically linked tools, each of which costs a
# dynamic link over 9p under emulation.
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || fatal "cannot mount /run"
mkdir -p /newroot/run/lab && cp /bin/busybox /newroot/run/lab/busybox || fatal "cannot copy busybox"
mkdir -p "/newroot$LAB_run" || fatal "cannot create $LAB_run in the guest"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 runshare "/newroot$LAB_run" \
    || fatal "cannot mount the run directory (9p tag runshare)"
echo "lab-initramfs: root mounted at $(cut -d' ' -f1 /proc/uptime) s" > /dev/kmsg
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/bash "$LAB_run/pid1.sh"
