"""Deterministic, stratified 90:5:5 train/validation/test assignment.

Each country's files are ordered by the SHA-256 of their `<Country>/<file>`
key (ties, impossible in practice, by the key itself). The first `k` go to
`test`, the next `k` to `validation`, the rest to `train`, where, for a
country with `n` files,

    k = floor(n / 20 + 0.5)  (5 %, rounded half up), at least 1, if n >= 3;
    k = 0                    (everything in train),            if n < 3.

So a file's split depends only on its own name and on which other files its
country holds: not on the file system's listing order, the machine or how
often the dataset is built. On the Kaggle top-20 folders this gives
35,443 / 1,967 / 1,967 images (paper: 35,451 / 1,983 / 2,006).
"""

import hashlib

SPLITS = ("train", "validation", "test")


def holdout_size(n: int) -> int:
    """Images per held-out split (validation, and test) for `n` images.

    Example: `holdout_size(50) == 3`, `holdout_size(4) == 1`,
    `holdout_size(2) == 0`.
    """
    if n < 3:
        return 0
    return max(1, (n + 10) // 20)


def _order(key: str):
    return hashlib.sha256(key.encode("utf-8")).hexdigest(), key


def assign(keys) -> dict:
    """Maps each key of ONE country to "train", "validation" or "test".

    Args:
        keys: The `<Country>/<file>` keys of one country (any order, unique).

    Returns:
        `{key: split}`.
    """
    ordered = sorted(keys, key=_order)
    k = holdout_size(len(ordered))
    return {
        key: "test" if i < k else "validation" if i < 2 * k else "train"
        for i, key in enumerate(ordered)
    }
