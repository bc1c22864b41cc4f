#!/usr/bin/env python3
"""CPU cost of a call, msipphone and baresip side by side in one run
(scripts/bench/call-cpu runs this).

For each codec (G.711 PCMU, and Opus), a headless msipphone (release
build; microphone `tone:1000`, speaker `null`) calls a headless baresip
(auto-answer; microphone a 400 Hz WAV through aufile, speaker ALSA's null
device) directly on 127.0.0.1, dialled through msipphone's control socket.
Once the call is connected, both processes' CPU time (utime + stime from
/proc/PID/stat) is sampled, the call runs CALL seconds, and the CPU used
in between is reported with each process's peak resident memory
(VmHWM). Target (issue #8): msipphone uses no more CPU per call than
baresip.

usage: call_cpu.py MSIPPHONE_BIN REPO_ROOT
"""
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CALL = float(os.environ.get("CALL", "60"))
# baresip plays into aubridge, paced at ptime (the tests' template; ALSA's
# null device has no clock and would make its player spin a core), so both
# whole processes are compared.
PLAYER_LINE = "audio_player\t\taubridge,sink"
PLAYER = os.environ.get("PLAYER", PLAYER_LINE)
CODECS = [  # (label, MicroSIP id, baresip name, baresip module)
    ("G.711 PCMU", "PCMU/8000/1", "PCMU", None),
    ("Opus", "opus/48000/2", "opus", "opus.so"),
]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / ticks


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def tone_wav(path, hz, seconds):
    import math
    n = int(8000 * seconds)
    data = bytearray()
    for i in range(n):
        v = int(round(8000 * math.sin(2 * math.pi * hz * i / 8000)))
        data += v.to_bytes(2, "little", signed=True)
    with open(path, "wb") as f:
        f.write(b"RIFF" + (36 + len(data)).to_bytes(4, "little") + b"WAVEfmt "
                + (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
                + (8000).to_bytes(4, "little") + (16000).to_bytes(4, "little")
                + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
                + b"data" + len(data).to_bytes(4, "little") + bytes(data))


def start_baresip(root, work, codec, module):
    conf_dir = os.path.join(work, "baresip")
    os.makedirs(conf_dir)
    sip_port, ctrl_port, rtp = free_port(), free_port(), free_port()
    template = open(os.path.join(root, "tests", "peers", "baresip", "config")).read()
    audio = os.path.join(conf_dir, "tone.wav")
    tone_wav(audio, 400, CALL + 30)
    conf = (template.replace("@SIP_PORT@", str(sip_port)).replace("@CTRL_PORT@", str(ctrl_port))
            .replace("@RTP_PORTS@", f"{rtp}-{rtp + 9}").replace("@AUDIO_FILE@", audio))
    if module:
        conf += f"module\t\t\t{module}\n"
    conf = conf.replace(PLAYER_LINE, PLAYER)
    open(os.path.join(conf_dir, "config"), "w").write(conf)
    open(os.path.join(conf_dir, "accounts"), "w").write(
        f"<sip:bob@127.0.0.1:{sip_port}>;regint=0;answermode=auto;audio_codecs={codec}\n")
    open(os.path.join(conf_dir, "contacts"), "w").write("")
    log = open(os.path.join(work, "baresip.log"), "w")
    proc = subprocess.Popen(["baresip", "-f", conf_dir, "-v"], stdout=log, stderr=log,
                            start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", ctrl_port)) == 0:
                return proc, sip_port
        time.sleep(0.05)
    raise SystemExit("call_cpu: baresip did not start; see baresip.log")


def start_msipphone(binary, work, codec):
    ini = os.path.join(work, "microsip.ini")
    text = (f"[Settings]\r\nsourcePort={free_port()}\r\naudioCodecs={codec}\r\n"
            "audioInputDevice=tone:1000\r\naudioOutputDevice=null\r\n"
            "[Account1]\r\ndomain=127.0.0.1\r\nusername=alice\r\n")
    with open(ini, "wb") as f:
        f.write(b"\xff\xfe" + text.encode("utf-16-le"))
    env = dict(os.environ, XDG_RUNTIME_DIR=work)
    proc = subprocess.Popen([binary, "--headless", "--config", ini], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, text=True,
                            start_new_session=True)
    events = queue.Queue()

    def pump():
        for line in proc.stdout:
            try:
                events.put(json.loads(line))
            except ValueError:
                pass

    threading.Thread(target=pump, daemon=True).start()
    return proc, events


def find_socket(work):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for dirpath, _, files in os.walk(work):
            for name in files:
                path = os.path.join(dirpath, name)
                if name.endswith(".sock") or "msipphone" in name:
                    try:
                        if socket.socket(socket.AF_UNIX).connect_ex(path) == 0:
                            return path
                    except OSError:
                        continue
        time.sleep(0.05)
    raise SystemExit("call_cpu: msipphone's control socket not found")


def control(path, line):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as ctl:
        ctl.connect(path)
        ctl.sendall((line + "\n").encode())
        return ctl.recv(65536).decode("utf-8", "replace").strip()


def wait_connected(events):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=0.2)
        except queue.Empty:
            continue
        if event.get("event") == "call_state" and str(event.get("state")).lower() == "connected":
            return
        if event.get("event") == "call_ended":
            raise SystemExit(f"call_cpu: the call ended: {event}")
    raise SystemExit("call_cpu: the call did not connect")


def one_call(binary, root, label, ours_codec, their_codec, module):
    work = tempfile.mkdtemp(prefix="call-cpu-")
    procs = []
    try:
        bare, sip_port = start_baresip(root, work, their_codec, module)
        procs.append(bare)
        phone, events = start_msipphone(binary, work, ours_codec)
        procs.append(phone)
        sock = find_socket(work)
        reply = control(sock, f"Dial sip:bob@127.0.0.1:{sip_port}")
        wait_connected(events)
        time.sleep(1.0)  # past set-up: measure the steady call
        start = (cpu_seconds(phone.pid), cpu_seconds(bare.pid))
        time.sleep(CALL)
        end = (cpu_seconds(phone.pid), cpu_seconds(bare.pid))
        result = {
            "codec": label,
            "call_s": CALL,
            "msipphone_cpu_ms": round((end[0] - start[0]) * 1000),
            "baresip_cpu_ms": round((end[1] - start[1]) * 1000),
            "msipphone_peak_rss_kb": peak_rss_kb(phone.pid),
            "baresip_peak_rss_kb": peak_rss_kb(bare.pid),
            "dial_reply": reply,
        }
        control(sock, "Hangup")
        time.sleep(0.3)
        return result
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=5)
            except Exception:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except Exception:
                    pass
        shutil.rmtree(work, ignore_errors=True)


def main():
    binary, root = sys.argv[1], sys.argv[2]
    have = set(os.listdir("/usr/lib/baresip/modules")) if os.path.isdir(
        "/usr/lib/baresip/modules") else set()
    results = []
    for label, ours, theirs, module in CODECS:
        if module and module not in have:
            print(f"{label}: baresip has no {module}; skipped")
            continue
        results.append(one_call(binary, root, label, ours, theirs, module))
    print(json.dumps(results, indent=1))
    print(f"CPU over a {CALL:.0f} s call (utime+stime, whole processes)")
    print(f"{'codec':<12} {'msipphone':>10} {'baresip':>10} "
          f"{'msipphone peak RSS':>19} {'baresip peak RSS':>17}")
    met = True
    for r in results:
        print(f"{r['codec']:<12} {r['msipphone_cpu_ms']:>7} ms {r['baresip_cpu_ms']:>7} ms "
              f"{r['msipphone_peak_rss_kb'] / 1024:>16.1f} MB {r['baresip_peak_rss_kb'] / 1024:>14.1f} MB")
        met &= r["msipphone_cpu_ms"] <= r["baresip_cpu_ms"]
    print(f"target: msipphone CPU per call <= baresip's: {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
