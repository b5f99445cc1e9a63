#!/usr/bin/env python3
"""numabind's topology lab: boot a throw-away multi-NUMA QEMU guest with a
chosen layout, run one command in it, return its output and exit status.

    python3 tools/lab/lab.py setup                   # guest kernel + initramfs into the cache (once)
    python3 tools/lab/lab.py layouts                 # the layouts
    python3 tools/lab/lab.py run --layout 4node-smt -- numabind show
    python3 tools/lab/lab.py run --layout 2node -- python -m pytest tests/lab/guest
    python3 tools/lab/lab.py qemu-args --layout 2node   # the QEMU command, not run

The guest runs Debian's stock kernel on the host's own userspace, shared
read-only over virtio-9p under a tmpfs overlay: the host's Python, the venv
with numabind and the repository are all there, at the same paths. Nothing
the guest writes reaches the host but the run directory. The guest has no
network outside QEMU (its NICs share one internal hub).

Exit status: the command's own; 125 when the guest failed to boot or to set
itself up (the command never ran); 124 when the command did not finish (it
ran past its deadline, and the guest's watchdog printed every process's
state and stopped it, or the guest crashed under it); 123 when the guest
stopped answering (QEMU or its kernel froze: no heartbeat, no watchdog);
each with the reason and the guest console's last lines on stderr.
Standard library only. docs/lab.md has the details.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
from layouts import LAYOUTS, STANDIN_ID, Layout

GUEST = HERE / "guest"
# Modules the initramfs loads, dependencies first. Debian's generic kernel
# builds these as modules (its cloud flavour lacks 9p, e1000e and rdma_rxe).
# rdma_rxe computes its ICRC with the kernel's crc32 shash, which it finds
# through request_module: crc32_generic must be loaded before it.
MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay", "virtio_net", "e1000e", "crc32_generic",
           "rdma_rxe", "ib_uverbs")
TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "cpio": "cpio", "depmod": "kmod", "modprobe": "kmod",
         "busybox": "busybox-static", "rdma": "iproute2", "apt-get": "apt", "dpkg": "dpkg"}
BOOT_FAILED, NOT_FINISHED, STOPPED_ANSWERING = 125, 124, 123
# The guest's own watchdog stops a command this long before the host's
# timeout (printing every process's state first); a host timeout therefore
# means the guest itself stopped answering.
WATCHDOG_MARGIN_S = 45


class LabError(Exception):
    """Setup or boot failed; the message says why."""


def log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("NUMABIND_LAB_DIR") or REPO / ".lab").resolve()


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)
    except subprocess.CalledProcessError as e:
        raise LabError(f"{' '.join(map(shlex.quote, cmd))} failed ({e.returncode}): {(e.stderr or e.stdout).strip()}")


# ---------------------------------------------------------------------------
# setup: the guest kernel and the initramfs, cached
# ---------------------------------------------------------------------------

def _is_static(path: str) -> bool:
    """True when the ELF file has no PT_INTERP (needs no dynamic loader)."""
    import struct
    with open(path, "rb") as f:
        hdr = f.read(64)
        if hdr[:4] != b"\x7fELF" or hdr[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", hdr, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", hdr, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


def check_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if not shutil.which(tool)})
    if missing:
        raise LabError(f"missing tools; install them with: apt-get install --no-install-recommends {' '.join(missing)}")
    busybox = shutil.which("busybox")
    if not _is_static(busybox):
        raise LabError(f"{busybox} is dynamically linked; the initramfs needs busybox-static")


def _kernel_package() -> str:
    pkg = os.environ.get("NUMABIND_LAB_KERNEL_PKG")
    if pkg:
        return pkg
    out = _run(["apt-cache", "depends", "linux-image-amd64"]).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends: linux-image-") and line.split()[1][len("linux-image-"):][:1].isdigit():
            return line.split()[1]
    raise LabError("cannot resolve linux-image-amd64 to a kernel package (apt-get update?); "
                   "or set NUMABIND_LAB_KERNEL_PKG=linux-image-<version>-amd64")


def _vmlinux_from_bzimage(bz: Path, out: Path) -> bool:
    """The uncompressed kernel (an ELF with a PVH entry point): booting it
    skips the xz decompression, several seconds under TCG."""
    data = bz.read_bytes()
    at = data.find(b"\xfd7zXZ\x00")
    if at < 0:
        return False
    try:
        raw = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[at:])
    except lzma.LZMAError:
        return False
    if raw[:4] != b"\x7fELF":
        return False
    out.write_bytes(raw)
    return True


def _fetch_kernel(root: Path) -> Path:
    """Downloads and unpacks the kernel package; returns cache/kernel-<version>."""
    pkg = _kernel_package()
    kver = pkg[len("linux-image-"):]
    kdir = root / f"kernel-{kver}"
    stamp = f"{pkg} {' '.join(MODULES)}\n"
    if _read(kdir / "done") == stamp.strip():
        return kdir
    log(f"fetching the guest kernel {pkg}")
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        t = Path(tmp)
        _run(["apt-get", "download", pkg], cwd=t)
        debs = list(t.glob("linux-image-*.deb"))
        if len(debs) != 1:
            raise LabError(f"apt-get download {pkg} left {debs}")
        tree = t / "tree"
        _run(["dpkg", "-x", str(debs[0]), str(tree)])
        _run(["depmod", "-b", str(tree), kver])
        if kdir.exists():
            shutil.rmtree(kdir)
        (kdir / "modules").mkdir(parents=True)
        order = []
        for m in MODULES:
            out = _run(["modprobe", "-d", str(tree), "-S", kver, "--show-depends", m]).stdout
            for line in out.splitlines():
                parts = line.split()
                if parts[:1] == ["insmod"]:
                    ko = Path(parts[1])
                    name = ko.name.split(".ko")[0] + ".ko"
                    if name not in order:
                        order.append(name)
                        raw = ko.read_bytes()
                        if ko.name.endswith(".xz"):
                            raw = lzma.decompress(raw)
                        elif ko.name.endswith((".zst", ".gz")):
                            raise LabError(f"{ko.name}: compressed modules other than xz are not handled")
                        (kdir / "modules" / name).write_bytes(raw)
        (kdir / "modules.list").write_text("\n".join(order) + "\n")
        bz = tree / "boot" / f"vmlinuz-{kver}"
        shutil.copy(bz, kdir / "vmlinuz")
        if not _vmlinux_from_bzimage(bz, kdir / "vmlinux"):
            log("could not extract an uncompressed vmlinux; booting the bzImage (slower)")
        (kdir / "version").write_text(kver + "\n")
        (kdir / "done").write_text(stamp)
    return kdir


def _initramfs(root: Path, kdir: Path) -> Path:
    """busybox, the modules and guest/initramfs-init.sh; rebuilt when any changes."""
    init = (GUEST / "initramfs-init.sh").read_bytes()
    busybox = Path(shutil.which("busybox")).resolve()
    h = hashlib.sha256(init + (kdir / "modules.list").read_bytes() + busybox.read_bytes()).hexdigest()[:16]
    out = kdir / f"initramfs-{h}.cpio"
    if out.exists():
        return out
    log("building the initramfs")
    for old in kdir.glob("initramfs-*.cpio"):
        old.unlink()
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        d = Path(tmp)
        for sub in ("bin", "proc", "sys", "dev", "modules"):
            (d / sub).mkdir()
        shutil.copy(busybox, d / "bin" / "busybox")
        applets = _run([str(busybox), "--list"]).stdout.split()
        for a in applets:
            if a != "busybox":  # a link named busybox would replace the binary with a loop
                os.symlink("busybox", d / "bin" / a)
        (d / "init").write_bytes(init)
        (d / "init").chmod(0o755)
        shutil.copy(kdir / "modules.list", d / "modules.list")
        for ko in (kdir / "modules").iterdir():
            shutil.copy(ko, d / "modules" / ko.name)
        names = sorted(str(p.relative_to(d)) for p in d.rglob("*"))
        with open(str(out) + ".tmp", "wb") as f:
            subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=d, input="\n".join(names).encode(),
                           stdout=f, check=True)
        os.replace(str(out) + ".tmp", out)
    return out


@dataclass
class Kernel:
    version: str
    image: Path        # vmlinux (PVH) when extracted, else the bzImage
    initramfs: Path


def setup() -> Kernel:
    """Checks the tools, fetches the kernel and builds the initramfs (cached)."""
    check_tools()
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    kdir = _fetch_kernel(root)
    image = kdir / "vmlinux" if (kdir / "vmlinux").exists() else kdir / "vmlinuz"
    return Kernel((kdir / "version").read_text().strip(), image, _initramfs(root, kdir))


# ---------------------------------------------------------------------------
# the machine
# ---------------------------------------------------------------------------

def kvm_usable() -> tuple[bool, str]:
    """KVM runs a stock kernel only with hardware virtualization: /dev/kvm
    alone is not enough (a PVM host's /dev/kvm runs only PVM-built guests,
    and shows no vmx/svm flag)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError as e:
        return False, f"/dev/kvm: {e.strerror}"
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
    if not flags & {"vmx", "svm"}:
        return False, "/dev/kvm is there but the CPU shows no vmx/svm (PVM or nested without VT-x)"
    return True, "KVM"


