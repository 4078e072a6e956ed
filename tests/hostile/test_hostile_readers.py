"""A hostile corpus through the CLI: bad input never crashes, hangs or poisons a batch.

Each corpus (built in ``tmp_path``) mixes good structures with every kind of bad entry the
readers must survive: NaN and overflowing (``1e400``) coordinates and lattices, empty and
binary files, dangling symbolic links and link loops, ``id_prop.csv`` rows with an extra value
or a text label and a header line, JSON lines that are not objects, a truncated ``.jsonl.gz``.
Each CLI command (``data inspect``, ``graphs build``, ``train``, ``predict``, ``evaluate``)
must exit 0 without a traceback, name every bad entry with its reason (on screen or in a
``rejected.csv``) and process every good entry. Every command runs under a 120 s alarm, so
a hang fails the test instead of blocking CI.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from crystalgnn.cli import app

pytestmark = pytest.mark.usefixtures("one_thread")

TIMEOUT_S = 120
TINY = ["-m", "atom_fea_len=8", "-m", "n_conv=1", "--batch-size", "4", "--split", "0.34,0.33,0.33", "--no-progress"]


@pytest.fixture(autouse=True)
def _alarm() -> Iterator[None]:
    """Fail (instead of hanging) when a test runs longer than ``TIMEOUT_S``."""

    def on_alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"hostile-input test still running after {TIMEOUT_S} s: a hang")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIMEOUT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------------------- corpora
def good_structures(n: int) -> dict[str, Structure]:
    """``n`` small ordered crystals with elements the shipped models know."""
    kinds = [
        (lambda a: Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]], 2.82),
        (
            lambda a: Lattice.from_parameters(a, a, a, 60, 60, 60),
            ["Si", "Si"],
            [[0, 0, 0], [0.25, 0.25, 0.25]],
            3.84,
        ),
        (
            lambda a: Lattice.cubic(a),
            ["Sr", "Ti", "O", "O", "O"],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
            3.905,
        ),
    ]
    out = {}
    for k in range(n):
        lattice, species, coords, a = kinds[k % len(kinds)]
        out[f"good{k}"] = Structure(lattice(a * (1 + 0.02 * (k // len(kinds)))), species, coords)
    return out


def poscar(coord: str = "0.5", length: str = "5.6") -> str:
    return f"NaCl\n1.0\n{length} 0 0\n0 5.6 0\n0 0 5.6\nNa Cl\n1 1\ndirect\n0 0 0 Na\n{coord} 0.5 0.5 Cl\n"


def p1_cif(coord: str = "0.5", length: str = "5.6") -> str:
    return (
        f"data_NaCl\n_symmetry_space_group_name_H-M   'P 1'\n_cell_length_a   {length}\n_cell_length_b   5.6\n"
        "_cell_length_c   5.6\n_cell_angle_alpha   90\n_cell_angle_beta   90\n_cell_angle_gamma   90\n"
        "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_fract_x\n _atom_site_fract_y\n"
        f" _atom_site_fract_z\n _atom_site_occupancy\n  Na  Na0  0.0  0.0  0.0  1\n  Cl  Cl1  {coord}  0.5  0.5  1\n"
    )


def structure_folder(root: Path) -> tuple[Path, list[str], dict[str, str]]:
    """POSCAR and CIF files, good and bad side by side: (folder, good ids, bad id -> reason kind)."""
    folder = root / "files"
    folder.mkdir()
    good = good_structures(3)
    for k, (i, s) in enumerate(good.items()):
        (folder / (f"{i}.vasp" if k % 2 else f"{i}.cif")).write_text(s.to(fmt="poscar" if k % 2 else "cif"))
    (folder / "nan-coords.vasp").write_text(poscar(coord="nan"))
    (folder / "overflow-coords.vasp").write_text(poscar(coord="1e400"))
    (folder / "overflow-lattice.vasp").write_text(poscar(length="1e400"))
    (folder / "nan-coords.cif").write_text(p1_cif(coord="nan"))
    (folder / "nan-lattice.cif").write_text(p1_cif(length="nan"))
    (folder / "empty.cif").write_text("")
    (folder / "binary.cif").write_bytes(bytes(range(256)) * 4)
    os.symlink(root / "nowhere.cif", folder / "dangling.cif")
    os.symlink(folder / "loop-b.cif", folder / "loop-a.cif")
    os.symlink(folder / "loop-a.cif", folder / "loop-b.cif")
    bad = {
        "nan-coords.vasp": "non-finite coordinates",
        "overflow-coords": "non-finite coordinates",
        "overflow-lattice": "non-finite lattice",
        "nan-coords.cif": "non-finite coordinates",
        "nan-lattice": "non-finite lattice",
        "empty": "empty file",
        "binary": "unparsable CIF",
        "dangling": "dangling symbolic link",
        "loop-a": "symbolic link loop",
        "loop-b": "symbolic link loop",
    }
    return folder, list(good), bad


def cgcnn_folder(root: Path) -> tuple[Path, list[str], dict[str, str]]:
    """``id_prop.csv`` with a header and bad rows beside 6 good ones."""
    folder = root / "cgcnn"
    folder.mkdir()
    good = good_structures(6)
    lines = ["material,band_gap"]
    for k, (i, s) in enumerate(good.items()):
        (folder / f"{i}.cif").write_text(s.to(fmt="cif"))
        lines.append(f"{i},{0.5 * k}")
    for i in ("extra", "text", "short", "overflow", "dangling"):
        (folder / f"{i}.cif").write_text(good["good0"].to(fmt="cif"))
    (folder / "overflow.cif").write_text(p1_cif(coord="1e400"))
    (folder / "dangling.cif").unlink()
    os.symlink(root / "nowhere.cif", folder / "dangling.cif")
    lines += ["extra,1.0,2.0", "text,abc", "short", "overflow,1.0", "dangling,1.0", "ghost,1.0"]
    (folder / "id_prop.csv").write_text("\n".join(lines) + "\n")
    bad = {
        "extra": "3 values, expected 2",
        "text": "label 'band_gap' is not a number: 'abc'",
        "short": "1 value, expected 2",
        "overflow": "non-finite coordinates (site 1, Cl: fractional (inf, 0.5, 0.5))",
        "dangling": "dangling symbolic link",
        "ghost": "label file names a missing structure file",
    }
    return folder, list(good), bad


def _row(i: str, s: Structure, y: float) -> str:
    return json.dumps({"id": i, "structure": s.as_dict(), "y": y})


def jsonl_table(root: Path) -> tuple[Path, list[str], dict[str, str]]:
    """A JSON-lines.gz table: bad lines (not objects, invalid JSON, NaN coordinates) among 6 good."""
    good = good_structures(6)
    nan_dict = good["good0"].as_dict()
    nan_dict["sites"][1]["abc"][0] = float("nan")
    nan_dict["sites"][1].pop("xyz")
    lines = [_row(i, s, 0.5 * k) for k, (i, s) in enumerate(good.items())]
    lines[1:1] = ["[1, 2, 3]", "null", '"s"', "{broken", json.dumps({"id": "nan-dict", "structure": nan_dict, "y": 1})]
    lines.append(json.dumps({"id": "overflow-cif", "structure": p1_cif(coord="1e400"), "y": 1}))
    path = root / "table.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    bad = {
        "row1": "not a JSON object (line 2: an array)",
        "row2": "not a JSON object (line 3: null)",
        "row3": "not a JSON object (line 4: a string)",
        "row4": "invalid JSON (line 5",
        "nan-dict": "non-finite coordinates",
        "overflow-cif": "non-finite coordinates",
    }
    return path, list(good), bad


def truncated_table(root: Path) -> tuple[Path, list[str], dict[str, str]]:
    """A ``.jsonl.gz`` cut in the middle of its stream: the complete rows before the cut are good."""
    import zlib

    good = good_structures(40)
    data = gzip.compress(("\n".join(_row(i, s, 0.1 * k) for k, (i, s) in enumerate(good.items())) + "\n").encode())
    cut = data[: len(data) // 2]
    n = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut).count(b"\n")
    assert n >= 6, "the cut should leave enough complete rows to train on"
    path = root / "cut.jsonl.gz"
    path.write_bytes(cut)
    return path, list(good)[:n], {"cut.jsonl.gz": f"file truncated after line {n} (EOFError"}


def csv_with_big_cell(root: Path) -> tuple[Path, list[str], dict[str, str]]:
    """A CSV table whose CIF cell is far over the csv module's default field limit (131,072)."""
    good = good_structures(3)
    big = good_structures(1)["good0"]
    big.make_supercell([13, 12, 11])  # 3,432 atoms: about 200,000 characters of CIF
    path = root / "big.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "cif", "y"])
        w.writerow(["good0", good["good0"].to(fmt="cif"), 1.0])
        w.writerow(["big", big.to(fmt="cif"), 2.0])
        w.writerow(["good1", good["good1"].to(fmt="cif"), 3.0, "extra"])
        w.writerow(["good2", good["good2"].to(fmt="cif"), 4.0])
    assert path.stat().st_size > 150_000
    return path, ["good0", "big", "good2"], {"row2": "4 values, expected 3"}


