"""RLS volumes from compositions and cached radii equal pymatgen's ``RLSVolumePredictor``."""

from __future__ import annotations

import math
import warnings

import pytest
from pymatgen.core import Structure

from crystalgnn.data.examples import cathode_examples
from crystalgnn.discovery import volume
from crystalgnn.discovery.oxidation import oxidation_guess
from crystalgnn.discovery.volume import predicted_volume, pymatgen_rls_volume, rls_volume

SUBSTITUTIONS = {
    "Co": ["Ni", "Mn", "Fe", "W"],  # W3+ has no ionic radius: pymatgen's atomic-radius branch
    "Fe": ["Mn", "Co", "Ni"],
    "Mn": ["Fe", "Ni", "Co"],  # LiFe2O4 has no charge-balanced guess: pymatgen's own path
    "Ni": ["Co", "Mn"],
    "P": ["Si", "S"],
    "Li": ["Na"],
    "O": ["S", "F"],
}


def _substituted(structure: Structure, old: str, new: str) -> Structure:
    out = structure.copy()
    out.replace_species({old: new})
    return out


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, Structure, Structure]]:
    """(name, structure, reference): each bundled cathode on itself and its substitution products."""
    out = []
    for name, host in cathode_examples().items():
        out.append((name, host, host))
        for el in host.composition.elements:
            for new in SUBSTITUTIONS.get(el.symbol, []):
                out.append((f"{name} {el.symbol}->{new}", _substituted(host, el.symbol, new), host))
    return out


def _pymatgen(structure: Structure, reference: Structure) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pymatgen_rls_volume(structure, reference)


def test_fast_volume_equals_pymatgen(pairs: list[tuple[str, Structure, Structure]]) -> None:
    fast = 0
    for name, structure, reference in pairs:
        expected = _pymatgen(structure, reference)
        got = rls_volume(structure, reference)
        if got is not None:
            fast += 1
            assert math.isclose(got, expected, rel_tol=1e-12), name
        predicted, method = predicted_volume(structure, reference)
        assert method == "rls", name
        assert math.isclose(predicted, expected, rel_tol=1e-12), name
    assert fast >= len(pairs) - 3  # only compositions without a guess take pymatgen's path


def test_self_reference_keeps_volume() -> None:
    for name, host in cathode_examples().items():
        assert rls_volume(host, host) == pytest.approx(host.volume, rel=1e-12), name


def test_atomic_radius_branch() -> None:
    host = cathode_examples()["LiCoO2"]
    product = _substituted(host, "Co", "W")
    guess = oxidation_guess(product.composition)
    assert guess is not None and guess["W"] == 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert volume._radius("W", 3.0, "ionic") is None
    got = rls_volume(product, host)
    assert got is not None
    assert math.isclose(got, _pymatgen(product, host), rel_tol=1e-12)


def test_fast_path_does_not_decorate(monkeypatch: pytest.MonkeyPatch) -> None:
    host = cathode_examples()["LiFePO4"]
    product = _substituted(host, "Fe", "Mn")
    expected = _pymatgen(product, host)

    def no_copies(structure: Structure) -> Structure:
        raise AssertionError("structures decorated on the fast path")

    monkeypatch.setattr(volume, "_with_oxidation_states", no_copies)
    got, method = predicted_volume(product, host)
    assert method == "rls"
    assert math.isclose(got, expected, rel_tol=1e-12)
    assert not any(hasattr(sp, "oxi_state") for sp in product.composition)


def test_pymatgen_path_when_shortcut_does_not_apply() -> None:
    host = cathode_examples()["LiMn2O4"]
    no_guess = _substituted(host, "Mn", "Fe")  # LiFe2O4: no charge-balanced states
    assert oxidation_guess(no_guess.composition) is None
    assert rls_volume(no_guess, host) is None
    assert predicted_volume(no_guess, host) == (_pymatgen(no_guess, host), "rls")

    decorated = host.copy()
    decorated.add_oxidation_state_by_guess()
    assert rls_volume(decorated, host) is None
    assert predicted_volume(decorated, host) == (_pymatgen(decorated, host), "rls")


def test_without_reference_uses_dls() -> None:
    host = cathode_examples()["LiCoO2"]
    got, method = predicted_volume(host)
    assert method == "dls"
    assert 0.5 * host.volume <= got <= 1.5 * host.volume
