"""``crystalgnn train``: its flags are generated from :class:`~crystalgnn.training.config.TrainConfig`.

Each dataclass field carries its flag names and help text; this module turns them into typer
options (defaults and choices shown from the dataclass and the model recipes, never restated
here), collects the options given on the command line, and resolves the configuration as
defaults < model recipe < ``--config`` file < flags. Every value is checked before torch,
Lightning or any data is loaded.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import signal
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from crystalgnn.cli.app import USAGE, app, console, err, fail, message, quiet_lightning
from crystalgnn.training import config as C
from crystalgnn.training.config import TrainConfig

# ------------------------------------------------------------------ options from the dataclass


@dataclasses.dataclass(frozen=True)
class _Flag:
    """One generated option: the dataclass field it sets and how its text becomes a value."""

    field: str
    param: str  # Python parameter name in the generated signature
    kind: str  # value | switch | repeat | keyvalue | intlist | devices


def _kind(f: dataclasses.Field[Any]) -> str:
    t = str(f.type)
    if t == "bool":
        return "switch"
    if f.name == "model_options":
        return "keyvalue"
    if t == "list[str]":
        return "repeat"
    if t == "list[int]":
        return "intlist"
    if f.name == "devices":
        return "devices"
    return "value"


def _python_type(f: dataclasses.Field[Any], kind: str) -> Any:
    if kind == "switch":
        return bool
    if kind in ("repeat", "keyvalue"):
        return list[str] | None
    base = str(f.type).replace("| None", "").strip()
    return {"int": int, "float": float}.get(base, str) | None


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _recipe_note(name: str, default: Any) -> str:
    """``megnet 0.001, schnet 0.001``: the recipe values that differ from the dataclass default."""
    by_value: dict[str, list[str]] = {}
    for model in C.recipe_names():
        v = C.load_recipe(model).get(name, default)
        if v != default:
            by_value.setdefault(_shown(v) if v is not None else "off", []).append(model)
    return ", ".join(f"{'/'.join(ms)} {v}" for v, ms in by_value.items())


def _options() -> tuple[list[_Flag], list[inspect.Parameter]]:
    flags: list[_Flag] = []
    params: list[inspect.Parameter] = []
    for f in dataclasses.fields(TrainConfig):
        md = f.metadata
        if md.get("cli", True) is False:
            continue
        kind = _kind(f)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        decls = tuple(md.get("flags") or ()) or ("--" + f.name.replace("_", "-"),)
        param = decls[0].lstrip("-").replace("-", "_") if kind == "switch" else f.name
        help_text = md.get("help", "")
        choices = md.get("choices")
        if choices and "|" not in help_text:
            help_text = f"{' | '.join(choices)}{'; ' + help_text if help_text else ''}"
        if kind == "switch":
            info = typer.Option(False, *decls, help=help_text, show_default=False)
        else:
            note = _recipe_note(f.name, default)
            if note:
                help_text = f"{help_text} (recipes: {note})"
            shown = None if default in (None, [], {}, "") else default
            if kind in ("intlist", "devices") and shown is not None:
                shown = _shown(shown)
            info = typer.Option(
                shown,
                *decls,
                help=help_text,
                metavar=md.get("metavar"),
                show_default=shown is not None and md.get("show_default", True),
            )
        flags.append(_Flag(f.name, param, kind))
        params.append(
            inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=_python_type(f, kind))
        )
    return flags, params


def _to_value(flag: _Flag, raw: Any) -> Any:
    """The text of one given option as the field's value (``ValueError`` for bad text)."""
    if flag.kind == "switch":  # the switch sets the opposite of the dataclass default
        return not _DEFAULTS[flag.field]
    if flag.kind == "repeat":
        return [t for item in raw for t in item.split(",") if t]
    if flag.kind == "keyvalue":
        import yaml

        opts: dict[str, Any] = {}
        for kv in raw:
            key, sep, value = kv.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--model-option takes KEY=VALUE, got {kv!r}")
            opts[key.strip()] = yaml.safe_load(value)
        return opts
    if flag.kind == "intlist":
        return C.parse_int_list(raw)
    if flag.kind == "devices":
        return int(raw) if raw.strip().lstrip("-").isdigit() else raw.strip()
    return raw


