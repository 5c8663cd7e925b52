"""Debian packages as a data source: fetch with ``apt-get download``, read, unpack.

Nothing is installed: a ``.deb`` is downloaded into a folder, read with
``dpkg-deb -f`` (its control fields) and unpacked with ``dpkg-deb -x`` into
a scratch folder. Used by :mod:`pyharmonies.data.soundtracks`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pyharmonies.errors import HarmoniesError, ParameterError

_NO_APT = (
    "apt-get not found: the .debs are downloaded with `apt-get download` on Debian or Ubuntu. "
    "Elsewhere, fetch the .deb files from https://packages.debian.org/ into a folder and pass --deb-dir FOLDER"
)


@dataclass(frozen=True)
class DebFile:
    """One ``.deb`` on disk and what identifies it."""

    package: str  # the control file's Package field
    version: str  # its Version field
    path: Path
    sha256: str  # of the .deb file, hex

    @property
    def name(self) -> str:
        """The file name, e.g. ``"xmoto-data_0.6.1+repack-9_all.deb"``."""
        return self.path.name


def _dpkg_deb() -> str:
    exe = shutil.which("dpkg-deb")
    if exe is None:
        raise ParameterError("dpkg-deb not found: it unpacks the .debs (part of dpkg: apt-get install dpkg)")
    return exe


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_deb(path: str | os.PathLike[str]) -> DebFile:
    """The package name, version and checksum of a ``.deb``.

    Raises
    ------
    HarmoniesError
        ``dpkg-deb`` cannot read it (the message names the file).
    """
    path = Path(path)
    proc = subprocess.run(
        [_dpkg_deb(), "-f", str(path), "Package", "Version"], capture_output=True, text=True, check=False
    )
    fields = dict(re.findall(r"(?m)^(Package|Version): *(\S+)", proc.stdout))
    if proc.returncode != 0 or "Package" not in fields or "Version" not in fields:
        reason = " ".join(proc.stderr.split()) or "no Package/Version fields"
        raise HarmoniesError(f"{path}: not a readable .deb ({reason})")
    return DebFile(package=fields["Package"], version=fields["Version"], path=path, sha256=sha256_file(path))


def find_deb(folder: str | os.PathLike[str], package: str) -> DebFile | None:
    """The one ``.deb`` of ``package`` in ``folder``, or None if there is none.

    Files are matched by name (``<package>_*.deb``) and checked by their
    Package field.

    Raises
    ------
    ParameterError
        Several versions lie there (which one to use would be a guess).
    HarmoniesError
        A matching file is not a readable ``.deb``.
    """
    matches = [read_deb(p) for p in sorted(Path(folder).glob(f"{package}_*.deb"))]
    matches = [d for d in matches if d.package == package]
    if len(matches) > 1:
        names = ", ".join(d.name for d in matches)
        raise ParameterError(f"{folder}: several .debs of {package} ({names}); keep one")
    return matches[0] if matches else None


def download_deb(package: str, folder: str | os.PathLike[str]) -> DebFile:
    """``apt-get download package`` into ``folder`` (made if needed).

    Raises
    ------
    ParameterError
        apt-get is missing, or the download failed; the message says what to do.
    """
    apt = shutil.which("apt-get")
    if apt is None:
        raise ParameterError(_NO_APT)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([apt, "download", package], cwd=folder, capture_output=True, text=True, check=False)
    found = find_deb(folder, package) if proc.returncode == 0 else None
    if found is None:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("E:")] or proc.stderr.splitlines()
        detail = " ".join(" ".join(errors).split()) or f"exit status {proc.returncode}"
        hint = ""
        if re.search(r"Unable to locate|no installation candidate|Can't select candidate", detail):
            hint = "; the package lists may be missing or stale: run `apt-get update` (as root) and try again"
        elif re.search(r"Could not resolve|Failed to fetch|Temporary failure|Connection", detail):
            hint = "; no connection to the Debian mirror? Or download the .deb elsewhere and pass --deb-dir"
        raise ParameterError(f"apt-get download {package} failed: {detail}{hint}")
    return found


def unpack_deb(deb: DebFile, dest: str | os.PathLike[str]) -> Path:
    """Unpack the files of ``deb`` into ``dest`` with ``dpkg-deb -x`` (no install scripts run).

    Raises
    ------
    HarmoniesError
        ``dpkg-deb`` failed (the message names the file).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([_dpkg_deb(), "-x", str(deb.path), str(dest)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HarmoniesError(f"{deb.path}: dpkg-deb -x failed ({' '.join(proc.stderr.split())})")
    return dest


def licences(copyright_text: str, *, first_lines: int = 8) -> list[str]:
    """The licences a Debian ``copyright`` file names.

    Machine-readable files (DEP-5) give their ``License:`` fields' first
    lines, each once, in order of appearance; other files give their first
    ``first_lines`` non-empty lines.

    Returns
    -------
    list of str
    """
    found: list[str] = []
    for value in re.findall(r"(?mi)^License: *(.+?) *$", copyright_text):
        if value not in found:
            found.append(value)
    if found:
        return found
    return [line.strip() for line in copyright_text.splitlines() if line.strip()][:first_lines]
