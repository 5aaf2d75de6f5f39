"""Tar shards as a source of ``compute_stats`` and the ``stats`` command
(norm_transforms/stats/shards.py): the WebDataset layout (images beside their labels in
``*.tar`` files) gives the numbers of the same images as files, for any number of workers and
any split of the shards into parts; unreadable members, damaged and truncated shards are named
(once) or skipped as unreadable files are.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_stats import assert_matches_reference
from test_stats_sources import read_rgb, smooth_rgb, write_image

from norm_transforms import ChannelStats, compute_stats
from norm_transforms.cli import main
from norm_transforms.stats import shards

# Photographs shipped with matplotlib, copied byte for byte into the datasets below.
REAL_PHOTOS = {"rgb": ["grace_hopper.jpg"], "rgba": ["logo2.png", "Minduka_Present_Blue_Pack.png"]}
# The files generated beside them: (name, dtype, channels).
GENERATED = {
    "rgb": [("a.png", np.uint8, 3), ("b.webp", np.uint8, 3), ("c.bmp", np.uint8, 3), ("d.tif", np.uint8, 3)],
    "rgba": [("a.png", np.uint8, 4)],
    "uint16": [("a.png", np.uint16, 3), ("b.tif", np.uint16, 3), ("c.png", np.uint16, 3)],
    "gray": [("a.png", np.uint8, 1), ("b.jpg", np.uint8, 1), ("c.tif", np.uint8, 1)],
    "float32": [("a.tif", np.float32, 3), ("b.tif", np.float32, 3)],
}


def write_dataset(kind: str, folder: Path, rng) -> list[Path]:
    """Image files of one kind in ``folder``, in sorted order: the real photographs of that
    kind (where matplotlib ships them) and generated ones of different sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in REAL_PHOTOS.get(kind, []):
        matplotlib = pytest.importorskip("matplotlib")
        source = Path(matplotlib.get_data_path()) / "sample_data" / name
        if source.exists():
            shutil.copyfile(source, folder / f"photo_{name}")
    for index, (name, dtype, channels) in enumerate(GENERATED[kind]):
        size = (20 + 3 * index, 28 + index)
        if np.dtype(dtype).kind == "f":
            image = rng.random((*size, channels)).astype(dtype)
        else:
            image = smooth_rgb(rng, dtype, size=size, channels=channels)
        write_image(folder / name, image[..., 0] if channels == 1 else image)
    return sorted(folder.iterdir())


def pack(shard: Path, files: list[Path]) -> Path:
    """A WebDataset shard: each image as ``key.ext`` with a ``key.cls`` label after it."""
    shard.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(shard, "w") as tar:
        for index, path in enumerate(files):
            key = f"{index:06d}"
            tar.add(path, arcname=f"{key}{path.suffix}")
            label = tarfile.TarInfo(f"{key}.cls")
            label.size = 1
            tar.addfile(label, io.BytesIO(b"7"))
    return shard


def dataset_and_shards(kind: str, tmp_path: Path, rng) -> tuple[list[Path], list[Path]]:
    """The files of one kind, and the same files packed in two shards (the second may hold
    one file)."""
    files = write_dataset(kind, tmp_path / "files", rng)
    half = (len(files) + 1) // 2
    return files, [
        pack(tmp_path / "shards" / "shard-000000.tar", files[:half]),
        pack(tmp_path / "shards" / "shard-000001.tar", files[half:]),
    ]


@pytest.fixture
def small_parts(monkeypatch):
    """Shards read in parts of 2 KiB: a few members each, some parts holding none."""
    monkeypatch.setattr(shards, "PART_BYTES", 2048)


# --------------------------------------------------------------------------- the same numbers


@pytest.mark.parametrize("kind", ["rgb", "rgba", "uint16", "gray"])
def test_shards_give_the_bits_of_their_images_as_files(rng, tmp_path, kind):
    files, tars = dataset_and_shards(kind, tmp_path, rng)
    from_files = compute_stats(tmp_path / "files", progress=False)
    from_shards = compute_stats(tmp_path / "shards", progress=False)
    assert from_shards.images == len(files)
    assert from_shards == from_files  # histograms: the same bits, 16-bit values kept
    assert compute_stats([str(path) for path in tars], progress=False) == from_files
    assert_matches_reference(from_shards, [read_rgb(path) for path in files])  # RGB(A) order


def test_float_images_in_shards_match_the_float64_reference(rng, tmp_path):
    files, tars = dataset_and_shards("float32", tmp_path, rng)
    stats = compute_stats(tars, progress=False)
    assert stats.kind == "float"
    assert_matches_reference(stats, [read_rgb(path) for path in files])


@pytest.mark.parametrize("kind", ["rgb", "float32"])
def test_worker_count_does_not_change_a_bit_even_for_floats(rng, tmp_path, small_parts, kind):
    _, tars = dataset_and_shards(kind, tmp_path, rng)
    assert len(shards.shard_parts(str(tars[0]))) > 2
    in_process = compute_stats(tars, progress=False)
    # Parts depend on the shards alone, so results merge in the same order for any workers.
    assert compute_stats(tars, num_workers=2, progress=False) == in_process
    assert compute_stats(tars, num_workers=3, progress=False) == in_process


