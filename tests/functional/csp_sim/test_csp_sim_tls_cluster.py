"""HTTPS with certificate verification, and the three-host ``cluster`` command."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from esc_orch.testing.emulator import EmulatorHost
from esc_orch.vim import PermanentVimError
from esc_orch.vim.csp import CspConnector

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - the openssl CLI is the fallback
    HAVE_CRYPTOGRAPHY = False

pytestmark = pytest.mark.functional


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cryptography, else the openssl CLI)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not HAVE_CRYPTOGRAPHY:
        if shutil.which("openssl") is None:
            pytest.skip("neither cryptography nor openssl available")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        return cert, key
    pkey = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csp-sim test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pkey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(pkey, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        pkey.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


async def test_tls_verification_fails_without_the_ca_and_passes_with_it(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls = ["--tls", "--cert", str(cert), "--key", str(key)]
    with EmulatorHost(name="CSP-T", root=tmp_path, extra_args=tls) as host:
        assert host.url.startswith("https://127.0.0.1:")
        strict = CspConnector(config=host.config(retries="3", timeout="3"))
        trusted = CspConnector(config=host.config(ca_file=str(cert), timeout="3"))
        insecure = CspConnector(config=host.config(insecure="true", timeout="3"))
        try:
            with pytest.raises(PermanentVimError, match="certificate verification failed"):
                await strict.list_vms()
            assert (await trusted.describe()).name == "CSP-T"
            assert await insecure.list_vms() == ()
        finally:
            for c in (strict, trusted, insecure):
                await c.close()


def _free_base_port(count: int) -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count >= 65535:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no free range of ports")


def test_cluster_command_starts_three_hosts_and_stops_them(tmp_path: Path) -> None:
    base = _free_base_port(3)
    cmd = [sys.executable, "-m", "esc_orch.csp_sim", "cluster", "--hosts", "3",
           "--base-port", str(base), "--dir", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        assert [ln.split()[0] for ln in lines[:3]] == ["CSP-1", "CSP-2", "CSP-3"]
        assert [ln.split()[1] for ln in lines[:3]] == [
            f"http://127.0.0.1:{base + i}" for i in range(3)
        ]
        assert "Cluster_Test" in lines[3]
        pw_file = tmp_path / "password"
        assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
        assert pw_file.read_text().strip() in lines[3]
        assert (tmp_path / "gluster").is_dir() and (tmp_path / "CSP-3" / "local").is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        for port in range(base, base + 3):  # every host is gone: the ports are free again
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_host_waits_ready_then_stops_on_sigterm(tmp_path: Path) -> None:
    host = EmulatorHost(name="CSP-Q", root=tmp_path)
    try:
        host.start()
        assert host.proc is not None
        host.terminate()
        assert host.proc.returncode == 0
    finally:
        host.close()
