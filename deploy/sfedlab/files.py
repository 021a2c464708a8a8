"""Small file helpers of the lab: atomic writes, tolerant reads, world-readable directories."""

from __future__ import annotations

from pathlib import Path


def ensure_readable_dir(d: Path, root: Path) -> None:
    """Create `d`, readable by all, as are its lab-owned parents (those under `root`)."""
    d.mkdir(parents=True, exist_ok=True)
    chain = [d]
    if d.is_relative_to(root):
        chain += [p for p in d.parents if p.is_relative_to(root)]
    for p in chain:
        mode = p.stat().st_mode & 0o7777
        if mode & 0o755 != 0o755:
            p.chmod(mode | 0o755)


def read_text(path: Path) -> str | None:
    """The file's text, or None when it cannot be read."""
    try:
        return path.read_text()
    except OSError:
        return None


def read_int(path: Path, default: int) -> int:
    """The integer the file holds, or `default`."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return default


def write_if_changed(path: Path, text: str, *, mode: int | None = None) -> bool:
    """Replace the file atomically (with `mode`, if given) unless it already holds `text`;
    True if it was written. A reader sees the old text or the new, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    if mode is not None:
        tmp.chmod(mode)
    tmp.replace(path)
    return True
