"""Take out of comparisons' results.json the episodes that the divergence rule of earlier
versions ended on a held-out loss above ``max_loss`` while the training loss was finite and
below it, so that rerunning each comparison's command runs them again under today's rule.

Until this rule changed, a step whose eval-mode held-out loss exceeded ``max_loss`` ended
the episode as diverged. Early in a run a large step leaves batch norm's running statistics
behind the weights: the held-out loss spikes and recovers, and the run trains on (a cosine
from 0.8 on digits: a held-out loss of 388 at its first step, a training loss of 2.2, and
0.98 test accuracy at the end when let run). Every divergence recorded in the general set's
comparisons was of that kind. Now divergence is the training loss's alone
(``qan_env.episode.Episode.finish``).

    python docs/experiments/heldout_spikes/migrate.py docs/results/general-baselines ...

prints what it took out of each folder and rewrites its results.json (the episodes taken
out are named in heldout_spikes.json beside it, with their numbers, for the record).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from qan_env.files import write_atomically


def ended_on_a_heldout_spike(episode: dict, max_loss: float) -> bool:
    train, heldout = episode.get("train_losses") or [], episode.get("heldout_losses") or []
    return (
        bool(episode.get("diverged"))
        and bool(train)
        and math.isfinite(train[-1])
        and train[-1] <= max_loss
        and bool(heldout)
        and not heldout[-1] <= max_loss
    )


def migrate(folder: Path) -> int:
    path = folder / "results.json"
    results = json.loads(path.read_text())
    max_loss = results["env"]["max_loss"]
    spiked = [e for e in results["episodes"] if ended_on_a_heldout_spike(e, max_loss)]
    if not spiked:
        return 0
    results["episodes"] = [e for e in results["episodes"] if e not in spiked]
    record = folder / "heldout_spikes.json"
    earlier = json.loads(record.read_text()) if record.is_file() else []
    write_atomically(record, json.dumps(earlier + spiked) + "\n")
    write_atomically(path, json.dumps(results) + "\n")
    return len(spiked)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: took out {migrate(Path(name))} episodes ended on a held-out spike")
