"""Installing a plugin for a test, as pip would: metadata in a folder on the path."""

from __future__ import annotations

from pathlib import Path


def install_plugin(site: Path, name: str, entry_points: dict[str, str]) -> None:
    """Write the metadata pip would write for a distribution with these entry
    points into ``site``, a folder on the path."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
    )
    lines = [f"{key} = {value}" for key, value in entry_points.items()]
    (info / "entry_points.txt").write_text(
        "[chatproviders.providers]\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )
