"""Cathode discovery: candidate generators, battery quantities and the screen (layer
``discovery``, above ``explain``, below ``pretrained``).

The chemistry is pymatgen's; these modules chain it into candidate generation for insertion
cathodes (issue 17, part 1), the battery physics used to score candidates, and the screen that
scores, filters and ranks them with trained models (``crystalgnn screen``, issue 17, part 3). No
candidate is relaxed: structures are decorated or substituted hosts with a lattice rescaled to a
predicted volume.

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
- :mod:`~crystalgnn.discovery.screen_config`: ``ScreenConfig``, every option of a screen (saved
  as ``screen.yaml``), with the per-stage fingerprints that make a re-run resume.
- :mod:`~crystalgnn.discovery.scoring`: the predicted properties of (discharged, charged) pairs:
  formation energies and hull distances, voltage (a) from a voltage model and (b) from formation
  energies, capacities, energies, band gap, metal probability; ensemble spreads member by member.
- :mod:`~crystalgnn.discovery.ranking`: filters (hull distance, voltage window), the objective
  (specific energy or its lower confidence bound) and the Pareto front.
- :mod:`~crystalgnn.discovery.screen`: the pipeline hosts -> generate -> filter -> dedup -> flag
  known -> end members -> score -> rank, stage by stage on lists, resumable in its folder
  (``run_screen``).
- :mod:`~crystalgnn.discovery.screen_report`: ``ScreenResult`` and what a screen writes
  (``ranked.csv``, top CIFs, voltage-capacity and Pareto plots, ``report.md``).
- :mod:`~crystalgnn.discovery.engine`: the ``Engine`` interface ("map this task over these
  partitions"), ``LocalEngine`` and the partition helpers (issue 17, part 4);
  :mod:`~crystalgnn.discovery.dask_engine`: ``DaskEngine`` on a Dask distributed cluster;
  :mod:`~crystalgnn.discovery.engines`: ``open_engine`` by name (``--engine local|dask``).
- :mod:`~crystalgnn.discovery.screen_tasks`: the screen's stages as tasks over partitions and
  their order-preserving merge (every engine gives the same result);
  :mod:`~crystalgnn.discovery.screen_scoring`: the scoring stage, engine-mapped, in batches
  saved as they finish (an interrupted scoring stage resumes).
"""
