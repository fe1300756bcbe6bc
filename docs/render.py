"""Render the docs' tables from what owns their facts: results files, the env's docstring,
the presets and the agent's settings.

    python docs/render.py            # rewrite every block that is out of date
    python docs/render.py --check    # list the pages that disagree with their sources

A page marks a block ``<!-- render: NAME [ARGUMENT] -->`` ... ``<!-- end -->``; everything
between the two is rewritten from the source ``NAME`` names, so a measured figure is typed
nowhere by hand: run the measurement, commit its results file, run this script. The tests
run ``--check``.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import inspect
import json
import re
import statistics
from collections.abc import Callable
from pathlib import Path

from qan_env import PRESETS, LRScheduleEnv
from qan_env.comparison import Comparison
from qan_env.config import config_from_dict
from qan_env.evaluation import EpisodeRecord, comparison_table
from qan_env.training.models import parameter_count

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/*.md")
BLOCK = re.compile(r"(<!-- render: ([^>]*?) -->)(.*?)(<!-- end -->)", re.S)
BENCHMARKS = ROOT / "benchmarks" / "results"
NOT_MEASURED = "not measured: no results file yet"


def load(path: str | Path) -> dict:
    return json.loads((ROOT / path).read_text())


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n" + "\n".join(lines) + "\n"


def comparison(folder: str) -> str:
    """The comparison table of ``folder``'s ``results.json`` (``compare_schedules.py``)."""
    epochs = config_from_dict(load(Path(folder) / "results.json")["env"]).epochs
    return "\n" + comparison_table(records_of(folder), epochs)


def records_of(folder: str) -> list[EpisodeRecord]:
    return [EpisodeRecord(**episode) for episode in load(Path(folder) / "results.json")["episodes"]]


def per_seed(folder: str) -> str:
    """Each policy's final test accuracy on each seed of ``folder``; * marks a run that
    diverged (its last accuracy before it did)."""
    records = records_of(folder)
    seeds = list(dict.fromkeys(record.seed for record in records))
    rows = []
    for name in dict.fromkeys(record.policy for record in records):
        runs = {r.seed: r for r in records if r.policy == name}
        cells = [f"{runs[s].final_accuracy:.3f}{'*' if runs[s].diverged else ''}" for s in seeds]
        rows.append([name, *cells])
    return table(["policy", *(f"seed {seed}" for seed in seeds)], rows)


def feedback_share(folder: str) -> str:
    """The share of steps at which the trained policy's action differed between seeds."""
    return f"{100 * load(Path(folder) / 'results.json')['feedback_share']:.0f}%"


def chosen_peak(folder: str) -> str:
    """The tuned cosine's peak lr, chosen on the tuning seeds."""
    return f"{load(Path(folder) / 'results.json')['tuning']['chosen_peak']:g}"


def env_docstring(_: str = "") -> str:
    """``LRScheduleEnv``'s docstring, the MDP's owner, its sections one level down."""
    text = inspect.cleandoc(LRScheduleEnv.__doc__)
    sections = text.split("\n## ")[1:]
    lines = []
    for section in sections:
        title, _, body = section.partition("\n")
        if title == "Example":
            body = "```python\n" + body.strip() + "\n```\n"
        lines += [f"### {title}", "", body.strip(), ""]
    return "\n" + "\n".join(lines)


def docstring(module: str) -> str:
    """A module's docstring, the owner of what it describes (``qan_env.features``)."""
    return "\n" + inspect.getdoc(importlib.import_module(module)) + "\n"


def presets(_: str = "") -> str:
    rows = []
    for name, config in PRESETS.items():
        data = config.dataset
        if data == "synthetic":
            data += f", {config.synthetic_train_size:,} train / {config.synthetic_test_size:,} test"
        parameters = parameter_count(config.depth, config.widen_factor)
        rows.append(
            [
                f"`{name}`",
                f"WRN-{config.depth}-{config.widen_factor} ({parameters:,} parameters)",
                data,
                f"{config.epochs} epochs, batch {config.batch_size}",
                f"{config.steps_per_episode:,}",
            ]
        )
    return table(["preset", "network", "data", "budget", "steps per episode"], rows)


