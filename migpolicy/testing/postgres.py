"""A throwaway PostgreSQL server for tests of shared study storage (``tune --storage``).

:func:`start_server` creates a cluster in a new temporary folder with the ``initdb`` and
``pg_ctl`` of the local PostgreSQL installation (on ``PATH`` or under
``/usr/lib/postgresql/VERSION/bin``, as Debian's ``postgresql`` package lays
them), listening on 127.0.0.1 on a free port, with password authentication
(so a wrong password is refused, as on a real server), and returns its URL.
PostgreSQL refuses to run as root: as root the cluster belongs to the
``postgres`` system user and its commands run through ``runuser``.

CI starts one for the whole test run and exports its URL (the module needs only the
standard library, so any ``python3`` runs it, before migpolicy is installed)::

    read -r url folder <<<"$(python3 migpolicy/testing/postgres.py start)"  # URL, folder
    python3 migpolicy/testing/postgres.py stop "$folder"
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresServer", "find_bin_dir", "start_server", "stop_server"]

#: The environment variable that hands tests the URL of a running server.
URL_VARIABLE = "MIGPOLICY_TEST_POSTGRES"
#: The database user the cluster is created with.
USER = "migpolicy"


@dataclass(frozen=True)
class PostgresServer:
    """A running cluster: its URL (with the password) and its data folder."""

    url: str
    folder: Path


def find_bin_dir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, the newest installed version; ``None`` if none."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return versions[-1].parent if versions else None


def _as_owner(command: list[str]) -> list[str]:
    """``command`` run as the cluster's owner: ``postgres`` through runuser when we are root."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(*, durable: bool = False) -> PostgresServer:
    """Create a cluster in a new temporary folder and start it; return its URL and folder.

    ``durable=False`` turns fsync off, which is right for tests (nothing
    outlives the run) and wrong for a benchmark of real workers. Raises
    :class:`RuntimeError` naming what is missing or what failed.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL found (initdb, pg_ctl); install the Debian package "
                           "postgresql")
    folder = Path(tempfile.mkdtemp(prefix="migpolicy-pg-"))  # in /tmp: the owner can reach it
    data, password = folder / "data", secrets.token_hex(12)
    (folder / "pwfile").write_text(password + "\n", encoding="utf-8")
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (folder, folder / "pwfile"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    try:
        subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", USER,
                                  "--auth=scram-sha-256", f"--pwfile={folder / 'pwfile'}",
                                  "-E", "UTF8", "--no-sync"]), **run)
        port = _free_port()
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options += " -c max_connections=200"  # every worker holds a few
        subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-l",
                                  str(folder / "server.log"), "-o", options, "-w", "start"]),
                       **run)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"PostgreSQL in {folder} did not start: "
                           f"{(exc.stderr or exc.stdout).strip()}") from None
    finally:
        (folder / "pwfile").unlink(missing_ok=True)
    return PostgresServer(f"postgresql://{USER}:{password}@127.0.0.1:{port}/postgres", folder)


def stop_server(folder: Path) -> None:
    """Stop the cluster in ``folder`` at once and remove the folder (its data is throwaway)."""
    bin_dir = find_bin_dir()
    if bin_dir is not None and (Path(folder) / "data" / "postmaster.pid").exists():
        subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(Path(folder) / "data"),
                                  "-m", "immediate", "-w", "stop"]), capture_output=True,
                       timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    """``start`` prints the URL and folder of a new server; ``stop DIR`` stops it."""
    if argv[:1] == ["stop"] and len(argv) == 2:
        stop_server(Path(argv[1]))
        return 0
    if argv != ["start"]:
        print("usage: python -m migpolicy.testing.postgres start | stop DIR", file=sys.stderr)
        return 2
    try:
        server = start_server()
        print(server.url, server.folder)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
