"""Every override of upstream behaviour, in one place.

Each module works around one library's behaviour, narrowly: its docstring
names the upstream issue, the versions it was checked on (pinned in
`setup.cfg`) and the test that fails when upstream changes, so that a
workaround goes when it is no longer needed.

- `keras_adamw`: `AdamW` computes its learning rate once per step, not once
  per variable (no upstream issue found). keras >=3.15,<3.16;
  tests/test_optimizers.py.
- `keras_callbacks`: `CSVLogger`, `ModelCheckpoint` and `BackupAndRestore`
  write atomically, through their private `_save_model` and
  `_should_save_model` (keras-team/keras#17012, #20463). keras
  >=3.15,<3.16; tests/test_checkpoints.py, tests/test_compat.py.
- `keras_multiworker`: `Model._maybe_symbolic_build`, `train_step` and
  `test_step` under `MultiWorkerMirroredStrategy` (keras-team/keras#20585).
  keras >=3.15,<3.16; tests/test_distribute.py.
- `keras_tuner`: `Tuner._populate_initial_space`, and the text of the
  consecutive-failures stop (keras-team/keras-tuner#174, #604, #925).
  keras-tuner >=1.4.7,<1.5; tests/test_compat.py.
- `tfds`: the absl warning of `is_prepared` (tensorflow/datasets#2613), a
  full disk's text. tensorflow-datasets >=4.9.3,<4.10;
  tests/test_datasets.py, tests/test_build_reliability.py.
- `keras_slots`: the optimizer's slots built before the first traced step
  (tensorflow/tensorflow#48851). keras >=3.15,<3.16; tests/test_model.py.
- `tensorflow_startup`: TensorFlow's start-up lines that
  `TF_CPP_MIN_LOG_LEVEL` no longer hides (tensorflow/tensorflow#100442,
  #59849). tensorflow >=2.16,<2.22; tests/test_console.py.
- `gradio_image`: an image input whose upload reaches the handler unopened
  (Gradio's `Image.preprocess` decodes it first). gradio >=6.31,<7;
  tests/test_environment.py.

Elsewhere, by layering: the dataset builder implements TFDS's
`_download_and_prepare` hook (`tfds_geoguessr`, the layer below `keras_geo`;
`tests/test_compat.py` checks the hook's signature).
"""