def agent_settings(script: str) -> str:
    """The ``Args`` fields of an agent script: flag, default and its docstring (the why)."""
    tree = ast.parse((ROOT / script).read_text())
    args = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Args")
    rows = []
    for field, doc in zip(args.body, args.body[1:], strict=False):
        if not (isinstance(field, ast.AnnAssign) and isinstance(doc, ast.Expr)):
            continue
        default = ast.unparse(field.value)
        default = "none" if default == "field(default_factory=list)" else default
        flag = "--" + field.target.id.replace("_", "-")
        rows.append([f"`{flag}`", f"`{default}`", " ".join(doc.value.value.split())])
    return table(["flag", "default", "what, and why this default"], rows)


def synthetic_difficulty(_: str = "") -> str:
    results = load(BENCHMARKS / "synthetic_difficulty.json")
    accuracy = results["final_test_accuracy"]
    header = ["constant lr", *accuracy]
    row = [f"final test accuracy (mean of {results['seeds']} seeds)"]
    return table(header, [row + [f"{value:.3f}" for value in accuracy.values()]])


def benchmark_rows() -> list[list[str]]:
    """One row per headline figure of ``benchmarks/results``: figure, target, measured, how."""
    rows: list[list[str]] = []

    def add(figure: str, target: str, measured: str, script: str) -> None:
        rows.append([figure, target, measured, f"`python benchmarks/{script}`"])

    overhead = load(BENCHMARKS / "env_overhead_quick_cpu.json")["results"]
    for r in overhead:
        add(
            f"env / plain loop, images per second, quick network, {r['variant']}, "
            f"{r['iterations_per_step']} iteration(s) per step",
            f">= {r['target']}" if r["variant"] != "held-out reward" else "-",
            f"{r['median_round_ratio']:.3f} (the env's own work: {r['env_ms_per_step']:.2f} ms, "
            f"{100 * r['env_share_of_step']:.1f}% of a step)",
            "env_overhead.py",
        )
    cost = load(BENCHMARKS / "episode_cost_quick_cpu.json")
    seconds = {name: r["seconds_per_episode"] for name, r in cost["results"].items()}
    ours, theirs = seconds["learning MDP"], seconds["paper MDP"]
    measured = f"{cost['ratio']:.2f} ({ours:.1f} s against {theirs:.1f} s)"
    add("seconds per quick episode, learning MDP / paper MDP", "-", measured, "episode_cost.py")
    for r in load(BENCHMARKS / "features_cost_cpu.json")["results"]:
        ours, theirs = r["statistics_ms"], r["iteration_ms"]
        measured = f"{100 * r['ratio']:.2f}% ({ours:.2f} ms against {theirs:.0f} ms)"
        figure = f"weight statistics / one training iteration, {r['case']}"
        add(figure, f"<= {100 * r['target']:.0f}%", measured, "features_cost.py")
    pipeline = load(BENCHMARKS / "data_pipeline_cpu.json")
    speeds = pipeline["batches_per_second"]
    ours, theirs = speeds["device_loader"], speeds["torchvision_2_workers"]
    measured = f"{pipeline['ratio']:.1f} ({ours:,.0f} against {theirs:,.0f})"
    figure = "device-resident loader / torchvision `DataLoader` with 2 workers, batches per second"
    add(figure, f">= {pipeline['target']:g}", measured, "data_pipeline.py")
    memory = load(BENCHMARKS / "memory_tiny_cpu.json")
    resident = memory["resident_mb"]
    add(
        f"resident memory after {memory['episodes']} tiny episodes / after the first",
        f"<= {memory['target']}",
        f"{memory['ratio']:.3f} ({resident[0]:.0f} MB, then {resident[-1]:.0f} MB)",
        "memory.py",
    )
    for device in ("cpu", "cuda"):
        path = BENCHMARKS / f"vector_env_{device}.json"
        target = "0.9 at N = 8" if device == "cpu" else "10 at N = 32"
        figure = f"native vector env / `SyncVectorEnv`, env steps per second, {device}"
        script = "vector_env.py" + ("" if device == "cpu" else f" --device {device}")
        if not path.is_file():
            add(figure, f">= {target}", NOT_MEASURED, script)
            continue
        results = load(path)
        at = results["target"]["num_envs"]
        ratio = next(r["native / sync"] for r in results["results"] if r["num_envs"] == at)
        add(figure, f">= {target}", f"{ratio:.3f} at N = {at}", script)
    agents = load(BENCHMARKS / "agent_envs_cpu.json")
    add(
        f"the SB3 agent's wall time for the same env steps ({agents['episodes']} quick "
        f"episodes), 1 env / 2 envs at once",
        "-",
        f"{agents['speedup_native']:.3f} native, {agents['speedup_subprocess']:.3f} subprocess",
        "agent_envs.py",
    )
    path = BENCHMARKS / "policy_lr_cpu.json"
    figure = "PolicyLR's own work / one training iteration, quick network, CPU"
    if path.is_file():
        cost = load(path)
        own, plain = cost["scheduler_seconds_per_iteration"], cost["plain_seconds_per_iteration"]
        measured = (
            f"{100 * cost['scheduler_share']:.2f}% ({1e3 * own:.3f} ms against {1e3 * plain:.1f} "
            f"ms; with the held-out loss it calls: {100 * cost['with_heldout_share']:.1f}%)"
        )
        add(figure, f"<= {100 * cost['target']:.0f}%", measured, "policy_lr.py")
    else:
        add(figure, "<= 1%", NOT_MEASURED, "policy_lr.py")
    gpu = BENCHMARKS / "gpu_cuda.json"
    figure = "WRN-40-4 seconds per epoch on a GPU (fp32; bf16 + channels_last)"
    if gpu.is_file():
        epochs = load(gpu)["epochs"]
        measured = "; ".join(
            f"{e['seconds_per_epoch']:.1f} s ({e['precision']}, {e['peak_memory_gib']:.1f} GiB)"
            for e in epochs
        )
        add(figure, "-", measured, "gpu.py --device cuda")
    else:
        add(figure, "-", NOT_MEASURED, "gpu.py --device cuda")
    return rows


