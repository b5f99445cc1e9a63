#!/bin/bash
# PID 1 of a lab guest, run by the host's bash from the shared root.
#
# Sets up what the layout asks for (the runner writes it to $RUN/guest.env),
# writes $RUN/ready, runs $RUN/cmd.sh with its output on the second serial
# port (the runner's stdout), writes its exit status to $RUN/rc and powers
# off. A setup step that fails writes $RUN/setup-error and skips the command:
# the runner then fails loudly instead of running tests on a half-made guest.
#
# Everything is inside main(): bash has parsed the whole script before the
# power-off starts tearing down the 9p mount this file lives on.
RUN=${0%/*}
# Guest uptime at each step, into $RUN/timeline (builtins only: every
# process started here is a host binary read over 9p, slow under TCG).
mark() {
    local up rest
    read -r up rest < /proc/uptime
    echo "$up $*" >> "$RUN/timeline"
}
# Runs $RUN/cmd.sh, writing the guest's uptime to $RUN/heartbeat every
# 2 s meanwhile: a host that times out can tell a guest that stopped
# answering (stale heartbeat) from a command that never ended. Past
# $LAB_DEADLINE (guest uptime; 0 = none) the command is stopped here, in the
# guest, after printing every process's threads and where each waits in the
# kernel, and SIGABRT to the Pythons (faulthandler prints their stacks):
# a hang leaves its reason in the log instead of a silent host timeout.
run_command() {
    local cmd up rest pause rc
    exec {pause}<> <(:)
    /bin/bash "$RUN/cmd.sh" > /dev/ttyS1 2>&1 < /dev/null &
    cmd=$!
    while kill -0 "$cmd" 2>/dev/null; do
        read -r up rest < /proc/uptime
        echo "$up" > "$RUN/heartbeat"
        if [ "${LAB_DEADLINE:-0}" -gt 0 ] && [ "${up%.*}" -ge "$LAB_DEADLINE" ]; then
            watchdog "$up" > /dev/ttyS1 2>&1
            echo "$up" > "$RUN/watchdog"
            break
        fi
        read -r -t 2 -u "$pause"
    done
    wait "$cmd"
    rc=$?
    [ -e "$RUN/watchdog" ] && rc=124
    echo "$rc" > "$RUN/rc.tmp"
}
watchdog() {
    local p t args comm line wchan i pythons=()
    echo
    echo "== lab watchdog: the command is still running at guest uptime $1 s (deadline $LAB_DEADLINE s)."
    echo "== Every process, its threads (state, kernel wait channel) and their kernel stacks:"
    for p in /proc/[0-9]*; do
        args=()
        mapfile -d '' args < "$p/cmdline" 2>/dev/null
        [ ${#args[@]} -gt 0 ] || continue          # a kernel thread
        [ "${p#/proc/}" = 1 ] && continue           # this script
        read -r comm < "$p/comm"
        echo "-- pid ${p#/proc/}: ${args[*]}"
        [[ $comm == python* ]] && pythons+=("${p#/proc/}")
        for t in "$p"/task/*; do
            read -r line < "$t/stat" || continue
            wchan=""
            read -r wchan < "$t/wchan"
            read -r comm < "$t/comm"
            line=${line##*) }
            echo "   thread ${t##*/} ($comm): state ${line%% *}, waiting in ${wchan:-(running)}"
            while read -r line; do echo "      $line"; done < "$t/stack"
        done
    done
    if [ ${#pythons[@]} -gt 0 ]; then
        echo "== SIGABRT to the Python processes ${pythons[*]} (faulthandler prints each one's threads):"
        for ((i = ${#pythons[@]} - 1; i >= 0; i--)); do kill -ABRT "${pythons[i]}" 2>/dev/null; done
        for ((i = 0; i < 10; i++)); do kill -0 "$cmd" 2>/dev/null || break; read -r -t 0.5 -u "$pause"; done
    fi
    echo "== lab watchdog: stopping every process"
    kill -TERM -1 2>/dev/null
    for ((i = 0; i < 6; i++)); do kill -0 "$cmd" 2>/dev/null || break; read -r -t 0.5 -u "$pause"; done
    kill -KILL -1 2>/dev/null
}
main() {
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    export HOME=/root LANG=C.UTF-8 TERM=dumb
    local err="" mac name dev want n found i up rest dir
    # The initramfs left a static busybox in /run/lab: cheaper to start
    # under emulation than the host's own tools.
    local bb=/run/lab/busybox
    $bb mkdir -p /dev/pts /dev/shm
    $bb mount -t devpts -o gid=5,mode=620 devpts /dev/pts
    $bb mount -t tmpfs -o mode=1777 tmpfs /dev/shm
    [ -e /dev/fd ] || $bb ln -s /proc/self/fd /dev/fd
    $bb hostname lab-guest
    $bb ip link set lo up
    # shellcheck source=/dev/null
    . "$RUN/guest.env"
    mark pid1

    # GPU stand-ins: the layout's GPUs are QEMU pci-testdev functions
    # ($LAB_STANDIN_ID) at real places in the PCI tree; they become NVIDIA
    # 3D controllers to numabind by bind-mounting vendor, device and class,
    # and a uevent whose PCI_CLASS and PCI_ID lines say the same (numabind
    # reads those first). Their numa_node, local_cpulist and sysfs path stay
    # the kernel's own.
    $bb mkdir -p /run/lab-gpu
    printf '0x10de\n' > /run/lab-gpu/vendor
    printf '0x2330\n' > /run/lab-gpu/device
    printf '0x030200\n' > /run/lab-gpu/class
    found=0
    local vendor device addr
    for dev in /sys/bus/pci/devices/*; do
        read -r vendor < "$dev/vendor"
        read -r device < "$dev/device"
        [ "$vendor:$device" = "$LAB_STANDIN_ID" ] || continue
        for f in vendor device class; do
            $bb mount --bind "/run/lab-gpu/$f" "$dev/$f" || err="$err; cannot relabel ${dev##*/}/$f"
        done
        $bb sed -e 's/^PCI_CLASS=.*/PCI_CLASS=30200/' -e 's/^PCI_ID=.*/PCI_ID=10DE:2330/' \
            "$dev/uevent" > "/run/lab-gpu/${dev##*/}.uevent" &&
            $bb mount --bind "/run/lab-gpu/${dev##*/}.uevent" "$dev/uevent" ||
            err="$err; cannot relabel ${dev##*/}/uevent"
        echo "${dev##*/}" >> "$RUN/gpus"
        found=$((found + 1))
    done
    [ "$found" = "$LAB_GPUS" ] || err="$err; found $found GPU stand-ins ($LAB_STANDIN_ID), the layout has $LAB_GPUS"
    mark gpus relabelled

    # NICs by MAC address (probe order names them eth0.. in any order);
    # with soft-RoCE, one rxe device per NIC under the layout's name.
    while read -r mac name; do
        [ -n "$mac" ] || continue
        dev=""
        for n in /sys/class/net/*; do
            read -r addr < "$n/address"
            [ "$addr" = "$mac" ] && dev=${n##*/}
        done
        if [ -z "$dev" ]; then err="$err; no netdev has MAC $mac ($name)"; continue; fi
        $bb ip link set "$dev" up || err="$err; cannot bring $dev up"
        echo "$mac $dev" >> "$RUN/netdevs"
        echo "link add $name type rxe netdev $dev" >> "$RUN/rdma.batch"
    done < "$RUN/nics"
    mark nics up
    if [ "$LAB_RXE" = 1 ] && [ -z "$err" ]; then
        # One run of iproute2's rdma for every device ("-batch" would be
        # read as -b "atch").
        rdma -b "$RUN/rdma.batch" 2> "$RUN/rdma.err" \
            || err="$err; rdma link add failed: $(< "$RUN/rdma.err")"
    fi
    if [ "$LAB_RXE" = 1 ] && [ -z "$err" ]; then
        # A port turns ACTIVE once its netdev has carrier.
        local state names=()
        while read -r mac name; do [ -n "$name" ] && names+=("$name"); done < "$RUN/nics"
        local pause
        exec {pause}<> <(:)    # a pipe nobody writes: read -t on it pauses without a process
        for ((i = 0; i < 100; i++)); do
            want=""
            for name in "${names[@]}"; do
                state=""
                read -r state 2>/dev/null < "/sys/class/infiniband/$name/ports/1/state"
                [[ $state == *ACTIVE* ]] || want="$want $name:${state:-none}"
            done
            [ -z "$want" ] && break
            read -r -t 0.1 -u "$pause"
        done
        [ -z "$want" ] || err="$err; soft-RoCE ports not ACTIVE after 10 s:$want"
        mark rxe active
    fi

    if [ -n "$err" ]; then
        echo "${err#; }" > "$RUN/setup-error"
    else
        $bb stty -F /dev/ttyS1 raw -echo 2>/dev/null
        mark ready
        read -r up rest < /proc/uptime; echo "$up" > "$RUN/ready"
        read -r dir < "$RUN/cwd"
        cd "$dir" 2>/dev/null || cd /
        run_command
        read -r up rest < /proc/uptime; echo "$up" > "$RUN/done"
        $bb mv "$RUN/rc.tmp" "$RUN/rc"
    fi
    $bb sync
    echo o > /proc/sysrq-trigger   # ACPI power-off; builtins only from here on
    local end=$((SECONDS + 10))
    while ((SECONDS < end)); do :; done
    echo b > /proc/sysrq-trigger   # else reboot, which -no-reboot turns into QEMU's exit
}
main "$@"
