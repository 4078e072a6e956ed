"""Charge-balanced oxidation states of a composition: pymatgen's answer, computed fast.

The guess is pymatgen's ``Composition.oxi_state_guesses(max_sites=-50)[0]`` (the ICSD
occurrence-ranked bond-valence guess of pymatgen's ``Composition``; occurrence table from
``icsd_bv.yaml``, O'Keeffe & Brese style bond-valence statistics): for a reduced composition
with integer amounts ``n_e``, every element ``e`` takes a multiset of ``n_e`` states ``q`` from
its ICSD list (``Element.icsd_oxidation_states``, else ``common_oxidation_states``), scored by
the summed occurrence probabilities ``p(e, q)``. Per element and total ``S_e = sum q`` only the
best score ``s_e(S_e) = max sum p`` is kept; the solutions are the tuples ``(S_e)`` with
``sum_e S_e = 0``, ranked by ``sum_e s_e(S_e)`` (stable sort, so ties keep the product order of
the ``S_e`` lists), and the guess is ``q_e = S_e / n_e`` of the best one.

:func:`best_oxidation_states` returns exactly that answer (same floats, same tie-breaks) but
caches the per-element tables ``(S_e, s_e)`` per ``(element, n_e)`` (:func:`element_sum_table`;
scores summed in pymatgen's order, so bit-identical) and evaluates the product over elements as
one numpy broadcast with ``argmax`` (the first maximum in product order is the stable sort's
first). Products over ~2e6 tuples go to pymatgen's own loop. :func:`oxidation_guess` caches the
result per formula; :func:`electronegativity_reason` applies the anion/cation ordering rule
used by ionic screens such as SMACT (Davies et al., Chem 1, 617 (2016)).
"""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import combinations_with_replacement

import numpy as np
from pymatgen.core import Composition, Element, Species

MAX_SITES = 50
"""Largest reduced composition with a guess (pymatgen's ``max_sites=-50``): larger -> none."""

MAX_PRODUCT = 2_000_000
"""Largest number of per-element sum tuples evaluated with numpy; beyond, pymatgen's loop."""


def _occurrence_probabilities() -> dict[Species, float]:
    """Pymatgen's ICSD occurrence table ``Composition.oxi_prob`` (loaded by pymatgen itself)."""
    if Composition.oxi_prob is None:
        Composition("NaCl").oxi_state_guesses()  # pymatgen loads icsd_bv.yaml on first use
    assert Composition.oxi_prob is not None
    return Composition.oxi_prob


@lru_cache(maxsize=4096)
def element_sum_table(symbol: str, amount: int) -> tuple[np.ndarray, np.ndarray]:
    """Possible state sums of ``amount`` atoms of ``symbol`` and each sum's best score.

    Sums are listed in order of first appearance over ``combinations_with_replacement`` of the
    element's ICSD (else common) states, as pymatgen lists them; a combination's score is
    ``sum(p(symbol, q) for q in combination)`` added in the same order as pymatgen, and each
    sum keeps its maximum score. Cached per ``(symbol, amount)``; the arrays are read-only.
    """
    element = Element(symbol)
    states = element.icsd_oxidation_states or element.common_oxidation_states
    table = _occurrence_probabilities()
    prob = {q: table.get(Species(symbol, q), 0) for q in states}
    best: dict[float, float] = {}
    for combo in combinations_with_replacement(states, amount):
        total = sum(combo)
        score = sum(map(prob.__getitem__, combo))
        if total not in best or score > best[total]:
            best[total] = score
    sums = np.asarray(list(best), dtype=np.result_type(*states) if states else np.int64)
    scores = np.asarray(list(best.values()), dtype=np.float64)
    sums.setflags(write=False)
    scores.setflags(write=False)
    return sums, scores