def benchmarks(_: str = "") -> str:
    return table(["figure", "target", "measured", "command"], benchmark_rows())


def vector_env(device: str) -> str:
    path = BENCHMARKS / f"vector_env_{device}.json"
    if not path.is_file():
        return f"\n{NOT_MEASURED} (`python benchmarks/vector_env.py --device {device}`).\n"
    results = load(path)["results"]
    modes = ["native", "native batched", "sync", "async"]
    rows = [
        [str(r["num_envs"])]
        + [f"{r[mode]:.2f}" if mode in r else "-" for mode in modes]
        + [f"{r['native / sync']:.3f}"]
        for r in results
    ]
    return table(["N", *modes, "native / sync"], rows)


def agent_envs(_: str = "") -> str:
    results = load(BENCHMARKS / "agent_envs_cpu.json")
    one = results["median_seconds"]["1 env"]
    rows = [
        [name, f"{seconds:.1f}", f"{one / seconds:.2f}"]
        for name, seconds in results["median_seconds"].items()
    ]
    return table(["envs", "seconds (median of rounds)", "speed-up"], rows)


def agent_runs(_: str = "") -> str:
    """The design log's configurations tried (``docs/experiments/agent_runs.json``)."""
    rows = []
    for run in load("docs/experiments/agent_runs.json")["runs"]:
        accuracies = run.get("validation_accuracy")
        if "validation_file" in run:
            accuracies = [e["final_test_accuracy"] for e in load(run["validation_file"])]
        validation = "not evaluated"
        if accuracies:
            mean = sum(accuracies) / len(accuracies)
            validation = f"{mean:.3f} ({', '.join(f'{a:.3f}' for a in accuracies)})"
        minutes = run["wall_minutes"]
        time = f"{run['episodes_done']} of {run['episodes']}, "
        time += "wall time not recorded" if minutes is None else f"{minutes:.0f} min"
        rows.append([run["run"], run["configuration"], time, validation, run["notes"]])
    header = ["run", "configuration", "episodes, wall time", "validation accuracy", "notes"]
    return table(header, rows)


