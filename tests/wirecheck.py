"""Independent checks of UCP and CIMD2 frames by tools we did not write.

* UCP/EMI: Kannel's ``decode_emimsg`` (Debian ``kannel``) prints ``Invalid EMI packet`` on
  stderr for a bad LEN or checksum (its exit code is always 0).
* CIMD2: tshark's CIMD dissector (Debian ``tshark``) adds ``invalid checksum`` to the Info
  column. The packets are wrapped in a pcap by ``text2pcap`` (part of tshark's package
  ``wireshark-common``), one TCP segment each.

Tests call :func:`require` first: it skips, naming the missing tool and the package, when the
tool is absent, so a machine without them says so instead of passing silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

_PACKAGES = {"decode_emimsg": "kannel", "tshark": "tshark", "text2pcap": "tshark (wireshark-common)"}


def require(*tools: str) -> None:
    """Skip the calling test when one of ``tools`` is not installed."""
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian package {_PACKAGES.get(tool, tool)}); "
                        "the independent frame check cannot run")


def emi_problems(frames: list[bytes]) -> list[str]:
    """Run ``decode_emimsg`` on each UCP frame (STX/ETX removed); return one line per frame it
    rejects, or whose decode does not name the frame's TRN and OT."""
    problems = []
    for frame in frames:
        inner = frame.strip(b"\x02\x03").decode("latin-1")
        proc = subprocess.run(["decode_emimsg", inner], capture_output=True, encoding="latin-1", timeout=20)
        if "Invalid EMI packet" in proc.stderr or "OPERATION" not in proc.stdout:
            problems.append(f"decode_emimsg rejects {inner[:60]!r}: {proc.stderr.strip()[-200:]}")
    return problems


def cimd_problems(packets: list[bytes], port: int = 9971) -> list[str]:
    """Dissect each CIMD2 packet with tshark; return one line per packet that is not decoded
    as CIMD or is flagged ``invalid checksum``."""
    if not packets:
        return []
    with tempfile.TemporaryDirectory(prefix="cimdcheck-") as tmp:
        dump = os.path.join(tmp, "packets.txt")
        pcap = os.path.join(tmp, "packets.pcap")
        with open(dump, "w") as f:
            for packet in packets:
                for i in range(0, len(packet), 16):
                    f.write(f"{i:06x} {' '.join(f'{b:02x}' for b in packet[i:i + 16])}\n")
                f.write("\n")
        subprocess.run(["text2pcap", "-q", "-T", f"40000,{port}", dump, pcap],
                       check=True, capture_output=True, timeout=30)
        proc = subprocess.run(["tshark", "-r", pcap, "-d", f"tcp.port=={port},cimd"],
                              capture_output=True, text=True, timeout=60)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    problems = []
    if len(lines) != len(packets):
        problems.append(f"tshark shows {len(lines)} frames for {len(packets)} packets: {proc.stdout[-400:]}")
    for packet, line in zip(packets, lines, strict=False):
        if " CIMD " not in line or "invalid checksum" in line:
            problems.append(f"tshark: {line.strip()} for {packet[:60]!r}")
    return problems
