#!/usr/bin/env python3
"""Idle cost of a registered phone, msipphone (headless and windowed) and
baresip side by side in one run (scripts/bench/phone-idle runs this).

All register with one kamailio on 127.0.0.1 (tests/peers/kamailio.cfg,
every password "secret"), then sit idle. Reported per phone: resident
memory (VmRSS, and its anonymous part) after SETTLE seconds, the CPU time
used over IDLE seconds of idleness, and the binary's size. For msipphone
also the control-socket latency: the time from writing `Dial URI` to the
phone's socket to the INVITE arriving at a UDP socket of this script
(median and max of DIALS dials; each call is cancelled by `Hangup`).

The windowed phone (`msipphone --config INI`, no --headless) runs under
Xvfb with a private D-Bus session bus and a tray (gtk-sni-tray-standalone
with its StatusNotifierWatcher, as scripts/ui-screenshot), so its tray icon
is up as on a desktop, after the headless one has stopped; it is measured
WINDOW_SETTLE seconds after its start. Its
OpenGL is Mesa's: under Xvfb the llvmpipe software rasteriser (swrast_dri.so
with libLLVM), whose mapped libraries are reported apart (gl_libs_rss_kb);
the driver's heap (JIT code, framebuffers) is in the anonymous part.

usage: phone_idle.py MSIPPHONE_BIN REPO_ROOT
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SETTLE = float(os.environ.get("SETTLE", "5"))
IDLE = float(os.environ.get("IDLE", "10"))
WINDOW_SETTLE = float(os.environ.get("WINDOW_SETTLE", "30"))
DIALS = int(os.environ.get("DIALS", "50"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # utime, stime are fields 14 and 15 (1-based); after ')' they are 12, 13.
    return (int(parts[11]) + int(parts[12])) / ticks


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"phone_idle: timed out waiting for {what}")


def measure(name, pid, binary, settle=SETTLE):
    time.sleep(settle)
    status = proc_status(pid)
    before = cpu_seconds(pid)
    time.sleep(IDLE)
    used = cpu_seconds(pid) - before
    return {
        "phone": name,
        "rss_kb": int(status["VmRSS"].split()[0]),
        "rss_anon_kb": int(status["RssAnon"].split()[0]),
        "idle_cpu_ms_per_min": round(used * 1000 * 60 / IDLE, 1),
        "binary_bytes": os.path.getsize(binary),
    }


def start_kamailio(root, work, port):
    cfg = os.path.join(root, "tests", "peers", "kamailio.cfg")
    log = open(os.path.join(work, "kamailio.log"), "w")
    proc = subprocess.Popen(
        ["kamailio", "-f", cfg, "-DD", "-E", "-m", "32", "-M", "4", "-Y", work, "-w", work,
         "-l", f"udp:127.0.0.1:{port}", "-l", f"tcp:127.0.0.1:{port}",
         "-A", 'AUTH_ALGORITHM="MD5"'],
        stdout=log, stderr=log, start_new_session=True)
    time.sleep(1.0)
    if proc.poll() is not None:
        raise SystemExit("phone_idle: kamailio did not start; see kamailio.log")
    return proc


def write_profile(folder, kam_port):
    """alice's microsip.ini, as MicroSIP writes it (UTF-16 LE, CRLF)."""
    os.makedirs(folder, exist_ok=True)
    ini = os.path.join(folder, "microsip.ini")
    text = (f"[Settings]\r\nsourcePort={free_port()}\r\n"
            f"[Account1]\r\nserver=127.0.0.1:{kam_port}\r\ndomain=127.0.0.1:{kam_port}\r\n"
            "username=alice\r\npassword=secret\r\nregisterRefresh=300\r\n")
    with open(ini, "wb") as f:
        f.write(b"\xff\xfe" + text.encode("utf-16-le"))
    return ini


