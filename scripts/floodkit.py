"""What the flood scripts (memory-flood.py, stall-flood.py) share: where the release binary is, a
free port of 127.0.0.1, and a field of the server's /proc status."""

import json
import os
import socket
import subprocess


def default_binary():
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], check=True,
                          capture_output=True, text=True).stdout
    return os.path.join(json.loads(meta)["target_directory"], "release", "prefeval")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm(pid, field):
    """A memory field of /proc/PID/status (VmHWM, VmRSS), in bytes; 0 when absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0
