"""The one training configuration. Stage defaults follow LTU-AS (learning rates 1e-3 / 1e-4 / 2e-4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..weights import REPO_WEIGHTS, cache_dir

# stage -> (what trains, learning rate, steps on this CPU)
STAGES = {
    # stage 0 on 71 packages: 2,500 steps left new-source top-1 at 0.17 and still rising; 5,000 reached 0.25
    0: ("perception model: TLTR + sound, voice and instrument heads (Whisper-AT), on augmented views", 1e-3, 5000),
    1: ("projector on closed-ended classification QA, LLM frozen", 1e-3, 250),
    2: ("TLTR + projector + LoRA on classification QA", 1e-4, 400),
    3: ("everything on open + closed QA", 2e-4, 500),
}


@dataclass
class TrainConfig:
    stage: int
    data: Path = field(default_factory=lambda: cache_dir() / "data")
    features: Path | None = None  # default: <cache>/features/<whisper name>
    out: Path = REPO_WEIGHTS
    whisper: str = "base"
    llm: str | None = None
    objective: str = "answer"  # or "invariance" (AudioChatLlama): targets = a frozen LLM's answer to the description
    # the invariance teacher (a named LLM or a GGUF path): on 12 tiny-set questions Qwen2.5-Coder-0.5B answered
    # briefly and, but for two yes/no slips, rightly; SmolLM2-135M rambled past 48 tokens and named a bell a piano
    teacher: str = "qwen2.5-coder-0.5b"
    # objective "answer": the share of training prompts that leave out the heard words (as mode `tokens`), so the
    # acoustic tokens must carry what the perception model hears; validation asks as the engine does (soft). 0.5 in
    # stage 3 did not make the tokens carry sounds (docs/experiments): off by default, as the shipped weights
    words_dropout: float = 0.0
    # the share of training prompts without the acoustic tokens (as mode `tags`, which shares the LoRA): 250 more
    # soft-only steps from the shipped weights broke `tags` ("what is said?" WER 0.30 -> 0.73), and 0.25 did not
    # keep it from answering "Speech" (docs/experiments): off by default, as the shipped weights
    tokens_dropout: float = 0.0
    # stages 2-3: start from these weights (an adapter safetensors, its LoRA GGUF beside it, e.g. the shipped ones in
    # weights/) instead of the previous stage's checkpoint in the cache: a fresh machine continues from what git holds
    start_from: Path | None = None
    # stage 3: the share of each batch asked "what is said?" (0: its natural share, ~5 %; the other tasks split the
    # rest). 0.2 in a continued stage 3 made `soft` quote more and broke `tags` (docs/experiments): off by default
    asr_share: float = 0.0
    steps: int | None = None  # default: STAGES[stage]
    lr: float | None = None
    batch_size: int = 8
    eval_every: int = 100
    seed: int = 0
    max_answer_tokens: int = 48  # longer answers are cut (the closed-ended ones are a few words)
    # the perception model's TLTR width: Whisper-AT uses 512; 256 trains ~3.5x faster on this 2-core CPU
    # (1.06 s against ~0.3 s a step at batch 32) and ~3,000 clips do not need more
    perception_width: int = 256
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {sorted(STAGES)}")
        if self.objective not in ("answer", "invariance"):
            raise ValueError("objective must be 'answer' or 'invariance'")
        if not (0 <= self.words_dropout <= 1 and 0 <= self.tokens_dropout <= 1
                and self.words_dropout + self.tokens_dropout <= 1):
            raise ValueError("words_dropout and tokens_dropout must be shares in [0, 1] that sum to at most 1")
        if not 0 <= self.asr_share < 1:
            raise ValueError("asr_share must be a share in [0, 1)")
        if self.objective == "invariance" and self.tokens_dropout:
            raise ValueError("tokens_dropout is for objective answer: the invariance student hears only the tokens")
        if self.start_from is not None and self.stage < 2:
            raise ValueError("start_from is for stages 2 and 3 (stage 1 starts the projector afresh)")
        self.steps = self.steps or STAGES[self.stage][2]
        self.lr = self.lr or STAGES[self.stage][1]
        self.features = self.features or cache_dir() / "features" / self.whisper

    @property
    def command(self) -> str:
        """The command line of this stage, as the model card states it."""
        words = f" --words-dropout {self.words_dropout:g}" if self.objective == "answer" and self.words_dropout else ""
        words += f" --tokens-dropout {self.tokens_dropout:g}" if self.tokens_dropout else ""
        words += f" --asr-share {self.asr_share:g}" if self.asr_share and self.stage == 3 else ""
        steps = f" --steps {self.steps}" if self.steps != STAGES[self.stage][2] else ""
        start = f" --start-from {self.start_from}" if self.start_from else ""
        return f"python -m engine.train --stage {self.stage} --objective {self.objective}{words}{steps}{start}"