_FLAGS, _PARAMS = _options()
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def given_options(ctx: typer.Context, values: dict[str, Any]) -> dict[str, Any]:
    """Field values of the options typed on the command line (not their defaults)."""
    out: dict[str, Any] = {}
    for flag in _FLAGS:
        # by name: typer may bring its own copy of click's ParameterSource enum
        if getattr(ctx.get_parameter_source(flag.param), "name", None) != "COMMANDLINE":
            continue
        raw = values[flag.param]
        if flag.kind == "switch" and not raw:
            continue
        out[flag.field] = _to_value(flag, raw)
    return out


# ------------------------------------------------------------------ the command


def resolve_config(ctx: typer.Context, source: str | None, config: Path | None, values: dict[str, Any]) -> TrainConfig:
    """Flags + ``--config`` + recipe + defaults, checked; usage errors end the command (exit 2)."""
    try:
        flags = given_options(ctx, values)
        if source is not None:
            flags["source"] = source
        cfg = TrainConfig.resolve(flags, config)
        cfg.validate()
    except FileNotFoundError as exc:
        fail(message(exc))
    except (ValueError, KeyError, TypeError) as exc:
        fail(message(exc), code=USAGE)
    try:
        check_default_target(cfg)
    except ValueError as exc:  # exit 1, as when the library finds it reading the source
        fail(message(exc))
    if cfg.out == _DEFAULTS["out"]:
        cfg.out = default_run_dir(cfg)
    return cfg


def check_default_target(cfg: TrainConfig) -> None:
    """No target named: training takes the source's only graph-level label. For a catalog dataset
    the labels are known without reading it, so several (or none) end the command at once with
    the library's message; other sources are left to the library (it reads a few entries).
    """
    if cfg.targets or cfg.site_target:
        return
    from crystalgnn.data.catalog import ALIASES, CATALOG, catalog_key_for_file, is_catalog_name

    key = ALIASES.get(cfg.source, cfg.source) if is_catalog_name(cfg.source) else catalog_key_for_file(cfg.source)
    if key is None:
        return
    labels, site = list(CATALOG[key].units), list(CATALOG[key].site_units)
    if len(labels) > 1:
        raise ValueError(f"{key}: several labels: {', '.join(labels)}; choose with --target")
    if not labels:
        also = f" (per-site labels: {', '.join(site)}; choose with --site-target)" if site else ""
        raise ValueError(f"{key}: no graph-level label{also}")


def source_name(cfg: TrainConfig) -> str:
    return Path(str(cfg.source)).name.split(".")[0] if cfg.source else ""


def default_run_dir(cfg: TrainConfig) -> str:
    """``runs/SOURCE-TARGETS-MODEL-sSEED`` (the CLI's run folder when --out is not given)."""
    target = "-".join(cfg.targets) or cfg.site_target or "default-target"
    return f"runs/{source_name(cfg)}-{target}-{cfg.model}-s{cfg.seed}"


