"""Generate the bundled attack scenario (seeded, so the committed files can be regenerated).

    python examples/attack-scenario/generate.py            # rewrite the committed files
    python examples/attack-scenario/generate.py --out /tmp/big --noise-scale 200   # benchmark

Writes Falco alerts as ``http_output`` posts them (one JSON object per line, keys sorted
like Falco's nlohmann::json, ``time`` with 9 fractional digits, ``output_fields`` typed),
audit Events as the API server's log backend writes them (one per line), and audit
EventLists as the webhook backend posts them (one batch per line). The story is in
README.md next to this file; the chains it must produce are in expected.json. The code
is in ``storyline/`` (its ``__init__`` lists the modules); the documents' shapes come from
the repository's ``synthetic`` library, which the benchmark's generator uses too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the repository root: storyline/ writes through the shared ``synthetic`` library
sys.path.insert(1, str(HERE.parents[1]))

from storyline.attacks import attacks  # noqa: E402 (after the path it needs)
from storyline.noise import noise  # noqa: E402
from storyline.output import write  # noqa: E402
from storyline.scenario import Scenario  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--minutes", type=int, default=20)
    parser.add_argument("--noise-scale", type=int, default=1, help="multiply the noise volume")
    args = parser.parse_args()
    scenario = Scenario(args.seed)
    attacks(scenario)
    noise(scenario, args.minutes, args.noise_scale)
    for name, count in write(scenario, args.out).items():
        print(f"{args.out / name}: {count} lines")


if __name__ == "__main__":
    main()