def _ranges(cpus: list[int]) -> list[str]:
    out, start = [], None
    for i, c in enumerate(cpus):
        if start is None:
            start = c
        if i + 1 == len(cpus) or cpus[i + 1] != c + 1:
            out.append(f"{start}-{c}" if c != start else str(c))
            start = None
    return out


def qemu_args(layout: Layout, kernel: Kernel, run_dir: Path, accel: str, append: str = "") -> list[str]:
    # TCG's "max" CPU is an AMD one without topoext, which cannot describe
    # SMT: every thread would come up as a core of its own. As an Intel CPU
    # it reports its threads through CPUID leaf 0xb, and the guest sees them.
    cpu = "host" if accel == "kvm" else "max,vendor=GenuineIntel"
    # One TCG thread for every vCPU: no vCPU can run a stale translation of
    # code another vCPU patched (docs/lab.md "Frozen guests"), and on the
    # 2-core CI machine it is no slower than one thread per vCPU, which
    # accel "tcg-multi" asks for.
    accel_opt = {"kvm": "kvm", "tcg-multi": "tcg,thread=multi"}.get(accel, "tcg,thread=single")
    mem = sum(n.mem_mib for n in layout.nodes)
    a = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
         "-machine", "q35", "-accel", accel_opt, "-cpu", cpu,
         "-smp", f"{layout.num_cpus},sockets={layout.sockets},cores={layout.cores},threads={layout.threads}",
         "-m", f"{mem}M"]
    for n in layout.nodes:
        a += ["-object", f"memory-backend-ram,id=mem{n.id},size={n.mem_mib}M"]
        a += ["-numa", ",".join([f"node,nodeid={n.id}", f"memdev=mem{n.id}"]
                                + [f"cpus={r}" for r in _ranges(layout.node_cpus(n))])]
    for i, row in enumerate(layout.distances):
        for j, d in enumerate(row):
            if i < j:
                a += ["-numa", f"dist,src={i},dst={j},val={d}"]
    chassis = 1
    nic_index = {d.name: i for i, (_, _, d) in enumerate(layout.devices("nic"))}
    for p, pxb in enumerate(layout.pxbs):
        # Every other device names bus=pcie.0: QEMU would put a device without
        # bus= on the last pxb, which takes bridges only.
        a += ["-device", f"pxb-pcie,id=pxb{p},bus=pcie.0,bus_nr={pxb.bus_nr},numa_node={pxb.node}"]
        for i, port in enumerate(pxb.ports):
            rp = f"rp{p}_{i}"
            a += ["-device", f"pcie-root-port,id={rp},bus=pxb{p},chassis={chassis},slot={i}"]
            chassis += 1
            buses = [rp] * len(port.devices)
            if port.switch:
                a += ["-device", f"x3130-upstream,id=up{p}_{i},bus={rp}"]
                buses = []
                for j in range(len(port.devices)):
                    a += ["-device", f"xio3130-downstream,id=dn{p}_{i}_{j},bus=up{p}_{i},chassis={chassis},slot={j}"]
                    chassis += 1
                    buses.append(f"dn{p}_{i}_{j}")
            for dev, bus in zip(port.devices, buses):
                if dev.kind == "gpu":
                    a += ["-device", f"pci-testdev,bus={bus},id={dev.name}"]
                else:
                    k = nic_index[dev.name]
                    a += ["-netdev", f"hubport,id=net{k},hubid=0",
                          "-device", (f"{dev.model},netdev=net{k},bus={bus},id={dev.name},"
                                      f"mac={layout.nic_mac(k)},romfile=")]
    a += ["-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
          "-device", "virtio-9p-pci,bus=pcie.0,fsdev=hostroot,mount_tag=hostroot",
          "-fsdev", f"local,id=runshare,path={run_dir},security_model=none",
          "-device", "virtio-9p-pci,bus=pcie.0,fsdev=runshare,mount_tag=runshare"]
    # Less kernel text patching at run time (docs/lab.md "Frozen guests"):
    # tsc=reliable: no clocksource watchdog, which on an overcommitted host
    # marks the TSC unstable and flips __sched_clock_stable (and leaves the
    # guest on the slow HPET); numa_balancing=disable: the tests turn it off,
    # now a no-op.
    cmdline = (f"console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off tsc=reliable numa_balancing=disable "
               f"nblab.run={run_dir} {append}").strip()
    a += ["-kernel", str(kernel.image), "-initrd", str(kernel.initramfs), "-append", cmdline,
          "-serial", f"file:{run_dir}/console.log",          # ttyS0: the kernel's console
          "-chardev", "stdio,id=out,signal=off", "-serial", "chardev:out"]  # ttyS1: the command's output
    qmp = run_dir / "qmp.sock"
    if len(str(qmp)) < 100:  # a unix socket's path limit; QMP is for tests and debugging only
        a += ["-qmp", f"unix:{qmp},server=on,wait=off"]
    return a