def fixed_schedules(path: str) -> str:
    """The fixed schedules of ``docs/experiments/fixed_schedules.py``'s output."""
    results = load(path)
    rows = [
        [name, f"{s['final_test_accuracy']:.3f}", f"{s['final_heldout_loss']:.3f}"]
        for name, s in results["summary"].items()
    ]
    seeds = ", ".join(str(seed) for seed in results["seeds"])
    header = ["schedule", f"final test accuracy (mean of seeds {seeds})", "final held-out loss"]
    return table(header, rows)


def best_in_bold(cells: dict, best: object) -> list[str]:
    """A probe table's cells, mean accuracies to three places, the one at ``best`` in bold
    and a missing one (None) empty."""
    return [
        "" if value is None else (f"**{value:.3f}**" if key == best else f"{value:.3f}")
        for key, value in cells.items()
    ]


def landscape_probe(path: str) -> str:
    """The probe's mean final test accuracy per configuration and cosine peak (the best in
    bold), from its JSON lines (``docs/experiments/landscape_probe.py``); a configuration
    measured at fewer than three peaks (a probe stopped early) is left out."""
    rows = [json.loads(line) for line in (ROOT / path).read_text().splitlines()]
    peaks = sorted({row["peak"] for row in rows})
    table_rows = []
    for probe in dict.fromkeys(row["probe"] for row in rows):
        cells = {}
        for peak in peaks:
            runs = [r["final_accuracy"] for r in rows if r["probe"] == probe and r["peak"] == peak]
            cells[peak] = sum(runs) / len(runs) if runs else None
        if sum(value is not None for value in cells.values()) < 3:
            continue
        best = max((value, peak) for peak, value in cells.items() if value is not None)[1]
        seeds = len({r["seed"] for r in rows if r["probe"] == probe})
        table_rows.append(
            [f"{probe} ({seeds} seed{'s' if seeds > 1 else ''})", *best_in_bold(cells, best)]
        )
    return table(["configuration", *(f"peak {peak:g}" for peak in peaks)], table_rows)


def peak_probe(path: str) -> str:
    """A probe's mean final test accuracy per configuration, cosine peak (the best in bold)
    and Prodigy with its cosine, from its JSON (``docs/experiments/general_v6/landscape.py``)."""
    episodes = json.loads((ROOT / path).read_text())["episodes"]
    contenders = list(dict.fromkeys(e["contender"] for e in episodes))
    peaks = [c for c in contenders if c != "Prodigy"]
    table_rows = []
    for probe in dict.fromkeys(e["probe"] for e in episodes):
        mine = [e for e in episodes if e["probe"] == probe]
        cells = {}
        for contender in contenders:
            runs = [e["final"] for e in mine if e["contender"] == contender]
            cells[contender] = sum(runs) / len(runs) if runs else None
        best = max((cells[p], p) for p in peaks if cells[p] is not None)[1]
        seeds = len({e["seed"] for e in mine})
        table_rows.append(
            [f"{probe} ({seeds} seed{'s' if seeds > 1 else ''})", *best_in_bold(cells, best)]
        )
    header = ["configuration", *(f"peak {p}" for p in peaks), "Prodigy"]
    return table(header, table_rows)


