"""Many crystal graphs as columns: one array per field, with per-graph node and edge counts.

The graph builder's workers and the cache both hand over graphs by the thousand. Keeping them as
columns (a field of all graphs concatenated) until the end turns the per-graph work into views:
:meth:`GraphColumns.to_data` splits every column with one ``torch.split`` call and places the
views in PyG ``Data`` objects, :meth:`GraphColumns.to_batch` makes one PyG ``Batch`` of all graphs
without any per-graph object, and :func:`unpack_records` / :func:`pack_records` convert all the
cache records of a call with one gather / scatter per field instead of a few numpy calls per
graph (the layout of PyG's ``InMemoryDataset``: concatenated storage + slices).

Fields and in-memory shapes (N atoms, E edges, G graphs in all)::

    z (N,) int64, pos (N, 3) float32, lattice (G, 3, 3) float32,
    edge_index (2E,) int64 -- graph-major: graph g's (2, e_g) block, row-major, local atom indices
    edge_shift (E, 3) int64, edge_vec (E, 3) float32, edge_dist (E,) float32
    edge_weight (E,) float32 -- optional (Voronoi graphs): every graph has it or none does

A cache record (one graph) is a sequence of little-endian 4-byte words::

    n, e (int32) | pos 3n | lattice 9 | edge_vec 3e | edge_dist e (float32)
                 | edge_index 2e | edge_shift 3e | z n (int32) | crc (uint32)

i.e. ``12 + 4n + 9e`` words (graphs with ``edge_weight``: its ``e`` words follow ``z``, ``12 +
4n + 10e`` in all; one call's records are all of one kind, as a cache key includes the graph
config); since every word has the same size, the records of many graphs
joined end to end are one int32/float32 array, and each field is one fancy-index gather of it.
The last word is the CRC-32 (``zlib.crc32``) of the words before it: the CRC-32 of a whole
intact record is then always the constant ``0x2144DF1C``, so :func:`damaged_records` checks a
record with one ``zlib.crc32`` call and no copy (about 3 GB/s, 1-2 % of a warm load).
"""

from __future__ import annotations

import copy
import weakref
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from crystalgnn.graphs.batching import assemble_batch

#: record fields in order: (name, words per atom, words per edge, constant words, is float)
_RECORD = (
    ("pos", 3, 0, 0, True),
    ("lattice", 0, 0, 9, True),
    ("edge_vec", 0, 3, 0, True),
    ("edge_dist", 0, 1, 0, True),
    ("edge_index", 0, 2, 0, False),
    ("edge_shift", 0, 3, 0, False),
    ("z", 1, 0, 0, False),
)
#: optional per-edge float fields, stored after the fixed ones when present
_OPTIONAL_EDGE = ("edge_weight",)
_HEADER_WORDS = 2
_TRAILER_WORDS = 1  # the record's CRC-32
#: CRC-32 of any byte string followed by its own CRC-32 (little-endian)
_CRC_RESIDUE = 0x2144DF1C
#: trailing shape of each field's column
_SHAPES = {
    "pos": (3,),
    "lattice": (3, 3),
    "edge_vec": (3,),
    "edge_dist": (),
    "edge_index": (),
    "edge_shift": (3,),
    "z": (),
    "edge_weight": (),
}


def record_words(n_nodes: np.ndarray, n_edges: np.ndarray, n_optional: int = 0) -> np.ndarray:
    """Words in the cache record of graphs with these atom and edge counts (``n_optional``:
    optional per-edge fields stored).
    """
    per_edge = 9 + n_optional
    words: np.ndarray = _HEADER_WORDS + 9 + 4 * np.asarray(n_nodes) + per_edge * np.asarray(n_edges) + _TRAILER_WORDS
    return words


def damaged_records(records: Sequence[bytes | memoryview | None]) -> list[int]:
    """Positions of the records whose checksum fails (``None`` entries are skipped)."""
    crc = zlib.crc32
    return [k for k, r in enumerate(records) if r is not None and crc(r) != _CRC_RESIDUE]