# ---------------------------------------------------------------------------
# running a command
# ---------------------------------------------------------------------------

@dataclass
class Result:
    rc: int
    output: str | None       # None when streamed to stdout
    accel: str
    boot_s: float | None     # guest uptime when the command started
    command_s: float | None
    wall_s: float
    reason: str = ""         # why rc is BOOT_FAILED / NOT_FINISHED / STOPPED_ANSWERING
    run_dir: Path | None = None   # kept (console.log, timeline) with keep=True or on failure


def default_venv() -> Path | None:
    for cand in (os.environ.get("VIRTUAL_ENV"), REPO / ".venv"):
        if cand and (Path(cand) / "bin" / "python").exists():
            return Path(cand)
    return None


def _write_run_dir(run_dir: Path, layout: Layout, argv: list[str], venv: Path | None, rxe: bool,
                   env: dict[str, str], cwd: Path, deadline: int) -> None:
    shutil.copy(GUEST / "pid1.sh", run_dir / "pid1.sh")
    gpus = len(layout.devices("gpu"))
    (run_dir / "guest.env").write_text(f"LAB_RXE={int(rxe)}\nLAB_GPUS={gpus}\nLAB_STANDIN_ID={STANDIN_ID}\n"
                                       f"LAB_DEADLINE={deadline}\n")
    (run_dir / "nics").write_text("".join(f"{layout.nic_mac(i)} {d.name}\n"
                                          for i, (_, _, d) in enumerate(layout.devices("nic"))))
    desc = layout.to_json()
    desc["rxe"] = rxe
    (run_dir / "layout.json").write_text(json.dumps(desc, indent=1) + "\n")
    (run_dir / "cwd").write_text(f"{cwd}\n")
    path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    # PYTHONFAULTHANDLER: the watchdog's SIGABRT makes every Python print its threads' stacks.
    exports = {"PATH": path, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONFAULTHANDLER": "1",
               "NUMABIND_LAB": "1", "NUMABIND_LAB_LAYOUT": str(run_dir / "layout.json"),
               "NUMABIND_LAB_RUN": str(run_dir)}
    if venv:
        exports["VIRTUAL_ENV"] = str(venv)
        exports["PATH"] = f"{venv}/bin:{path}"
    exports.update(env)
    lines = ["#!/bin/bash"] + [f"export {k}={shlex.quote(v)}" for k, v in exports.items()]
    lines.append(" ".join(shlex.quote(x) for x in argv))
    (run_dir / "cmd.sh").write_text("\n".join(lines) + "\n")


