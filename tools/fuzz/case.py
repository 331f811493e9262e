"""One fuzz input: a small file tree, the path handed to the API, and how it was made.

A case is stored as a zip (``case.json`` plus the files under ``files/``) so that a regression
keeps every file it needs (an index and its data shard, a state file and the checkpoint it
names) in one file. ``{root}`` inside any file stands for the directory the case is written
to, so state files can hold absolute paths that still resolve inside the case.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT_TOKEN = b"{root}"
_ZIP_DATE = (2024, 1, 1, 0, 0, 0)


@dataclass
class Case:
    """Files (relative POSIX paths), symlinks, the entry path and the mutations applied."""

    family: str
    seed: str
    files: dict[str, bytes]
    #: path given to the API, relative to the case directory ("." is the directory itself)
    entry: str
    #: relative link path -> link target (as written, relative or ``{root}/...``)
    links: dict[str, str] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)

    def write(self, root: Path) -> Path:
        """Write the case under ``root`` (emptied first); return the entry path."""
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        token = os.fsencode(root)
        for name, data in self.files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():  # a mutation made both "x" and "x/y": the directory wins
                continue
            target.write_bytes(data.replace(ROOT_TOKEN, token))
        for name, link in self.links.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists() and not target.is_symlink():
                target.symlink_to(link.replace("{root}", os.fsdecode(root)))
        return root / self.entry

    def to_zip(self, found: dict[str, str]) -> bytes:
        """The regression file: ``case.json`` (with what the case ``found``) and ``files/``."""
        meta = {"family": self.family, "seed": self.seed, "entry": self.entry, "links": self.links,
                "steps": self.steps, "found": found}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(zipfile.ZipInfo("case.json", _ZIP_DATE), json.dumps(meta, indent=1, sort_keys=True))
            for name in sorted(self.files):
                archive.writestr(zipfile.ZipInfo(f"files/{name}", _ZIP_DATE), self.files[name],
                                 compress_type=zipfile.ZIP_DEFLATED)
        return buffer.getvalue()

    @classmethod
    def from_zip(cls, path: str | os.PathLike[str]) -> tuple[Case, dict[str, str]]:
        """A stored case and what it found when it was saved."""
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read("case.json"))
            files = {info.filename[len("files/") :]: archive.read(info)
                     for info in archive.infolist() if info.filename.startswith("files/") and not info.is_dir()}
        case = cls(meta["family"], meta["seed"], files, meta["entry"], dict(meta["links"]), list(meta["steps"]))
        return case, dict(meta["found"])
