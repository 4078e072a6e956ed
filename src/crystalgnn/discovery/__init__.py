"""Cathode discovery: candidate generators and battery quantities (layer ``discovery``, above
``explain``, below ``pretrained``).

The chemistry is pymatgen's; these modules chain it into candidate generation for insertion
cathodes (issue 17, part 1) and the battery physics used to score candidates. No candidate is
relaxed: structures are decorated or substituted hosts with a lattice rescaled to a predicted
volume.

- :mod:`~crystalgnn.discovery.candidates`: the ``Candidate`` record (id, structure, lineage,
  working ion), host checks, validity filters (distance, charge neutrality, electronegativity),
  duplicate removal with ``StructureMatcher`` grouped by formula, flagging of known structures.
- :mod:`~crystalgnn.discovery.volume`: lattice rescaling to an RLS/DLS predicted volume.
- :mod:`~crystalgnn.discovery.substitution`: explicit rules (``Co->Ni,Mn``) and Hautier-2011
  probabilistic substitutions, charge balanced.
- :mod:`~crystalgnn.discovery.prototypes`: layered O3, spinel, olivine, NASICON and ordered
  rocksalt frameworks decorated with chosen working ion, metal and anions.
- :mod:`~crystalgnn.discovery.end_members`: charged end member (full or partial, lowest Ewald
  energy ordering) and the discharged partner of prototype candidates.
- :mod:`~crystalgnn.discovery.battery`: capacities, specific energy, energy density, voltage
  from formation energies, volume change, energy above a cached reference hull.
"""
