"""Ion substitution on host structures: explicit user rules and data-mined probabilities.

Two generators, both replacing *every* site of an element (or species) by another:

- explicit rules such as ``Co->Ni,Mn,Fe`` and ``P->Si,S`` (:func:`parse_rules`,
  :func:`apply_rules`): each rule gives one candidate per target; with ``combine=True`` the
  rules that apply to a host are combined (Cartesian product of "keep or replace" per rule);
- the data-mined ionic substitution model of Hautier, Fischer, Ehrlacher, Jain and Ceder,
  Inorg. Chem. 50, 656 (2011) (:func:`probable_substitutions`): for host species ``s_i`` and
  new species ``t_i``, ``P(t | s) = prod_i p(t_i | s_i)`` with ``p`` from pymatgen's lambda
  table; substitutions with ``P`` above a threshold are kept (pymatgen's
  ``SubstitutionPredictor``). Host oxidation states come from ``BVAnalyzer`` (bond valence,
  O'Keeffe and Brese 1991), falling back to ``Composition.oxi_state_guesses``.

Charge balance is enforced on every candidate: rule candidates need a charge-balanced oxidation
state guess (:func:`~crystalgnn.discovery.candidates.oxidation_guess`); probabilistic ones are
charge balanced by construction (``sum_i n_i q(t_i) = 0``). The working ion is never replaced.
The lattice is optionally rescaled relative to the host (:mod:`~crystalgnn.discovery.volume`);
no candidate is relaxed.
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pymatgen.analysis.bond_valence import BVAnalyzer
from pymatgen.analysis.structure_prediction.substitution_probability import SubstitutionPredictor
from pymatgen.core import Composition, Element, Species, Structure
from pymatgen.transformations.standard_transformations import SubstitutionTransformation

from crystalgnn.data.dataset import Rejection
from crystalgnn.discovery.candidates import Candidate, oxidation_guess
from crystalgnn.discovery.volume import rescale_volume

_RULE = re.compile(r"^\s*([A-Za-z]{1,2})\s*->\s*([A-Za-z]{1,2}(?:\s*,\s*[A-Za-z]{1,2})*)\s*$")


class RuleError(ValueError):
    """A substitution rule that cannot be parsed (the message is one line)."""


@dataclass(frozen=True)
class SubstitutionRule:
    """Replace every site of ``source`` by each of ``targets`` (element symbols)."""

    source: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.source}->{','.join(self.targets)}"


def _element(symbol: str, rule: str) -> str:
    sym = symbol.strip()
    sym = sym[:1].upper() + sym[1:].lower()
    if not Element.is_valid_symbol(sym):
        raise RuleError(f"substitution rule {rule.strip()!r}: unknown element {symbol.strip()!r}")
    return sym


def parse_rules(text: str | Sequence[str]) -> list[SubstitutionRule]:
    """Parse rules like ``"Co->Ni,Mn,Fe; P->Si,S"`` (``;`` or whitespace between rules, or a list).

    Raises:
        RuleError: with a one-line message naming the bad rule (syntax, unknown element, an
            element replaced by itself, or an element given two rules).
    """
    if isinstance(text, str):
        parts = re.split(r"[;\s]+", re.sub(r"\s*(->|,)\s*", r"\1", text))
    else:
        parts = list(text)
    rules: list[SubstitutionRule] = []
    seen: set[str] = set()
    for part in (p for p in parts if p.strip()):
        m = _RULE.match(part)
        if m is None:
            raise RuleError(f"substitution rule {part.strip()!r} is not of the form 'Co->Ni,Mn'")
        source = _element(m.group(1), part)
        targets = tuple(dict.fromkeys(_element(t, part) for t in m.group(2).split(",")))
        if source in targets:
            raise RuleError(f"substitution rule {part.strip()!r} replaces {source} by itself")
        if source in seen:
            raise RuleError(f"substitution rule {part.strip()!r}: {source} has two rules")
        seen.add(source)
        rules.append(SubstitutionRule(source, targets))
    if not rules:
        raise RuleError("no substitution rule given (expected e.g. 'Co->Ni,Mn')")
    return rules


def _finish(host: Candidate, structure: Structure, step: str, rescale: bool, **meta: object) -> Candidate:
    if rescale:
        structure, method = rescale_volume(structure, reference=host.structure)
        meta["volume"] = method
    return host.derive(structure, step, **meta)


def apply_rules(
    hosts: Iterable[Candidate],
    rules: Sequence[SubstitutionRule],
    combine: bool = False,
    rescale: bool = False,
) -> tuple[list[Candidate], list[Rejection]]:
    """Candidates from applying ``rules`` to each host; non-charge-balanced ones rejected.

    A rule applies to a host that contains its source element; a rule that would replace the
    host's working ion is skipped (the working ion defines the battery).
    """
    out: list[Candidate] = []
    rejected: list[Rejection] = []
    for host in hosts:
        present = {el.symbol for el in host.structure.composition.elements}
        usable = [r for r in rules if r.source in present and r.source != host.working_ion]
        if combine:
            options = [[(r.source, r.source), *((r.source, t) for t in r.targets)] for r in usable]
            maps = [dict(p for p in combo if p[0] != p[1]) for combo in itertools.product(*options)]
        else:
            maps = [{r.source: t} for r in usable for t in r.targets]
        for mapping in (m for m in maps if m):
            step = "sub " + " ".join(f"{a}->{b}" for a, b in sorted(mapping.items()))
            structure = host.structure.copy()
            structure.replace_species(dict(mapping))
            if oxidation_guess(structure.composition) is None:
                formula = structure.composition.reduced_formula
                rejected.append(Rejection(f"{host.id}|{step}", host.lineage, f"{formula} not charge balanced"))
                continue
            out.append(_finish(host, structure, step, rescale, substitution=dict(mapping)))
    return out, rejected


@lru_cache(maxsize=8)
def _predictor(threshold: float) -> SubstitutionPredictor:
    return SubstitutionPredictor(threshold=threshold)


def oxidation_decorated(structure: Structure) -> Structure | None:
    """``structure`` with oxidation states (``BVAnalyzer``, else the composition guess)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return BVAnalyzer().get_oxi_state_decorated_structure(structure)
        except ValueError:
            guess = oxidation_guess(structure.composition)
            if guess is None:
                return None
            decorated = structure.copy()
            decorated.add_oxidation_state_by_element(guess)
            return decorated