# ----------------------------------------------------------------------------- running
def run(*args: object) -> str:
    """The command's output (stdout and stderr, whitespace collapsed); it must exit 0 without a
    traceback.
    """
    result = CliRunner().invoke(app, [str(a) for a in args])
    text = " ".join((result.output or "").split())
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), f"{args[:2]} raised {exc!r}: {text[-2000:]}"
    assert "Traceback" not in text, text[-2000:]
    assert result.exit_code == 0, f"{args[:2]} exit {result.exit_code}: {text[-2000:]}"
    return text


def named(text: str, bad: dict[str, str]) -> None:
    """Every bad entry appears with (the start of) its reason."""
    for entry, reason in bad.items():
        assert entry in text, f"{entry} not named"
        assert reason in text, f"{entry}: reason {reason!r} not given"


def read_csv_text(*paths: Path) -> str:
    return " ".join(" ".join(p.read_text().split()) for p in paths if p.is_file())


def predicted_ids(path: Path) -> list[str]:
    with path.open(newline="") as f:
        return [row["id"] for row in csv.DictReader(f)]


def check_reading_commands(tmp_path: Path, source: Path, good: list[str], bad: dict[str, str]) -> None:
    """``data inspect``, ``graphs build --no-cache`` and ``predict mp-band-gap`` on ``source``."""
    out = tmp_path / "out"
    text = run("data", "inspect", source, "--rejected", out / "inspect.csv", "--limit", 100)
    assert f"{len(good)} usable structures" in text
    named(text + read_csv_text(out / "inspect.csv"), bad)
    text = run("graphs", "build", source, "--no-cache", "--rejected", out / "graphs.csv")
    assert f"{len(good)} graphs" in text
    named(read_csv_text(out / "graphs.csv"), bad)
    text = run("predict", "mp-band-gap", source, "--output", out / "predicted.csv")
    assert sorted(predicted_ids(out / "predicted.csv")) == sorted(good)


