"""A minimal SMTP server on loopback for tests: it keeps every message it is given."""

from __future__ import annotations

import socket
import threading
from typing import Any

from hca_archive.localnet import LOOPBACK


class SmtpSink:
    """Speaks just enough SMTP for smtplib: EHLO, MAIL, RCPT, DATA, QUIT."""

    def __init__(self) -> None:
        self.server = socket.create_server((LOOPBACK, 0))
        self.port = self.server.getsockname()[1]
        self.messages: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection, connection.makefile("rb") as lines:
                self._session(connection, lines)

    def _session(self, connection: socket.socket, lines: Any) -> None:
        connection.sendall(b"220 sink\r\n")
        for raw in lines:
            command = raw.decode().strip().upper()
            if command.startswith("EHLO"):
                connection.sendall(b"250-sink\r\n250 8BITMIME\r\n")
            elif command == "DATA":
                connection.sendall(b"354 go on\r\n")
                body = []
                for line in lines:
                    if line == b".\r\n":
                        break
                    body.append(line.decode())
                self.messages.append("".join(body))
                connection.sendall(b"250 kept\r\n")
            elif command == "QUIT":
                connection.sendall(b"221 bye\r\n")
                return
            else:
                connection.sendall(b"250 ok\r\n")

    def close(self) -> None:
        self.server.close()

    def connection(self, recipients: list[str]) -> dict[str, Any]:
        """An Airflow SMTP connection to this sink (plain SMTP, no TLS, no retries)."""
        return {
            "conn_type": "smtp",
            "host": LOOPBACK,
            "port": self.port,
            "extra": {
                "to": recipients,
                "from_email": "airflow@example.org",
                "disable_ssl": True,
                "disable_tls": True,
                "retry_limit": 0,
            },
        }