@dataclass
class GraphColumns:
    """The fields of ``G`` graphs, concatenated (see the module docstring for shapes)."""

    n_nodes: np.ndarray  # (G,) int64
    n_edges: np.ndarray  # (G,) int64
    fields: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.n_nodes)

    @classmethod
    def from_arrays(cls, graphs: Sequence[dict[str, np.ndarray]]) -> GraphColumns:
        """Columns of per-graph field dicts (:func:`~crystalgnn.graphs.crystal_graph.build_graph_arrays`)."""
        n_nodes = np.array([len(g["z"]) for g in graphs], dtype=np.int64)
        n_edges = np.array([g["edge_index"].shape[1] for g in graphs], dtype=np.int64)
        fields = {}
        for name, _, _, _, is_float in _RECORD:
            parts = [np.asarray(g[name]).reshape(-1, *_SHAPES[name]) for g in graphs]
            dtype = np.float32 if is_float else np.int64
            fields[name] = (
                np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros((0, *_SHAPES[name]), dtype)
            )
        for name in _OPTIONAL_EDGE:
            if graphs and all(name in g for g in graphs):
                fields[name] = np.concatenate([np.asarray(g[name], dtype=np.float32) for g in graphs])
        return cls(n_nodes, n_edges, fields)

    def optional_fields(self) -> list[str]:
        """The optional per-edge fields these graphs carry (``edge_weight`` of Voronoi graphs)."""
        return [name for name in _OPTIONAL_EDGE if name in self.fields]

    def graph(self, k: int) -> dict[str, np.ndarray]:
        """Graph ``k`` as a field dict with per-graph shapes (``edge_index`` (2, e), ``lattice`` (1, 3, 3))."""
        a, b = int(self.n_nodes[:k].sum()), int(self.n_nodes[: k + 1].sum())
        c, d = int(self.n_edges[:k].sum()), int(self.n_edges[: k + 1].sum())
        f = self.fields
        out = {
            "z": f["z"][a:b],
            "pos": f["pos"][a:b],
            "lattice": f["lattice"][k : k + 1],
            "edge_index": f["edge_index"][2 * c : 2 * d].reshape(2, d - c),
            "edge_shift": f["edge_shift"][c:d],
            "edge_vec": f["edge_vec"][c:d],
            "edge_dist": f["edge_dist"][c:d],
        }
        for name in self.optional_fields():
            out[name] = f[name][c:d]
        return out

    def to_data(self) -> list[Data]:
        """One PyG ``Data`` per graph whose tensors are views of the columns.

        The tensors are placed in each ``Data``'s storage directly (``Data(**kwargs)`` validates
        every attribute and would cost more than everything else here). A graph's tensors share
        memory with the columns: ``torch.save`` of a single graph stores its whole column, so
        ``.clone()`` a graph before saving it on its own.
        """
        nodes, edges = self.n_nodes.tolist(), self.n_edges.tolist()
        f = {k: torch.from_numpy(v) for k, v in self.fields.items()}
        z, pos = torch.split(f["z"], nodes), torch.split(f["pos"], nodes)
        lattice = f["lattice"].unsqueeze(1).unbind(0)
        edge_index = torch.split(f["edge_index"], [2 * e for e in edges])
        edge_shift, edge_vec, edge_dist = (
            torch.split(f["edge_shift"], edges),
            torch.split(f["edge_vec"], edges),
            torch.split(f["edge_dist"], edges),
        )
        optional = {name: torch.split(f[name], edges) for name in self.optional_fields()}
        out = []
        for k, (n, e) in enumerate(zip(nodes, edges, strict=True)):
            data = new_data()
            data._store._mapping.update(
                z=z[k],
                pos=pos[k],
                lattice=lattice[k],
                edge_index=edge_index[k].view(2, e),
                edge_shift=edge_shift[k],
                edge_vec=edge_vec[k],
                edge_dist=edge_dist[k],
                num_nodes=n,
            )
            for name, parts in optional.items():
                data._store._mapping[name] = parts[k]
            out.append(data)
        return out

    def to_batch(self, extra: dict[str, torch.Tensor] | None = None) -> Batch:
        """All graphs as one PyG ``Batch``, straight from the columns (no per-graph ``Data``).

        Equal, field and bookkeeping for field and bookkeeping, to
        :func:`~crystalgnn.graphs.batching.collate_graphs` of :meth:`to_data` with ``extra``'s
        rows attached to the graphs (``extra``: name -> tensor with one row per graph, e.g.
        ``y`` (G, T) and ``idx`` (G,)).
        """
        g = len(self)
        counts, edges = torch.from_numpy(self.n_nodes), torch.from_numpy(self.n_edges)
        offsets = torch.zeros(g + 1, dtype=torch.long)
        torch.cumsum(counts, 0, out=offsets[1:])
        edge_at = torch.zeros(g + 1, dtype=torch.long)
        torch.cumsum(edges, 0, out=edge_at[1:])
        per_graph = torch.arange(g + 1)
        f = {k: torch.from_numpy(v) for k, v in self.fields.items()}
        # graph-major (2, e_g) blocks -> one (2, E): row 0 of graph g starts at 2 * edge_at[g]
        src = edge_at[:-1].repeat_interleave(edges) + torch.arange(int(edge_at[-1]))
        flat = f["edge_index"]
        edge_index = torch.stack((flat[src], flat[src + edges.repeat_interleave(edges)]))
        edge_index += offsets[:-1].repeat_interleave(edges)
        fields = {
            "z": f["z"],
            "pos": f["pos"],
            "lattice": f["lattice"],
            "edge_index": edge_index,
            "edge_shift": f["edge_shift"],
            "edge_vec": f["edge_vec"],
            "edge_dist": f["edge_dist"],
        }
        slices = {"z": offsets, "pos": offsets, "lattice": per_graph, "edge_index": edge_at}
        slices.update(edge_shift=edge_at, edge_vec=edge_at, edge_dist=edge_at)
        for name in self.optional_fields():
            fields[name] = f[name]
            slices[name] = edge_at
        for k, v in (extra or {}).items():
            fields[k] = v
            slices[k] = per_graph
        zeros = torch.zeros(g, dtype=torch.long)
        incs = {k: (offsets[:-1].clone() if k == "edge_index" else zeros.clone()) for k in fields}
        return assemble_batch(fields, {k: slices[k].clone() for k in fields}, incs, counts, offsets)