@lru_cache(maxsize=4096)
def _predictions(species: tuple[tuple[str, float], ...], threshold: float) -> list[dict]:
    """Pymatgen's charge-balanced predictions for one oxidation-state composition (cached:
    the branch and bound over ~200 species takes seconds at a 1e-3 threshold).
    """
    comp = Composition({Species.from_str(sp): amount for sp, amount in species})
    return _predictor(threshold).composition_prediction(comp, to_this_composition=False)


def probable_substitutions(
    hosts: Iterable[Candidate],
    threshold: float = 1e-3,
    max_per_host: int | None = 50,
    rescale: bool = False,
    exclude_radioactive: bool = True,
) -> tuple[list[Candidate], list[Rejection]]:
    """Charge-balanced substitutions with Hautier-2011 probability above ``threshold``.

    Species of the host are assigned oxidation states (:func:`oxidation_decorated`); the
    working ion must map to itself. The most probable ``max_per_host`` substitutions per host
    are kept (``None``: all); with ``exclude_radioactive`` substitutions introducing a
    radioactive element (Tc, Pm, actinides, ...) are dropped. Hosts whose species the model does
    not cover (e.g. mixed-valence averages such as Mn3.5+ in LiMn2O4) are rejected with the
    reason. Predictions are cached per oxidation-state composition.
    """
    out: list[Candidate] = []
    rejected: list[Rejection] = []
    for host in hosts:
        decorated = oxidation_decorated(host.structure)
        if decorated is None:
            rejected.append(Rejection(host.id, host.lineage, "no oxidation states for host"))
            continue
        comp = decorated.composition.reduced_composition
        key = tuple(sorted((str(sp), float(n)) for sp, n in comp.items()))
        try:
            preds = _predictions(key, float(threshold))
        except ValueError as err:
            rejected.append(Rejection(host.id, host.lineage, f"substitution model: {err}"))
            continue
        kept = []
        for pred in preds:
            subs: dict[Species, Species] = {k: v for k, v in pred["substitutions"].items() if k != v}
            if not subs or any(k.symbol == host.working_ion for k in subs):
                continue
            if exclude_radioactive and any(v.element.is_radioactive for v in subs.values()):
                continue
            if len({v.symbol for v in pred["substitutions"].values()}) < len(comp):
                continue  # two host species mapped onto one element: a different composition type
            kept.append((float(pred["probability"]), subs))
        kept.sort(key=lambda item: -item[0])
        for prob, subs in kept[:max_per_host]:
            mapping: dict[Any, Any] = {str(k): str(v) for k, v in subs.items()}
            structure = SubstitutionTransformation(mapping).apply_transformation(decorated)
            structure.remove_oxidation_states()
            step = "sub " + " ".join(f"{a}->{b}" for a, b in sorted(mapping.items()))
            out.append(_finish(host, structure, step, rescale, substitution=mapping, probability=prob))
    return out, rejected