class _Terminated(KeyboardInterrupt):
    """SIGTERM as an interrupt: Lightning stops the fit gracefully (last.ckpt stays)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    if os.getpid() != getattr(_on_sigterm, "pid", None):  # a forked child (the data-parsing pool): die quietly
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    if getattr(_on_sigterm, "received", False):  # already stopping (a second SIGTERM): let it finish
        return
    _on_sigterm.received = True  # type: ignore[attr-defined]
    raise _Terminated()


def train_command(ctx: typer.Context, **values: Any) -> None:
    """Train a model; re-running the same command resumes an interrupted run.

    Options resolve as: defaults shown here < the model's recipe (--model megnet/schnet/alignn:
    the published training settings, crystalgnn/training/recipes/) < --config FILE < flags.
    The resolved configuration is saved as config.yaml in the run folder.
    """
    source = values.pop("source")
    config = values.pop("config")
    show_config = values.pop("show_config")
    cfg = resolve_config(ctx, source, config, values)
    if show_config:
        import yaml

        console.print(
            yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True), end="", markup=False, highlight=False
        )
        return
    try:
        cfg.check_accelerator()
    except RuntimeError as exc:
        fail(message(exc))
    from crystalgnn.evaluation.plots import isolate_matplotlib

    isolate_matplotlib(cfg.cache_dir)  # before Lightning (and its torchmetrics) imports matplotlib
    quiet_lightning()
    from crystalgnn.data.dataset import DataError
    from crystalgnn.evaluation.reports import run_figures
    from crystalgnn.training.run import RunConfigMismatch
    from crystalgnn.training.run import train as run_train

    _on_sigterm.received = False  # type: ignore[attr-defined]
    _on_sigterm.pid = os.getpid()  # type: ignore[attr-defined]
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if cfg.ensemble > 1:
            from crystalgnn.training.ensemble import train_ensemble

            result = train_ensemble(cfg)
        else:
            result = run_train(cfg)
    except (RunConfigMismatch, DataError, KeyError, ValueError) as exc:
        fail(message(exc))
    except (KeyboardInterrupt, SystemExit) as exc:  # Lightning turns an interrupt into SystemExit(1)
        terminated = bool(getattr(_on_sigterm, "received", False))
        if not (terminated or isinstance(exc, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt)):
            raise
        why = "terminated (SIGTERM)" if terminated else "interrupted"
        err.print(f"[yellow]{why}[/]: {cfg.out} keeps the last finished epoch; run the same command again to resume")
        raise typer.Exit(143 if terminated else 130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    run_dirs = [result.run_dir / name for name in result.metrics.get("members", [])] or [result.run_dir]
    for run_dir in run_dirs:
        run_figures(run_dir)
    m = result.metrics
    for part, why in (m.get("skipped_split_ids") or {}).items():
        shown = "; ".join(f"{i} ({r})" for i, r in list(why.items())[:5]) + (" ..." if len(why) > 5 else "")
        err.print(f"[yellow]{len(why)} {part} ids of the split left out[/] (--skip-missing-split-ids): {escape(shown)}")
    _say_rejections(run_dirs[0] / "rejected.csv")
    console.print(f"[bold green]done[/]: {result.run_dir}")
    console.print(
        json.dumps(
            {k: m[k] for k in ("test", "mean_std", "train_time_s", "time_per_epoch_s", "n_parameters") if k in m},
            indent=1,
        )
    )


def _say_rejections(path: Path, shown: int = 10) -> None:
    """How many entries the run left out and why (counts per kind, the first few by name)."""
    import csv
    from collections import Counter

    from crystalgnn.data.dataset import reason_kind

    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    kinds = Counter(reason_kind(r["reason"]) for r in rows)
    counts = escape(", ".join(f"{k}: {n}" for k, n in kinds.most_common()))
    err.print(f"[yellow]{len(rows)} entries rejected[/] ({counts})")
    for r in rows[:shown]:
        err.print(f"  - {r['id']} ({r['source']}): {r['reason']}", markup=False, highlight=False, soft_wrap=True)
    err.print(f"  full list: {path}", markup=False)


train_command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        inspect.Parameter(
            "source",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=str | None,
            default=typer.Argument(
                None, metavar="SOURCE", help="file, folder or dataset short name", show_default=False
            ),
        ),
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Path | None,
            default=typer.Option(
                None,
                "--config",
                "-c",
                help="YAML file of option: value (keys as saved in a run's config.yaml, e.g. targets, n_jobs; flag names such as jobs work too); flags override it",
            ),
        ),
        *_PARAMS,
        inspect.Parameter(
            "show_config",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=bool,
            default=typer.Option(
                False, "--show-config", help="print the resolved configuration (YAML) and exit; reads no data"
            ),
        ),
    ]
)
train_command.__annotations__ = {p.name: p.annotation for p in train_command.__signature__.parameters.values()}  # type: ignore[attr-defined]
app.command("train")(train_command)
