"""The `geoguessr` dataset: Kaggle GeoGuessr screenshots labelled by country.

Configs: `top20` (default; the paper's 20 largest folders), `all` (the 124
folders) and `synthetic` (drawn street scenes, no download). See README.md
next to this file for the split, size and bad-input rules.
"""

import collections
import functools
import json

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

from tfds_geoguessr.geoguessr import frames, layout, limits, parallel, splits

KAGGLE_ID = "ubitquitin/geolocation-geoguessr-images-50k"
REPORT_NAME = "build_report.json"
SYNTHETIC_SEED = 20240
# Drawn scenes per country in each split of `synthetic` (1.2.0: many held-out
# scenes, so one test scene moves the demo's accuracy by 0.1 point, not 1.7).
SYNTHETIC_PER_SPLIT = {"train": 44, "validation": 10, "test": 50}
_HERE = epath.Path(__file__).parent


class BuildError(ValueError):
    """Input the user can fix: the message names the problem and the fix.

    `keras_geo.datasets.build` turns it into `keras_geo.errors.UserError`;
    this package does not import `keras_geo`.
    """


def read_labels(name: str) -> list[str]:
    """Reads a versioned label file (`labels_top20.txt`, `labels_all.txt`)."""
    text = (_HERE / name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


class GeoguessrConfig(tfds.core.BuilderConfig):
    """A `geoguessr` config: which label file and stored image size."""

    def __init__(self, *, label_file: str, image_size: int, synthetic=False, **kw):
        super().__init__(**kw)
        self.label_file = label_file
        self.image_size = image_size
        self.synthetic = synthetic


class Builder(tfds.core.GeneratorBasedBuilder):
    """Kaggle "GeoLocation - Geoguessr Images (50K)", split 90:5:5 per country."""

    VERSION = tfds.core.Version("1.2.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: configs top20, all, synthetic; frames "
        "squashed to 224x224 (synthetic 64x64); hash-ordered 90:5:5 splits.",
        "1.1.0": "A frame smaller than 224 px is squashed to its shorter side, not "
        "upscaled (a 128x128 copy is stored at 128x128); the image feature's shape is "
        "(None, None, 3). Frames of the Kaggle originals are stored as in 1.0.0.",
        "1.2.0": "synthetic: 44 / 10 / 50 scenes per country drawn for train / "
        "validation / test (was 50 split 44 / 3 / 3), so its test accuracy moves by "
        "0.1 point per scene; top20 and all unchanged.",
    }
    BUILDER_CONFIGS = [
        GeoguessrConfig(
            name="top20",
            description="The 20 largest country folders (the paper's classes), "
            "frames squashed to 224x224 (smaller frames: to their shorter side).",
            label_file="labels_top20.txt",
            image_size=frames.STORED_SIZE,
        ),
        GeoguessrConfig(
            name="all",
            description="All 124 country folders, frames squashed to 224x224 (smaller "
            "frames: to their shorter side); "
            "countries with fewer than 3 images are in train only.",
            label_file="labels_all.txt",
            image_size=frames.STORED_SIZE,
        ),
        GeoguessrConfig(
            name="synthetic",
            description="SYNTHETIC street scenes for the 20 top20 countries, 64x64, "
            "fixed seed, per country: "
            + " / ".join(f"{n} {split}" for split, n in SYNTHETIC_PER_SPLIT.items())
            + "; no download.",
            label_file="labels_top20.txt",
            image_size=64,
            synthetic=True,
        ),
    ]
    DEFAULT_CONFIG_NAME = "top20"
    # Processes that decode, convert and resize frames while TFDS writes
    # (`keras_geo.datasets.build` sets it; 1: all in this process). The
    # examples do not depend on it.
    num_workers = 1
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download the Kaggle dataset `{KAGGLE_ID}` (about 6.8 GB; needs a Kaggle account
and API token, see https://www.kaggle.com/docs/api):

    kaggle datasets download -d {KAGGLE_ID} -p MANUAL_DIR

and pass `--manual-dir MANUAL_DIR` (default: <data_dir>/downloads/manual).
MANUAL_DIR may hold the zip as downloaded, the extracted `compressed_dataset/`
folder, or the country folders (`France/`, `Japan/`, ...) directly.
"""

    def _info(self) -> tfds.core.DatasetInfo:
        # Drawn scenes have one size; a frame is stored at most at the config's size.
        size = self.builder_config.image_size if self.builder_config.synthetic else None
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(size, size, 3), encoding_format="jpeg"),
                    "label": tfds.features.ClassLabel(names=self._labels()),
                    "file_name": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
            homepage=f"https://www.kaggle.com/datasets/{KAGGLE_ID}",
        )

    def _labels(self) -> list[str]:
        return read_labels(self.builder_config.label_file)

    def _download_and_prepare(self, dl_manager, download_config=None, **kwargs):
        self._report = {"config": self.builder_config.name, "skipped": []}
        self._report["per_country"] = {s: collections.Counter() for s in splits.SPLITS}
        # A `.zip` given as the manual dir: TFDS' `dl_manager.manual_dir` wants a folder.
        self._manual_file = None
        given = download_config and download_config.manual_dir
        if given and epath.Path(given).is_file():
            self._manual_file = epath.Path(given)
        super()._download_and_prepare(dl_manager, download_config, **kwargs)
        if not self.builder_config.synthetic:
            _check_examples(self.builder_config.name, self._labels(), self._report)
        report = _finish_report(self._report, self.info.splits)
        text = json.dumps(report, indent=2, ensure_ascii=False)
        (self.data_path / REPORT_NAME).write_text(text + "\n", encoding="utf-8")

    def _split_generators(self, dl_manager):
        if self.builder_config.synthetic:
            return self._synthetic_splits()
        try:
            manual_dir = self._manual_file or dl_manager.manual_dir
            source = layout.locate(manual_dir, read_labels("labels_all.txt"))
        except (AssertionError, layout.LayoutError) as error:
            first_line = str(error).split(". Create it")[0].splitlines()[0]
            raise BuildError(
                f"{first_line}. {' '.join(self.MANUAL_DOWNLOAD_INSTRUCTIONS.split())}"
            ) from None
        self._report["source"] = str(source)
        self._report["manual_dir"] = str(manual_dir)
        assigned = self._assign(source)
        empty = [split for split in splits.SPLITS if not assigned[split]]
        if empty:
            raise BuildError(
                f"Split(s) {empty} would be empty: a country needs at least 3 images to "
                f"give one to validation and test. Add images under {source}."
            )
        return {
            split: self._generate_examples(source, assigned[split], split)
            for split in splits.SPLITS
        }

    def _assign(self, source):
        """Lists, filters and checks the files; returns `{split: [Entry]}`."""
        entries, outside = layout.list_files(source)
        assigned, skipped, excluded = assign_files(
            entries, outside, self._labels(), self.builder_config.name
        )
        self._report["skipped"] += skipped
        self._report["excluded_folders"] = excluded
        return assigned

    def _generate_examples(self, source, entries, split):
        size = self.builder_config.image_size
        max_pixels = limits.max_pixels()
        max_bytes = limits.max_file_bytes(max_pixels)
        counts = self._report["per_country"][split]
        with layout.reader(source, max_bytes) as read:
            read_frames = (frames.read(read, entry) for entry in entries)
            convert = functools.partial(frames.convert_frame, size=size, max_pixels=max_pixels)
            # At most one file's budget of undecoded bytes waits for the workers.
            converted = parallel.ordered_map(
                convert, read_frames, self.num_workers, weight=_frame_bytes, max_weight=max_bytes
            )
            for entry, (image, reason) in zip(entries, converted, strict=True):
                if reason:
                    self._report["skipped"].append({"file": entry.file_name, "reason": reason})
                    continue
                counts[entry.folder] += 1
                yield (
                    entry.file_name,
                    {"image": image, "label": entry.folder, "file_name": entry.file_name},
                )

    def _synthetic_splits(self):
        self._report["source"] = f"synthetic (seed {SYNTHETIC_SEED})"
        return {split: self._generate_synthetic(split) for split in splits.SPLITS}

    def _generate_synthetic(self, split):
        from tfds_geoguessr.geoguessr.synthetic import draw_scene

        counts = self._report["per_country"][split]
        size = self.builder_config.image_size
        for label, country in enumerate(self._labels()):
            for index in range(SYNTHETIC_PER_SPLIT[split]):
                key = f"{country}/{split}_{index:03d}.jpg"
                seed = [SYNTHETIC_SEED, label, splits.SPLITS.index(split), index]
                scene = draw_scene(country, np.random.default_rng(seed), size)
                image = Image.fromarray(np.asarray(scene, np.uint8))
                counts[country] += 1
                yield key, {"image": frames.encode_jpeg(image), "label": country, "file_name": key}


def _frame_bytes(frame):
    """The weight of a `frames.read` result in the build's window: its bytes."""
    return len(frame[0] or b"")


def assign_files(entries, outside, labels, config_name):
    """Filters the listed files, checks the folders and splits each country.

    Args:
        entries: `layout.Entry` of every file below a top-level folder.
        outside: Paths of files in no top-level folder.
        labels: The config's countries.
        config_name: "top20" checks that `labels` are the 20 largest folders.

    Returns:
        `(assigned, skipped, excluded)`: `{split: [Entry]}` in key order,
        `[{"file", "reason"}]` of files not tried as images, and
        `{folder: {"files", "reason"}}` of folders not in `labels`.

    Raises:
        BuildError: a country of `labels` has no files, or (top20) is not
            among the 20 largest folders.
    """
    skipped = [{"file": p, "reason": "not in a country folder"} for p in outside]
    by_folder = collections.defaultdict(list)
    for entry in entries:
        reason = layout.skip_reason(entry)
        if reason:
            skipped.append({"file": entry.file_name, "reason": reason})
        else:
            by_folder[entry.folder].append(entry)
    _check_folders(config_name, labels, by_folder)
    assigned = {split: [] for split in splits.SPLITS}
    for country in labels:
        files = {e.file_name: e for e in by_folder[country]}
        for key, split in sorted(splits.assign(files).items()):
            assigned[split].append(files[key])
    skipped.sort(key=lambda item: item["file"])
    return assigned, skipped, _excluded(labels, by_folder)


def _finish_report(report, split_infos):
    """Adds the totals to the report gathered during generation."""
    report["num_examples"] = {name: s.num_examples for name, s in split_infos.items()}
    reasons = collections.Counter(item["reason"].split(":")[0] for item in report["skipped"])
    report["skipped_counts"] = dict(sorted(reasons.items()))
    report["skipped"].sort(key=lambda item: item["file"])
    report["per_country"] = {
        split: dict(sorted(counts.items())) for split, counts in report["per_country"].items()
    }
    return report


def _check_examples(config_name, labels, report):
    """Raises BuildError if a country of `labels` got no example (all files skipped)."""
    stored = collections.Counter()
    for counts in report["per_country"].values():
        stored.update(counts)
    empty = [country for country in labels if not stored[country]]
    if empty:
        raise BuildError(
            f"config {config_name!r}: no usable image for {len(empty)} countries: "
            f"{', '.join(empty)} (every file was skipped as undecodable, too large or of "
            "an unsupported mode). Replace those files, or use another config."
        )


def _check_folders(config_name, labels, by_folder):
    """Raises UserError if a label country is missing or, for top20, too small."""
    missing = [c for c in labels if not by_folder.get(c)]
    if missing:
        raise BuildError(
            f"config {config_name!r}: the data has no images for "
            f"{len(missing)} countries: {', '.join(missing)}. Download the full "
            f"Kaggle dataset {KAGGLE_ID} (or use another config)."
        )
    if config_name != "top20":
        return
    counts = {folder: len(files) for folder, files in by_folder.items()}
    too_small = [c for c in labels if sum(n > counts[c] for n in counts.values()) >= len(labels)]
    if too_small:
        raise BuildError(
            f"config 'top20': {', '.join(too_small)} not among the 20 largest "
            "folders of the data; is this the Kaggle dataset "
            f"{KAGGLE_ID}? (Use config 'all' for other folders.)"
        )


def _excluded(labels, by_folder):
    known = set(read_labels("labels_all.txt"))
    return {
        folder: {
            "files": len(files),
            "reason": "not in this config" if folder in known else "unknown folder",
        }
        for folder, files in sorted(by_folder.items())
        if folder not in labels
    }
