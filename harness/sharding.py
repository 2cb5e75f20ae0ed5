"""Splitting a corpus into N shards for CI jobs on several machines (`--shard K/N`, `--harness-shard K/N`).

A case file's shard is a stable hash of its path relative to the folder it was found under (its corpus
root: `cases` for `harness run cases`, a `harness_case_dirs` folder under pytest): SHA-256 of the POSIX
path, modulo N. So the split depends on nothing but the relative paths: not the order files are found in,
not the machine or the checkout folder, not Python's hash seed. Adding a case moves no other case to
another shard (a sorted-path round robin would shift every later one), which keeps a shard's history
comparable from run to run. Every file, invalid ones included, is in exactly one shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as written: 1/3, 2/3, 3/3
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, key: str) -> bool:
        """Whether the case whose shard key is `key` (see `shard_key`) belongs to this shard."""
        return shard_of(key, self.count) == self.index

    def to_json(self) -> dict:
        return {"index": self.index, "count": self.count}


def parse_shard(text: str) -> Shard:
    """'K/N' with 1 <= K <= N; a ValueError says what is wrong."""
    parts = text.strip().split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"expected K/N (this job's shard K of N, e.g. 2/3), found {text!r}")
    index, count = (int(p) for p in parts)
    if count < 1:
        raise ValueError(f"{text!r}: the number of shards N must be at least 1")
    if not 1 <= index <= count:
        raise ValueError(f"{text!r}: the shard K must be between 1 and N={count} (shards are numbered from 1)")
    return Shard(index, count)


def shard_of(key: str, count: int) -> int:
    """The shard (1..count) of a key: a hash that is the same on every machine and Python process."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select(entries: list, roots: list[Path], shard: "Shard | None") -> list:
    """The entries (anything with a `.path`) of this shard, in their order; all of them without a shard."""
    if shard is None:
        return list(entries)
    return [entry for entry in entries if shard.holds(shard_key(Path(entry.path), roots))]


def shard_key(path: Path, roots: list[Path]) -> str:
    """A case file's path relative to the first root (a folder given on the command line, or a pytest case
    folder) it lies under, in POSIX form; a file outside every root (named directly) is keyed by its name."""
    for root in roots:
        if path != root and path.is_relative_to(root):
            return PurePosixPath(*path.relative_to(root).parts).as_posix()
    return path.name