def start_msipphone(binary, work, kam_port):
    ini = write_profile(work, kam_port)
    env = dict(os.environ, XDG_RUNTIME_DIR=work)
    proc = subprocess.Popen([binary, "--headless", "--config", ini], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        event = json.loads(line)
        if event.get("event") == "registration" and event.get("state") == "registered":
            return proc
    raise SystemExit("phone_idle: msipphone did not register")


def stop(proc):
    """SIGTERM to the process group, SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def start_xvfb(work):
    """Xvfb on a display it picks itself (-displayfd); returns (proc, DISPLAY)."""
    read_end, write_end = os.pipe()
    log = open(os.path.join(work, "xvfb.log"), "w")
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x768x24",
                             "-nolisten", "tcp", "-noreset"],
                            stdout=log, stderr=log, pass_fds=(write_end,), start_new_session=True)
    os.close(write_end)
    with os.fdopen(read_end) as r:
        number = r.readline().strip()
    if not number.isdigit():
        raise SystemExit("phone_idle: Xvfb did not start; see xvfb.log")
    return proc, f":{number}"


def start_session_bus(work):
    """A private D-Bus session bus (the tray icon's); returns (proc, address).
    Its own config: Debian's session.conf would start the accessibility bus
    on demand, which would outlive the run."""
    path = os.path.join(work, "bus")
    conf = os.path.join(work, "bus.conf")
    with open(conf, "w") as f:
        f.write(f"""<busconfig><type>session</type><listen>unix:path={path}</listen>
<auth>EXTERNAL</auth><policy context="default"><allow send_destination="*" eavesdrop="true"/>
<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>
""")
    log = open(os.path.join(work, "dbus.log"), "w")
    proc = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile"],
                            stdout=log, stderr=log, start_new_session=True)
    wait_for(lambda: os.path.exists(path), 10, "dbus-daemon's socket")
    return proc, f"unix:path={path}"


def start_tray(work, display, bus):
    """A tray on the screen's bottom: gtk-sni-tray-standalone, a
    StatusNotifierItem host, with its own watcher; once the host is known."""
    env = dict(os.environ, DISPLAY=display, DBUS_SESSION_BUS_ADDRESS=bus, NO_AT_BRIDGE="1")
    log = open(os.path.join(work, "tray.log"), "w")
    proc = subprocess.Popen(["gtk-sni-tray-standalone", "--watcher", "--bottom", "--size", "32"],
                            stdout=log, stderr=log, env=env, start_new_session=True)

    def host_registered():
        out = subprocess.run(["dbus-send", "--session", "--print-reply",
                              "--dest=org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher",
                              "org.freedesktop.DBus.Properties.Get",
                              "string:org.kde.StatusNotifierWatcher",
                              "string:IsStatusNotifierHostRegistered"],
                             env=env, capture_output=True, text=True)
        return "boolean true" in out.stdout
    wait_for(host_registered, 15, "the tray's host to register with its watcher")
    return proc


def ctl_status(binary, env):
    out = subprocess.run([binary, "ctl", "--json", "Status"], env=env, capture_output=True,
                         text=True, timeout=10)
    if out.returncode != 0:
        return None
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        return None


def registered(status):
    """Whether a `ctl --json Status` reply shows every account registered."""
    accounts = (status or {}).get("accounts") or []
    return bool(accounts) and all(a.get("registration") == "registered" for a in accounts)


def window_of(pid, display):
    """The id of a viewable top-level X window of process pid, or None."""
    env = dict(os.environ, DISPLAY=display)
    tree = subprocess.run(["xwininfo", "-root", "-children"], env=env, capture_output=True,
                          text=True).stdout
    for line in tree.splitlines():
        parts = line.split()
        if not parts or not parts[0].startswith("0x"):
            continue
        wid = parts[0]
        prop = subprocess.run(["xprop", "-id", wid, "_NET_WM_PID"], env=env,
                              capture_output=True, text=True).stdout.strip()
        if prop == f"_NET_WM_PID(CARDINAL) = {pid}":
            info = subprocess.run(["xwininfo", "-id", wid], env=env, capture_output=True,
                                  text=True).stdout
            if "IsViewable" in info:
                return wid
    return None


def start_windowed(binary, work, kam_port, display, bus):
    """`msipphone --config INI` with a window on Xvfb, once registered."""
    folder = os.path.join(work, "windowed")
    ini = write_profile(folder, kam_port)
    runtime = os.path.join(folder, "run")
    os.mkdir(runtime, 0o700)
    env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
    env.update(DISPLAY=display, XDG_RUNTIME_DIR=runtime, DBUS_SESSION_BUS_ADDRESS=bus)
    log = open(os.path.join(work, "windowed.log"), "w")
    proc = subprocess.Popen([binary, "--config", ini], stdout=log, stderr=log, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"phone_idle: the windowed msipphone exited {proc.returncode}; "
                             f"its log: {open(os.path.join(work, 'windowed.log')).read()[-2000:]}")
        if registered(ctl_status(binary, env)) and window_of(proc.pid, display):
            return proc
        time.sleep(0.2)
    raise SystemExit("phone_idle: the windowed msipphone did not show a window and register "
                     "within 20 s")


# Mesa's OpenGL stack as mapped into a process: the GLVND dispatch, the
# EGL/GLX vendor libraries, the DRI driver (swrast_dri.so = llvmpipe under
# Xvfb) and what it pulls in (LLVM, libdrm, libgbm, ...).
GL_LIBS = ("/dri/", "libLLVM", "libGL", "libEGL", "libglapi", "libgbm", "libdrm", "libxcb-glx",
           "libxcb-dri", "libxshmfence", "libwayland-egl", "libz3", "libsensors", "libelf",
           "libedit", "libvulkan", "libxml2", "libicu")


def gl_libs(pid):
    """Resident kB of the GL stack's mapped files, per file, and the driver in use."""
    per_file = {}
    path = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and ":" not in head[0]:
                path = head[5] if len(head) >= 6 else None
            elif head and head[0] == "Rss:" and path and any(p in path for p in GL_LIBS):
                per_file[path] = per_file.get(path, 0) + int(head[1])
    drivers = sorted(os.path.basename(p) for p in per_file if "/dri/" in p)
    llvm = any("libLLVM" in p for p in per_file)
    if drivers == ["swrast_dri.so"]:
        driver = "llvmpipe (swrast_dri.so)" if llvm else "softpipe (swrast_dri.so)"
    else:
        driver = ", ".join(drivers) or "none mapped"
    return per_file, driver


def start_baresip(root, work, kam_port):
    conf_dir = os.path.join(work, "baresip")
    os.makedirs(conf_dir)
    sip_port, ctrl_port, rtp = free_port(), free_port(), free_port()
    template = open(os.path.join(root, "tests", "peers", "baresip", "config")).read()
    audio = os.path.join(conf_dir, "silence.wav")
    with open(audio, "wb") as f:  # 1 s of 8 kHz mono silence
        data = b"\x00\x00" * 8000
        f.write(b"RIFF" + (36 + len(data)).to_bytes(4, "little") + b"WAVEfmt "
                + (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
                + (8000).to_bytes(4, "little") + (16000).to_bytes(4, "little")
                + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
                + b"data" + len(data).to_bytes(4, "little") + data)
    conf = (template.replace("@SIP_PORT@", str(sip_port)).replace("@CTRL_PORT@", str(ctrl_port))
            .replace("@RTP_PORTS@", f"{rtp}-{rtp + 9}").replace("@AUDIO_FILE@", audio))
    open(os.path.join(conf_dir, "config"), "w").write(conf)
    open(os.path.join(conf_dir, "accounts"), "w").write(
        f"<sip:bob@127.0.0.1:{kam_port}>;auth_pass=secret;regint=300;audio_codecs=PCMU\n")
    open(os.path.join(conf_dir, "contacts"), "w").write("")
    log = open(os.path.join(work, "baresip.log"), "w")
    proc = subprocess.Popen(["baresip", "-f", conf_dir, "-v"], stdout=log, stderr=log,
                            start_new_session=True)
    # baresip -v logs the registrar's answer: "... 200 OK (...) [1 binding]".
    wait_for(lambda: "binding" in open(os.path.join(work, "baresip.log")).read(), 10,
             "baresip to register")
    time.sleep(1.0)
    return proc


def busy_reply(invite):
    """A 486 for an INVITE, so each measured call ends at once."""
    head = invite.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
    keep = []
    for line in head[1:]:
        name = line.split(":", 1)[0].strip().lower()
        if name in ("via", "v", "from", "f", "call-id", "i", "cseq"):
            keep.append(line)
        elif name in ("to", "t"):
            keep.append(line + ";tag=bench")
    return ("SIP/2.0 486 Busy Here\r\n" + "\r\n".join(keep)
            + "\r\nContent-Length: 0\r\n\r\n").encode()


def dial_latency(work, socket_path):
    """Dial through the control socket; time until the INVITE arrives here."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(5)
    port = sink.getsockname()[1]
    samples = []
    for _ in range(DIALS):
        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl.connect(socket_path)
        start = time.perf_counter()
        ctl.sendall(f"Dial sip:bench@127.0.0.1:{port}\n".encode())
        while True:
            data, peer = sink.recvfrom(65536)
            if data.startswith(b"INVITE "):
                samples.append((time.perf_counter() - start) * 1000)
                sink.sendto(busy_reply(data), peer)
                break
        ctl.recv(65536)
        ctl.close()
        # Let the ACK and the call's end go by before the next dial.
        time.sleep(0.1)
        try:
            sink.settimeout(0.05)
            while True:
                sink.recvfrom(65536)
        except socket.timeout:
            pass
        finally:
            sink.settimeout(5)
    return samples


def find_socket(work):
    for dirpath, _, files in os.walk(work):
        for name in files:
            path = os.path.join(dirpath, name)
            if name.endswith(".sock") or "msipphone" in name:
                try:
                    if os.path.exists(path) and socket.socket(socket.AF_UNIX).connect_ex(path) == 0:
                        return path
                except OSError:
                    continue
    return None


def main():
    binary, root = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="phone-idle-")
    procs = []
    try:
        kam_port = free_port()
        procs.append(start_kamailio(root, work, kam_port))
        phone = start_msipphone(binary, work, kam_port)
        procs.append(phone)
        ours = measure("msipphone", phone.pid, binary)
        socket_path = find_socket(work)
        if socket_path:
            lat = dial_latency(work, socket_path)
            ours["dial_to_invite_ms_median"] = round(statistics.median(lat), 2)
            ours["dial_to_invite_ms_max"] = round(max(lat), 2)
        else:
            ours["dial_to_invite_ms_median"] = None
        # One msipphone at a time: alice registers from one place, and the
        # headless phone's CPU does not blur the windowed one's.
        stop(phone)
        procs.remove(phone)
        xvfb, display = start_xvfb(work)
        procs.append(xvfb)
        bus_proc, bus = start_session_bus(work)
        procs.append(bus_proc)
        procs.append(start_tray(work, display, bus))
        windowed = start_windowed(binary, work, kam_port, display, bus)
        procs.append(windowed)
        win = measure("msipphone (window, Xvfb)", windowed.pid, binary, settle=WINDOW_SETTLE)
        status = proc_status(windowed.pid)
        win["rss_file_kb"] = int(status["RssFile"].split()[0])
        per_file, driver = gl_libs(windowed.pid)
        win["gl_driver"] = driver
        win["gl_libs_rss_kb"] = sum(per_file.values())
        win["gl_libs"] = {os.path.basename(p): kb for p, kb in
                          sorted(per_file.items(), key=lambda item: -item[1]) if kb}
        stop(windowed)
        procs.remove(windowed)
        bare = start_baresip(root, work, kam_port)
        procs.append(bare)
        theirs = measure("baresip", bare.pid, shutil.which("baresip"))
        print(json.dumps([ours, win, theirs], indent=1))
        ok = ours["rss_kb"] <= 5 * 1024
        print(f"target idle RSS <= 5 MB: msipphone {ours['rss_kb'] / 1024:.2f} MB "
              f"(baresip {theirs['rss_kb'] / 1024:.2f} MB): {'met' if ok else 'MISSED'}")
        print(f"idle RSS with the window (Xvfb, {win['gl_driver']}, {WINDOW_SETTLE:g} s after "
              f"start): {win['rss_kb'] / 1024:.2f} MB, of which {win['gl_libs_rss_kb'] / 1024:.2f} MB "
              f"the GL libraries' mapped files and {win['rss_anon_kb'] / 1024:.2f} MB anonymous "
              f"(headless {ours['rss_kb'] / 1024:.2f} MB, baresip {theirs['rss_kb'] / 1024:.2f} MB)")
        med = ours.get("dial_to_invite_ms_median")
        if med is not None:
            print(f"target Dial -> INVITE < 5 ms: median {med} ms, max {ours['dial_to_invite_ms_max']} ms: "
                  f"{'met' if med < 5 else 'MISSED'}")
        else:
            print("Dial -> INVITE: no control socket found; not measured")
    finally:
        for p in reversed(procs):
            try:
                stop(p)
            except Exception:
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