def _read(p: Path) -> str | None:
    try:
        return p.read_text().strip()
    except OSError:
        return None


def _console_tail(run_dir: Path, n: int = 40) -> str:
    text = _read(run_dir / "console.log") or "(the guest printed nothing on its console)"
    return "\n".join("    " + line for line in text.splitlines()[-n:])


def _boot_once(layout: Layout, kernel: Kernel, run_dir: Path, accel: str, timeout: float,
               capture: bool, append: str) -> tuple[int | None, str | None, float]:
    args = qemu_args(layout, kernel, run_dir, accel, append)
    t0 = time.monotonic()
    with open(run_dir / "qemu.stderr", "w") as err:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=err,
                                stdout=subprocess.PIPE if capture else None, start_new_session=True)
        out = None
        try:
            if capture:
                out, _ = proc.communicate(timeout=timeout)
                out = out.decode(errors="replace")
            else:
                proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                out2, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out2, _ = proc.communicate()
            if capture:
                out = (out2 or b"").decode(errors="replace")
            return None, out, time.monotonic() - t0
    return proc.returncode, out, time.monotonic() - t0


def run(layout: Layout, argv: list[str], *, venv: Path | None = None, rxe: bool = True, timeout: float = 600,
        accel: str = "auto", env: dict[str, str] | None = None, cwd: Path | None = None, keep: bool = False,
        capture: bool = False, append: str = "", deadline: int | None = None) -> Result:
    """Boots a guest with `layout`, runs `argv` in it, powers it off.

    `capture`: return the command's output in Result.output instead of
    streaming it to stdout. `append`: extra kernel command line.
    `deadline`: guest uptime (s) at which the guest's watchdog stops the
    command, printing every process's state first (default: `timeout`
    less WATCHDOG_MARGIN_S, none for a timeout under twice that; 0: none)."""
    if deadline is None:
        deadline = int(timeout) - WATCHDOG_MARGIN_S if timeout > 2 * WATCHDOG_MARGIN_S else 0
    kernel = setup()
    chosen = accel
    if accel == "auto":
        ok, why = kvm_usable()
        chosen = "kvm" if ok else "tcg"
        if not ok:
            log(f"TCG (software emulation): {why}")
    runs = cache_dir() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    while True:
        run_dir = Path(tempfile.mkdtemp(prefix=f"{layout.name}-", dir=runs))
        _write_run_dir(run_dir, layout, argv, venv, rxe, env or {}, cwd or Path.cwd(), deadline)
        qrc, out, wall = _boot_once(layout, kernel, run_dir, chosen, timeout, capture, append)
        ready = _read(run_dir / "ready")
        if ready is None and accel == "auto" and chosen == "kvm":
            log(f"the guest did not boot under KVM (QEMU exit {qrc}); retrying under TCG. "
                f"QEMU said: {_read(run_dir / 'qemu.stderr')}")
            if not keep:
                shutil.rmtree(run_dir, ignore_errors=True)
            chosen = "tcg"
            continue
        break
    for line in (_read(run_dir / "qemu.stderr") or "").splitlines():
        if "is not connected to host network" not in line:  # the hub has no host side, on purpose
            print(f"qemu: {line}", file=sys.stderr)
    rc_text, done = _read(run_dir / "rc"), _read(run_dir / "done")
    watchdog, heartbeat = _read(run_dir / "watchdog"), _read(run_dir / "heartbeat")
    setup_error = _read(run_dir / "setup-error")
    boot_s = float(ready) if ready else None
    command_s = float(done) - boot_s if done and boot_s is not None else None
    reason = ""
    if rc_text is not None and watchdog is not None:
        rc, reason = NOT_FINISHED, (f"the command ran past its deadline (guest uptime {deadline} s); the guest's "
                                    f"watchdog printed every process's state above and stopped it")
    elif rc_text is not None:
        rc = int(rc_text)
    elif setup_error:
        rc, reason = BOOT_FAILED, f"guest setup failed, the command did not run: {setup_error}"
    elif ready is None:
        why = f"timed out after {timeout:.0f} s" if qrc is None else f"QEMU exited with {qrc}"
        rc, reason = BOOT_FAILED, f"GUEST FAILED TO BOOT ({why}) before running the command"
    elif qrc is None and deadline:
        # The watchdog would have ended the command by now in a live guest.
        beat = f"its last heartbeat was at uptime {heartbeat} s" if heartbeat else "it never wrote a heartbeat"
        rc, reason = STOPPED_ANSWERING, (f"THE GUEST STOPPED ANSWERING (timed out after {timeout:.0f} s; {beat}, "
                                         f"the command started at {ready} s): QEMU or the guest kernel froze")
    else:
        why = f"timed out after {timeout:.0f} s" if qrc is None else f"the guest stopped (QEMU exit {qrc})"
        rc, reason = NOT_FINISHED, f"the command did not finish: {why}"
    if reason:
        log(f"{reason}; layout {layout.name}, accel {chosen}; guest console (last lines):\n{_console_tail(run_dir)}")
    log(f"layout {layout.name}, accel {chosen}: command started at guest uptime "
        f"{f'{boot_s:.1f} s' if boot_s is not None else '-'}, ran "
        f"{f'{command_s:.1f} s' if command_s is not None else '-'}, {wall:.1f} s in all, exit {rc}")
    if keep or reason:
        log(f"run directory kept: {run_dir}")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return Result(rc, out, chosen, boot_s, command_s, wall, reason, run_dir if keep or reason else None)


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

