"""The MABe22 evaluator's clip split, shared by the stages that must agree on it.

Its own module so that the stages that only need the split (the embed stage's PCA, the
supervised upper bound's training clips) do not depend on the probe code: editing
twbyol/probe.py replans evaluation, not embeddings or pretraining.
"""

from __future__ import annotations

from collections.abc import Sequence


def split_clips(
    clips: Sequence[str], test_size: float = 0.1, seed: int = 42
) -> tuple[list[str], list[str]]:
    """The MABe22 evaluator's clip split: `train_test_split(clips, test_size, random_state=seed)`.

    Returns (train_clips, test_clips) as lists, in the order sklearn returns them. The embed
    stage fits its PCA on the train clips of this very split, so the test clips never leak.
    """
    from sklearn.model_selection import train_test_split  # lazy: keeps `import twbyol.split` cheap

    train, test = train_test_split(list(clips), test_size=test_size, random_state=seed)
    return list(train), list(test)
