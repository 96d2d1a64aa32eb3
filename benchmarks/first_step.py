"""Usage: `python benchmarks/first_step.py [--experiment demo] [--repeats 2] [--steps 10]`

The first fine-tuning step (TensorFlow tracing the train step) and the steps
after it: a stock Keras compile against `keras_geo.model.compile_model`.

Both run the experiment's fine-tuning model (the demo's: EfficientNetV2B0
at 64 px, every layer training) with the same loss, metrics, AdamW weight
decay and learning-rate schedule (the experiment's warm-up and cosine decay);
they differ only in the optimizer:

- stock Keras: `keras.optimizers.AdamW`, built by Keras inside the first
  traced step (no distribution strategy), which evaluates the schedule once
  per trainable variable;
- keras-geo: the model as `train` compiles it (`phase.build_phase_model`):
  `keras_geo.compat.keras_adamw.AdamW` (the schedule once per step), built before
  `fit` by `compile_model`.

Each measurement runs in a fresh Python process (nothing traced before), the
two alternating `--repeats` times; the best of each is reported. Steps run
on in-memory random pixels.
"""

import argparse
import json
import math
import subprocess
import sys
import time

import common

from keras_geo.errors import UserError

VARIANTS = ("stock Keras", "keras-geo")
# The demo's training split (geoguessr/synthetic): the schedule's steps per epoch.
TRAIN_IMAGES = 880


def measure(variant, *, experiment="demo", steps=10, seed=0):
    """Times one fresh model's first training step and `steps` more; returns a dict."""
    import keras
    import numpy as np

    from keras_geo import datasets, experiments, phase
    from keras_geo import model as geo_model

    config = experiments.get(experiment)
    class_names = datasets.class_names(config.dataset)
    size, batch, classes = config.image_size, config.batch_size, len(class_names)
    steps_per_epoch = math.ceil(TRAIN_IMAGES / batch)
    keras.utils.set_random_seed(seed)
    # keras-geo: the model as `train` compiles it for fine-tuning.
    model = phase.build_phase_model(
        config, "finetune", class_names, steps_per_epoch=steps_per_epoch
    )
    if variant == "stock Keras":  # the same loss, metrics and schedule; Keras's own AdamW
        rate = phase.learning_rate_schedule(
            config, "finetune", steps_per_epoch * config.epochs_finetune
        )
        model.compile(
            optimizer=keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay),
            loss=model.loss,
            metrics=geo_model.training_metrics(classes, class_names),
        )
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, classes, (batch,))
    start = time.perf_counter()
    model.train_on_batch(images, labels)
    first = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return {
        "variant": variant,
        "optimizer": f"{type(model.optimizer).__module__}.{type(model.optimizer).__name__}",
        "trainable_variables": len(model.trainable_variables),
        "first_step_s": first,
        "step_s": (time.perf_counter() - start) / steps,
        "step_cpu_s": (time.process_time() - cpu) / steps,
        "batch_size": batch,
    }


def _in_fresh_process(variant, experiment, steps):
    argv = [sys.executable, __file__, "--variant", variant, "--experiment", experiment]
    done = subprocess.run([*argv, "--steps", str(steps)], capture_output=True, text=True)
    if done.returncode:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise UserError(f"the {variant} measurement failed: {why}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_first_step(*, experiment="demo", repeats=2, steps=10):
    """Alternates the variants in fresh processes; returns the best of each and the ratios."""
    from keras_geo.bench.train import device_description

    runs = [_in_fresh_process(v, experiment, steps) for _ in range(repeats) for v in VARIANTS]
    rows = []
    for variant in VARIANTS:
        mine = [run for run in runs if run["variant"] == variant]
        rows.append(
            {
                **min(mine, key=lambda run: run["first_step_s"]),
                "step_s": min(run["step_s"] for run in mine),
                "step_cpu_s": min(run["step_cpu_s"] for run in mine),
                "all_first_s": ", ".join(f"{run['first_step_s']:.1f}" for run in mine),
            }
        )
    stock, ours = rows
    return {
        "benchmark": "first_step",
        "experiment": experiment,
        "device": device_description(),
        "rows": rows,
        "first_step_speedup": stock["first_step_s"] / ours["first_step_s"],
        "step_cpu_ratio": stock["step_cpu_s"] / ours["step_cpu_s"],
        "images_per_second": ours["batch_size"] / ours["step_s"],
    }


def main(argv=None):
    p = common.parser(__doc__, seconds=False)
    p.add_argument("--experiment", default="demo", help="whose fine-tuning model and schedule")
    p.add_argument("--repeats", type=common.positive_int, default=2)
    p.add_argument("--steps", type=common.positive_int, default=10, help="timed steps after")
    p.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.variant:  # One measurement, in this (fresh) process: a JSON line.
        print(json.dumps(measure(args.variant, experiment=args.experiment, steps=args.steps)))
        return
    common.report(
        args,
        run_first_step,
        row_line="{variant}: {trainable_variables} trainable variables, first step "
        "{first_step_s:.1f} s (runs: {all_first_s}), then {step_s:.3f} s a step, "
        "{step_cpu_s:.3f} CPU-s a step",
        line="{device}, experiment {experiment}: first step {first_step_speedup:.2f}x faster, "
        "{step_cpu_ratio:.2f}x less CPU a step",
    )


if __name__ == "__main__":
    sys.exit(common.run(main))