def pymatgen_oxidation_states(composition: Composition | str) -> dict[str, float] | None:
    """Pymatgen's first guess ``oxi_state_guesses(max_sites=-50)[0]``, or ``None`` (no
    solution, non-integer amounts or more than 50 atoms in the reduced formula).
    """
    try:
        guesses = Composition(composition).oxi_state_guesses(max_sites=-MAX_SITES)
    except ValueError:
        return None
    return dict(guesses[0]) if guesses else None


def best_oxidation_states(composition: Composition | str) -> dict[str, float] | None:
    """The same answer as :func:`pymatgen_oxidation_states`, from cached per-element tables.

    Element order, reduction and the ``None`` cases follow pymatgen: a single element is
    neutral (``0.0``); otherwise the composition is reduced and must have at most
    :data:`MAX_SITES` atoms and integer amounts. Compositions the tables cannot handle (a
    dummy species, more than :data:`MAX_PRODUCT` sum tuples) get pymatgen's own call.
    """
    comp = Composition(composition)
    try:
        return _balanced_states(comp)
    except Exception:  # e.g. a dummy species: pymatgen decides (its ValueError -> None)
        return pymatgen_oxidation_states(comp)


def _balanced_states(comp: Composition) -> dict[str, float] | None:
    """:func:`best_oxidation_states` proper; raises on species without element data."""
    if len(comp.elements) == 1:
        return {comp.elements[0].symbol: 0.0}
    reduced = comp.reduced_composition
    if reduced.num_atoms > MAX_SITES or not all(amt == int(amt) for amt in reduced.values()):
        return None
    amounts = reduced.get_el_amt_dict()
    tables = [element_sum_table(el, int(amt)) for el, amt in amounts.items()]
    size = math.prod(len(sums) for sums, _ in tables)
    if size == 0:
        return None
    if size > MAX_PRODUCT:
        return pymatgen_oxidation_states(comp)
    grids = np.meshgrid(*(sums for sums, _ in tables), indexing="ij", sparse=True)
    score_grids = np.meshgrid(*(scores for _, scores in tables), indexing="ij", sparse=True)
    charge = grids[0]
    for g in grids[1:]:
        charge = charge + g
    score = np.zeros(charge.shape)
    for g in score_grids:  # element order, from 0.0: pymatgen's float additions
        score = score + g
    balanced = np.broadcast_to(charge == 0, score.shape)
    if not balanced.any():
        return None
    best = np.unravel_index(int(np.argmax(np.where(balanced, score, -np.inf))), score.shape)
    picked = (sums[i].item() for (sums, _), i in zip(tables, best, strict=True))
    return {el: total / amt for (el, amt), total in zip(amounts.items(), picked, strict=True)}


@lru_cache(maxsize=65536)
def _oxidation_guess(formula: str) -> tuple[tuple[str, float], ...] | None:
    guess = best_oxidation_states(formula)
    return None if guess is None else tuple(sorted(guess.items()))


def oxidation_guess(composition: Composition | str) -> dict[str, float] | None:
    """The most likely charge-balanced oxidation states (element -> state), ``None`` if none.

    Pymatgen's ``Composition.oxi_state_guesses`` answer (ICSD occurrence-weighted; states of
    each element may be mixed over sites only as an average) via :func:`best_oxidation_states`,
    cached by formula. Compositions with many atoms are first reduced (``max_sites=-50``),
    which does not change the answer.
    """
    comp = Composition(composition)
    guess = _oxidation_guess(comp.formula)
    return None if guess is None else dict(guess)


def electronegativity_reason(oxidation: dict[str, float]) -> str | None:
    """Why the oxidation states break the electronegativity ordering, or ``None``.

    The most electronegative element must be an anion and the least electronegative a cation;
    a single-element structure is accepted (metals, elements).
    """
    if len(oxidation) < 2:
        return None
    by_chi = sorted(oxidation, key=lambda el: Element(el).X)
    if oxidation[by_chi[-1]] >= 0:
        return f"most electronegative element {by_chi[-1]} is not an anion"
    if oxidation[by_chi[0]] <= 0:
        return f"least electronegative element {by_chi[0]} is not a cation"
    return None