def multiplier_probe(path: str) -> str:
    """The Prodigy-multiplier probe (``docs/experiments/prodigy_multiplier/probe.py``): each
    run's final test accuracy per multiplier of Prodigy's cosine, mean over its seeds (the
    best in bold), then the mean over the runs measured at every multiplier."""
    episodes = json.loads((ROOT / path).read_text())["episodes"]
    multipliers = sorted({e["multiplier"] for e in episodes})
    means: dict[str, dict[float, float]] = {}
    for run in dict.fromkeys(e["instance"] for e in episodes):
        cells = {
            m: [e["final"] for e in episodes if e["instance"] == run and e["multiplier"] == m]
            for m in multipliers
        }
        if all(cells.values()):
            means[run] = {m: sum(runs) / len(runs) for m, runs in cells.items()}
    if not means:
        raise ValueError(f"{path}: no run is measured at every multiplier yet, nothing to average")
    means[f"mean of {len(means)} runs"] = {
        m: sum(row[m] for row in means.values()) / len(means) for m in multipliers
    }
    rows = [[run, *best_in_bold(cells, max(cells, key=cells.get))] for run, cells in means.items()]
    return table(["run", *(f"x{m:g}" for m in multipliers)], rows)


@functools.cache  # a comparison's aggregates bootstrap for minutes: once per block text
def instance_comparison(argument: str) -> str:
    """A part of an instance comparison's report (``qan_env.comparison``): "FOLDER PART",
    PART one of per-instance, aggregate, far, tuning."""
    folder, part = argument.split()
    held = Comparison.load(ROOT / folder)
    parts = {
        "per-instance": held.per_instance_table,
        "aggregate": lambda: held.aggregate_table() + "\n" + held.coverage(),
        "far": lambda: held.aggregate_table(instances=held.far),
        "tuning": held.tuning_table,
    }
    return "\n" + parts[part]()


def own_loop(path: str) -> str:
    """``examples/own_training_loop.py``'s final test accuracies, per seed and their mean."""
    results = load(ROOT / path)
    rows = [
        [str(run["seed"]), f"{run['policy']:.3f}", f"{run['cosine']:.3f}"]
        for run in results["runs"]
    ]
    mean = {
        key: statistics.fmean(run[key] for run in results["runs"]) for key in ("policy", "cosine")
    }
    rows.append(["mean", f"{mean['policy']:.3f}", f"{mean['cosine']:.3f}"])
    header = ["seed", f"PolicyLR ({results['policy']})", f"cosine from {results['initial_lr']:g}"]
    return table(header, rows)


RENDERERS: dict[str, Callable[[str], str]] = {
    "comparison": comparison,
    "per-seed": per_seed,
    "feedback-share": feedback_share,
    "chosen-peak": chosen_peak,
    "env-docstring": env_docstring,
    "docstring": docstring,
    "presets": presets,
    "agent-settings": agent_settings,
    "synthetic-difficulty": synthetic_difficulty,
    "benchmarks": benchmarks,
    "vector-env": vector_env,
    "agent-envs": agent_envs,
    "agent-runs": agent_runs,
    "fixed-schedules": fixed_schedules,
    "landscape-probe": landscape_probe,
    "peak-probe": peak_probe,
    "multiplier-probe": multiplier_probe,
    "instance-comparison": instance_comparison,
    "own-loop": own_loop,
}


def render(text: str) -> str:
    """``text`` with every block rewritten from its source."""

    def block(match: re.Match) -> str:
        name, _, argument = match.group(2).strip().partition(" ")
        if name not in RENDERERS:
            raise ValueError(f"unknown block {name!r}: the blocks are {', '.join(RENDERERS)}")
        return match.group(1) + RENDERERS[name](argument) + match.group(4)

    return BLOCK.sub(block, text)


def pages(root: Path = ROOT) -> list[Path]:
    return sorted(path for pattern in PAGES for path in root.glob(pattern))


def out_of_date(root: Path = ROOT) -> list[Path]:
    """The pages of ``root`` whose blocks are not what their sources say."""
    return [page for page in pages(root) if render(page.read_text()) != page.read_text()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; list stale pages")
    args = parser.parse_args()
    stale = out_of_date()
    if args.check:
        if stale:
            names = ", ".join(str(page.relative_to(ROOT)) for page in stale)
            raise SystemExit(f"out of date (run python docs/render.py): {names}")
        return
    for page in stale:
        page.write_text(render(page.read_text()))
        print(f"rendered {page.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
