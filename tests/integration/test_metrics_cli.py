"""`read --metrics`: the exporter serves the run's counters (wiring test)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_read_serves_metrics_while_it_runs(tmp_path):
    from pakemon.lab.samples import mixed_frames
    from pakemon.lab.traffic import write_pcap

    cap = tmp_path / "m.pcap"
    write_pcap(cap, mixed_frames(20000, seed=4))
    port = free_port()
    # a fifo as a second capture keeps read running until the test is done
    fifo = tmp_path / "hold.pcap"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "pakemon.cli", "read", "-q", str(cap), str(fifo),
                             "--log-dir", str(tmp_path / "logs"), f"--metrics=127.0.0.1:{port}"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        text = ""
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                ip = [ln for ln in text.splitlines()
                      if ln.startswith('pakemon_frames_total{proto="ip"}')]
                if ip and float(ip[0].split()[-1]) >= 20000:
                    break  # the first capture is done; read now waits on the fifo
            except OSError:
                pass
            time.sleep(0.2)
        assert 'pakemon_frames_total{proto="tcp"}' in text
        frames = [ln for ln in text.splitlines() if ln.startswith('pakemon_frames_total{proto="ip"}')]
        # the whole first capture was read before read blocks on the fifo
        assert frames and float(frames[0].split()[-1]) >= 20000
    finally:
        with open(fifo, "wb"):  # an empty 'capture': read ends (with a capture error)
            pass
        out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
