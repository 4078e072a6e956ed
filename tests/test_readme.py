"""The README's Python API example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_a_python_api_example() -> None:
    blocks = _python_blocks()
    assert blocks and "crystalgnn.load_model" in blocks[0] and "crystalgnn.train" in blocks[0]


@pytest.mark.skipif(not (SHARED / "castelli_perovskites_cdvae.jsonl.gz").is_file(), reason="needs ../shared/data")
def test_readme_python_api_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRYSTALGNN_CACHE_DIR", str(tmp_path / "cache"))
    namespace: dict[str, object] = {}
    exec(compile(_python_blocks()[0], "README.md", "exec"), namespace)
    run = namespace["run"]
    assert (tmp_path / "runs" / "perov-api" / "metrics.json").is_file()
    assert run.metrics["readout"] == "site-linear" and run.metrics["test"]["mae"] > 0  # type: ignore[attr-defined]
    preds = namespace["preds"]
    assert len(preds.values) == 1  # type: ignore[attr-defined]
    out = capsys.readouterr().out
    assert "NaCl" in out