def _layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise argparse.ArgumentTypeError(f"unknown layout {name!r} (choose from {', '.join(LAYOUTS)})")
    return LAYOUTS[name]


def _env_pair(s: str) -> tuple[str, str]:
    k, sep, v = s.partition("=")
    if not sep or not k:
        raise argparse.ArgumentTypeError(f"--env takes NAME=VALUE, not {s!r}")
    return k, v


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lab.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("setup", help="check the tools, fetch the guest kernel, build the initramfs")
    lay = sub.add_parser("layouts", help="list the layouts")
    lay.add_argument("--json", action="store_true")
    qa = sub.add_parser("qemu-args", help="print the QEMU command for a layout")
    qa.add_argument("--layout", type=_layout, default="2node")
    r = sub.add_parser("run", help="boot a guest, run CMD, exit with its status")
    r.add_argument("--layout", type=_layout, default="2node", help=f"one of {', '.join(LAYOUTS)}")
    r.add_argument("--venv", type=Path, default=None,
                   help="venv whose bin/ leads PATH in the guest (default: $VIRTUAL_ENV, else .venv)")
    r.add_argument("--no-rxe", dest="rxe", action="store_false", help="no soft-RoCE devices")
    r.add_argument("--timeout", type=float, default=600, help="seconds for boot and command together")
    r.add_argument("--accel", choices=("auto", "kvm", "tcg", "tcg-multi"), default="auto",
                   help="tcg: one host thread for all vCPUs; tcg-multi: one per vCPU (docs/lab.md)")
    r.add_argument("--env", type=_env_pair, action="append", default=[], metavar="NAME=VALUE")
    r.add_argument("--keep", action="store_true", help="keep the run directory (console.log, layout.json)")
    r.add_argument("--append", default="", metavar="ARGS", help="extra kernel command line (debugging)")
    r.add_argument("--deadline", type=int, default=None, metavar="UPTIME",
                   help=f"guest uptime at which the guest stops the command, printing every process's state "
                        f"(default: timeout - {WATCHDOG_MARGIN_S}; 0: never)")
    r.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    args = p.parse_args(argv)
    try:
        if args.cmd == "setup":
            k = setup()
            print(f"kernel {k.version}: {k.image}\ninitramfs: {k.initramfs}")
            return 0
        if args.cmd == "layouts":
            if args.json:
                print(json.dumps({n: lay.to_json() for n, lay in LAYOUTS.items()}, indent=1))
            else:
                for n, lay in LAYOUTS.items():
                    print(f"{n:10s} {lay.description}")
            return 0
        if args.cmd == "qemu-args":
            k = Kernel("VERSION", Path("VMLINUX"), Path("INITRAMFS"))
            print(" ".join(shlex.quote(x) for x in qemu_args(args.layout, k, Path("RUN_DIR"), "tcg")))
            return 0
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            p.error("run: no command given (lab.py run [options] -- CMD ARGS)")
        venv = args.venv.resolve() if args.venv else default_venv()
        if venv and not (venv / "bin" / "python").exists():
            raise LabError(f"--venv {venv}: no bin/python there")
        res = run(args.layout, command, venv=venv, rxe=args.rxe, timeout=args.timeout, accel=args.accel,
                  env=dict(args.env), keep=args.keep, append=args.append, deadline=args.deadline)
        return res.rc
    except LabError as e:
        log(f"error: {e}")
        return BOOT_FAILED


if __name__ == "__main__":
    sys.exit(main())
