"""Real redis-server processes for the tests, on free loopback ports: plain, or TLS with a throwaway CA."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(folder: Path, *extra: str, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server on 127.0.0.1 (on `port`, or a free one) once it accepts connections; `extra`: more options
    (TLS ones with `--port 0` and `--tls-port`, whose port this returns)."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise RuntimeError("redis-server is not installed: apt-get install -y redis-server (.ci/run does)")
    port = port or free_port()
    options = ["--port", str(port)] if "--tls-port" not in extra else []
    server = subprocess.Popen([binary, *options, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                               "--dir", str(folder), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if "--tls-port" in extra:
        port = int(extra[extra.index("--tls-port") + 1])
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                return server, port
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"redis-server did not start on port {port}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA that signed the server's certificate
    cert: Path  # the server's, for 127.0.0.1 and localhost
    key: Path
    other_ca: Path  # a CA that signed nothing here: trusting only it must fail


def make_certificates(folder: Path) -> Certificates:
    """A throwaway CA, a server certificate it signs, and an unrelated second CA (EC P-256, valid 2 days)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=prunebench CA")
    openssl("req", "-x509", *key, "-keyout", "other.key", "-out", "other.crt", "-days", "2", "-subj", "/CN=other CA")
    openssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "san.cnf")
    return Certificates(folder / "ca.crt", folder / "server.crt", folder / "server.key", folder / "other.crt")


def start_tls(folder: Path, certificates: Certificates, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server that speaks TLS only (no plain port), not asking clients for certificates."""
    return start(folder, "--port", "0", "--tls-port", str(free_port()), "--tls-cert-file",
                 str(certificates.cert), "--tls-key-file", str(certificates.key), "--tls-ca-cert-file",
                 str(certificates.ca), "--tls-auth-clients", "no", *extra)
