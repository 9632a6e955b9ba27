"""The accuracy cost of low-precision optimizer state on the seed's MLP (issue 9): the demo's training run
(fusedoptim train's MLP and data) with Adam's state in float32, bfloat16 (rounded to nearest, and stochastically)
and float16, same seed and batches.

    python benchmarks/precision_accuracy.py [--epochs 5] [--optimizer adam] [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import importlib

import fusedoptim

train_module = importlib.import_module("fusedoptim.cli.demo.train")  # the package re-exports train(), the function
from fusedoptim.cli.demo.data import load_offline_digits  # noqa: E402 (after train_module, on purpose)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    dataset = load_offline_digits()
    print(
        f"data: {dataset.name}, {len(dataset.y_train)} train / {len(dataset.y_test)} test; "
        f"{args.optimizer}, {args.epochs} epochs, SIMD {fusedoptim.simd_level()}"
    )
    print("| state dtype | seed | final test accuracy | final train loss |")
    print("|---|---|---|---|")
    modes = [
        ("float32", {}),
        ("bfloat16", {"state_dtype": "bfloat16"}),
        ("bfloat16, stochastic rounding", {"state_dtype": "bfloat16", "rounding": "stochastic"}),
        ("float16", {"state_dtype": "float16"}),
    ]
    for label, settings in modes:
        for seed in (int(s) for s in args.seeds.split(",")):
            config = train_module.TrainConfig(
                optimizer=args.optimizer, settings=settings, epochs=args.epochs, seed=seed
            )
            result = train_module.train(dataset, config)
            last = result.history[-1]
            print(f"| {label} | {seed} | {last.test_accuracy:.4f} | {last.train_loss:.4f} |", flush=True)


if __name__ == "__main__":
    main()