def test_any_split_into_parts_counts_every_member_once(rng, tmp_path, monkeypatch):
    files, tars = dataset_and_shards("uint16", tmp_path, rng)
    expected = compute_stats(tmp_path / "files", progress=False)
    for part_bytes in (512, 1000, 4096, 1 << 30):
        monkeypatch.setattr(shards, "PART_BYTES", part_bytes)
        stats = compute_stats(tars, progress=False)
        assert stats.images == len(files) and stats == expected, part_bytes


def test_a_folder_of_images_and_shards_counts_both(rng, tmp_path):
    files, _ = dataset_and_shards("rgb", tmp_path, rng)
    stats = compute_stats(tmp_path, progress=False)  # files/ and shards/: every image twice
    assert stats.images == 2 * len(files)
    assert_matches_reference(stats, 2 * [read_rgb(path) for path in files])


def test_members_that_are_not_images_are_passed_over(rng, tmp_path):
    _, tars = dataset_and_shards("rgb", tmp_path, rng)
    with tarfile.open(tars[0]) as tar:
        names = tar.getnames()
    assert any(name.endswith(".cls") for name in names)
    assert compute_stats(tars[0], progress=False).images == sum(
        os.path.splitext(name)[1] != ".cls" for name in names
    )


def test_progress_bar_counts_the_bytes_of_the_shards(rng, tmp_path, capsys):
    _, tars = dataset_and_shards("gray", tmp_path, rng)
    from tqdm import tqdm

    compute_stats(tars, progress=True)
    total = tqdm.format_sizeof(sum(path.stat().st_size for path in tars), divisor=1024)
    assert f"{total}/{total}" in capsys.readouterr().err


# --------------------------------------------------------------------------- what cannot be read