_EMPTY = Data()  # template for new_data; never modified
_EMPTY_STORE = {k: v for k, v in _EMPTY._store.__dict__.items() if k not in ("_mapping", "_parent", "_cached_attr")}


def new_data() -> Data:
    """An empty ``Data``, as ``copy.copy(Data())`` makes it (PyG's ``__copy__``: the object's
    ``__dict__``, a storage with the same attributes, its own mapping and a weak reference to its
    parent) in a quarter of the time; other PyG versions get ``copy.copy``.
    """
    if "_mapping" not in _EMPTY._store.__dict__:  # pragma: no cover - storage layout of other PyG versions
        return copy.copy(_EMPTY)
    data = Data.__new__(Data)
    data.__dict__.update(_EMPTY.__dict__)
    store = _STORE_CLS.__new__(_STORE_CLS)
    store.__dict__.update(_EMPTY_STORE)
    store.__dict__["_mapping"] = {}
    store.__dict__["_parent"] = weakref.ref(data)
    data.__dict__["_store"] = store
    return data


_STORE_CLS: Any = type(_EMPTY._store)


def _field_gather(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Positions ``starts[g] + i`` for ``i < lengths[g]``, graph after graph (one flat array)."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    begin = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=begin[1:])
    return np.repeat(starts - begin, lengths) + np.arange(total, dtype=np.int64)


def _field_spans(
    n: np.ndarray, e: np.ndarray, record_start: np.ndarray, optional: Sequence[str] = ()
) -> list[tuple[str, np.ndarray, np.ndarray, bool]]:
    """(field, first word of the field in each record, words per record, is float), in record order."""
    spans = []
    at = record_start + _HEADER_WORDS
    layout = (*_RECORD, *((name, 0, 1, 0, True) for name in _OPTIONAL_EDGE if name in optional))
    for name, per_atom, per_edge, const, is_float in layout:
        length = per_atom * n + per_edge * e + const
        spans.append((name, at, length, is_float))
        at = at + length
    return spans


def pack_records(columns: GraphColumns) -> list[bytes]:
    """One cache record per graph (layout in the module docstring, with its checksum), all built in one buffer."""
    n, e = columns.n_nodes, columns.n_edges
    optional = columns.optional_fields()
    sizes = record_words(n, e, len(optional))
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    words = np.empty(int(sizes.sum()), dtype=np.int32)
    words[starts] = n
    words[starts + 1] = e
    floats = words.view(np.float32)
    for name, at, length, is_float in _field_spans(n, e, starts, optional):
        values = columns.fields[name].reshape(-1)
        if is_float:
            floats[_field_gather(at, length)] = values
        else:
            words[_field_gather(at, length)] = values
    ends = starts + sizes - _TRAILER_WORDS
    view = memoryview(words)  # type: ignore[arg-type]  # numpy arrays export buffers; the stubs do not say so
    words.view(np.uint32)[ends] = [zlib.crc32(view[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    blob = words.tobytes()
    bounds = (np.concatenate(([0], np.cumsum(sizes))) * 4).tolist()
    return [blob[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=False)]


def unpack_records(records: Sequence[bytes | memoryview]) -> GraphColumns:
    """Inverse of :func:`pack_records` for any list of records (one gather per field).

    Only the sizes are checked here (a ``ValueError`` when they do not match the headers): the
    checksums are verified where records are read, by :meth:`GraphCache.get_many
    <crystalgnn.graphs.cache.GraphCache.get_many>` (or :func:`damaged_records`).
    """
    words = np.frombuffer(b"".join(records), dtype=np.int32)
    sizes = np.fromiter((len(r) for r in records), dtype=np.int64, count=len(records)) // 4
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    n = words[starts].astype(np.int64)
    e = words[starts + 1].astype(np.int64)
    optional: tuple[str, ...] = ()
    if not np.array_equal(record_words(n, e), sizes):
        if not np.array_equal(record_words(n, e, len(_OPTIONAL_EDGE)), sizes):
            raise ValueError("damaged graph cache record (sizes do not match their headers)")
        optional = _OPTIONAL_EDGE
    floats = words.view(np.float32)
    fields = {}
    for name, at, length, is_float in _field_spans(n, e, starts, optional):
        idx = _field_gather(at, length)
        values = floats[idx] if is_float else words[idx].astype(np.int64)
        fields[name] = values.reshape(-1, *_SHAPES[name])
    return GraphColumns(n, e, fields)


__all__ = ["GraphColumns", "damaged_records", "new_data", "pack_records", "record_words", "unpack_records"]