def check_training_commands(tmp_path: Path, source: Path, good: list[str], bad: dict[str, str]) -> None:
    """``train`` (1 epoch, tiny), then ``predict`` and ``evaluate`` with the run folder."""
    run_dir = tmp_path / "run"
    run("train", source, "--epochs", 1, *TINY, "--out", run_dir, "--cache-dir", tmp_path / "cache")
    named(read_csv_text(run_dir / "rejected.csv"), bad)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == len(good)
    run("predict", run_dir, source, "--output", tmp_path / "run-predicted.csv")
    assert sorted(predicted_ids(tmp_path / "run-predicted.csv")) == sorted(good)
    run("evaluate", run_dir, source, "--out", tmp_path / "eval")
    named(read_csv_text(tmp_path / "eval" / "rejected.csv"), bad)
    assert sorted(predicted_ids(tmp_path / "eval" / "predictions.csv")) == sorted(good)


def test_folder_of_poscar_and_cif_files(tmp_path: Path) -> None:
    source, good, bad = structure_folder(tmp_path)
    check_reading_commands(tmp_path, source, good, bad)  # no labels: nothing to train on


def test_cgcnn_folder_with_bad_id_prop_rows(tmp_path: Path) -> None:
    source, good, bad = cgcnn_folder(tmp_path)
    check_reading_commands(tmp_path, source, good, bad)
    check_training_commands(tmp_path, source, good, bad)


def test_jsonl_gz_table_with_bad_lines(tmp_path: Path) -> None:
    source, good, bad = jsonl_table(tmp_path)
    check_reading_commands(tmp_path, source, good, bad)
    check_training_commands(tmp_path, source, good, bad)


def test_truncated_jsonl_gz(tmp_path: Path) -> None:
    source, good, bad = truncated_table(tmp_path)
    check_reading_commands(tmp_path, source, good, bad)
    check_training_commands(tmp_path, source, good, bad)


def test_csv_with_a_cell_over_the_field_limit(tmp_path: Path) -> None:
    source, good, bad = csv_with_big_cell(tmp_path)
    text = run("data", "inspect", source, "--rejected", tmp_path / "inspect.csv")
    assert f"{len(good)} usable structures" in text
    named(text + read_csv_text(tmp_path / "inspect.csv"), bad)


def test_several_sources_with_an_unusable_one(tmp_path: Path) -> None:
    folder, _, _ = structure_folder(tmp_path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "predicted.csv"
    text = run("predict", "mp-band-gap", folder / "good0.cif", folder / "good1.vasp", empty, fake, "--output", out)
    assert sorted(predicted_ids(out)) == ["good0", "good1"]
    named(text, {"empty.jsonl": "empty file", "fake.jsonl.gz": "neither gzip-compressed nor text"})
    # a lone unusable source: exit 1 with a one-line error, never a traceback
    for lone in (empty, fake, folder / "empty.cif", folder / "binary.cif", folder / "dangling.cif"):
        result = CliRunner().invoke(app, ["graphs", "build", "--no-cache", str(lone)])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert "error:" in result.output and "Traceback" not in result.output