def add_member(shard: Path, name: str, data: bytes) -> None:
    with tarfile.open(shard, "a") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def test_an_unreadable_member_is_named_with_its_shard(rng, tmp_path, small_parts):
    _, tars = dataset_and_shards("rgb", tmp_path, rng)
    add_member(tars[1], "broken.jpg", b"\xff\xd8 not a jpeg")
    add_member(tars[1], "empty.png", b"")
    with pytest.raises(
        OSError, match=r"cannot read .*shard-000001\.tar:broken\.jpg \(OpenCV cannot read it\)"
    ):
        compute_stats(tars, progress=False)
    with pytest.warns(UserWarning, match=r"skipped 2 files: .*:broken\.jpg .*; .*:empty\.png \(OpenCV"):
        stats = compute_stats(tars, num_workers=2, skip_unreadable=True, progress=False)
    assert stats == compute_stats(tmp_path / "files", progress=False)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("not_a_tar", r"cannot read it as a tar file \("),
        ("empty", r"cannot read it as a tar file \(empty file\)"),
        ("truncated", r"damaged or truncated in member 000003\.\w+ \(unexpected end of data\)"),
        ("bad_header", r"no valid tar header at byte \d+: the members after it are not read"),
    ],
)
def test_a_damaged_shard_is_named_once_and_skipped_on_request(rng, tmp_path, small_parts, damage, reason):
    files, _ = dataset_and_shards("gray", tmp_path, rng)
    broken = tmp_path / "shards" / "shard-000002.tar"
    good = pack(tmp_path / "spare.tar", 2 * files).read_bytes()
    with tarfile.open(tmp_path / "spare.tar") as tar:
        third = tar.getmembers()[4]  # 000002's image, 000002.cls, then 000003's image
        fourth = tar.getmembers()[4 + 2]
    damaged = {
        "not_a_tar": b"no tar at all" * 100,
        "empty": b"",
        # Cut inside the data of 000003's image: the members before it are counted.
        "truncated": good[: fourth.offset_data + fourth.size // 2],
        # 000002's image header overwritten: tarfile would stop there without a word.
        "bad_header": good[: third.offset] + b"\x01" * 512 + good[third.offset + 512 :],
    }[damage]
    broken.write_bytes(damaged)
    with pytest.raises(OSError, match=rf"cannot read 1 file: .*shard-000002\.tar \({reason}"):
        compute_stats(tmp_path / "shards", progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = compute_stats(tmp_path / "shards", num_workers=2, skip_unreadable=True, progress=False)
    assert [str(warning.message).count("shard-000002.tar") for warning in caught] == [1]
    counted = {"truncated": 3, "bad_header": 2}.get(damage, 0)  # 000000..000002, 000000..000001
    assert stats.images == len(files) + counted
    assert_matches_reference(stats, [read_rgb(path) for path in files + files[:counted]])


# --------------------------------------------------------------------------- the command


def test_stats_command_reads_shards(rng, tmp_path, capsys):
    files, tars = dataset_and_shards("rgb", tmp_path, rng)
    out = tmp_path / "stats.json"
    assert main(["stats", *map(str, tars), "--json", str(out), "--no-progress", "--workers", "2"]) == 0
    stats = ChannelStats.load(out)
    assert stats == compute_stats(tmp_path / "files", progress=False)
    assert f"{len(files)} images (uint8, 3 channels)" in capsys.readouterr().out


def test_shards_are_read_without_unpacking_them(rng, tmp_path, monkeypatch):
    _, tars = dataset_and_shards("rgb", tmp_path, rng)

    def refuse(*args, **kwargs):
        raise AssertionError("extracted to disk")

    for name in ("extract", "extractall", "_extract_member"):
        monkeypatch.setattr(tarfile.TarFile, name, refuse)
    before = sorted(tmp_path.rglob("*"))
    assert compute_stats(tars, progress=False).images > 0  # in this process: the patch holds
    assert sorted(tmp_path.rglob("*")) == before


# --------------------------------------------------------------------------- finding a part's start


def write_archive(path: Path, source: Path, tar_format: int, pax_headers: dict | None = None) -> Path:
    """Members of every kind the hop over headers meets: files with float mtimes (pax records),
    names over 100 bytes (pax or GNU long-name headers) and not ASCII, a folder, links (one with a
    long target), an empty file."""
    long_name = "sample_" + "x" * 120 + ".png"
    with tarfile.open(path, "w", format=tar_format, pax_headers=pax_headers or {}) as tar:
        tar.add(source, arcname="000000.png")
        tar.add(source, arcname=long_name)
        tar.add(source, arcname="échantillon.png")
        folder = tarfile.TarInfo("folder/")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, target in (("link.png", "000000.png"), ("long_link.png", long_name)):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, target
            tar.addfile(link)
        tar.addfile(tarfile.TarInfo("empty.cls"), io.BytesIO(b""))
        tar.add(source, arcname="last.png")
    return path


@pytest.mark.parametrize(
    ("tar_format", "pax_headers", "hops"),
    [
        (tarfile.PAX_FORMAT, None, True),
        (tarfile.GNU_FORMAT, None, True),
        (tarfile.USTAR_FORMAT, None, True),  # no long names: they are left out below
        (tarfile.PAX_FORMAT, {"comment": "a global header"}, False),  # tarfile walks from 0
    ],
    ids=["pax", "gnu", "ustar", "pax-global-header"],
)
def test_the_hop_over_headers_lands_where_tarfile_would(
    rng, tmp_path, monkeypatch, tar_format, pax_headers, hops
):
    from norm_transforms.stats.shards import _first_member_from

    source = tmp_path / "image.png"
    write_image(source, smooth_rgb(rng))
    if tar_format == tarfile.USTAR_FORMAT:
        with tarfile.open(tmp_path / "shard.tar", "w", format=tar_format) as tar:
            for index in range(4):
                tar.add(source, arcname=f"{index:06d}.png")
        shard = tmp_path / "shard.tar"
    else:
        shard = write_archive(tmp_path / "shard.tar", source, tar_format, pax_headers)
    with tarfile.open(shard) as tar:
        offsets = [member.offset for member in tar.getmembers()]
        end = tar.offset
    with open(shard, "rb") as file:
        for start in range(512, shard.stat().st_size + 512, 512):
            expected = next((offset for offset in offsets if offset >= start), end)
            assert _first_member_from(file, start) == (expected if hops else 0), start
    # Whatever the parts, every image is counted once.
    stats = compute_stats(shard, progress=False)
    assert stats.images == 4
    for part_bytes in (512, 1024, 3000):
        monkeypatch.setattr(shards, "PART_BYTES", part_bytes)
        assert compute_stats(shard, progress=False) == stats


def test_a_damaged_header_where_a_part_starts_reading_is_reported_by_that_part(tmp_path, monkeypatch):
    # Review: a part whose first member is a valid pax header followed by a broken ustar header
    # failed in tarfile.open and reported byte 0, which no other part holds: silently lost.
    png = cv2.imencode(".png", np.full((4, 4, 3), 7, np.uint8))[1].tobytes()
    shard = tmp_path / "pax.tar"
    with tarfile.open(shard, "w", format=tarfile.PAX_FORMAT) as tar:
        for index in range(20):
            member = tarfile.TarInfo(f"{index:06d}_\u00e9.png")  # not ASCII: a pax header each
            member.size = len(png)
            tar.addfile(member, io.BytesIO(png))
    with tarfile.open(shard) as tar:
        victim = [member.offset for member in tar][12]
    with open(shard, "r+b") as file:  # member 12's ustar header (after its pax header) broken
        file.seek(victim + 1024 + 148)
        file.write(b"0000000\0")
    monkeypatch.setattr(shards, "PART_BYTES", 4096)
    reported = [problem for part in shards.shard_parts(str(shard)) for problem in part.count().unreadable]
    assert len(reported) == 1 and "damaged or truncated at byte" in reported[0][1], reported
    with pytest.raises(OSError, match="damaged or truncated"):
        compute_stats(str(shard), progress=False)
