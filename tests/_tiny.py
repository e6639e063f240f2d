"""Tiny models and tokenizers built in-process (no downloads).

- ``make_tiny_tokenizer``: a lower-casing WordPiece ``BertTokenizerFast`` trained on given texts
  (the QA feature tests use it alone);
- ``make_tiny_model``: that tokenizer and a 2-layer, hidden-32 BERT saved as a hub model folder
  (the ``tiny_model`` fixture);
- ``make_tiny_xlmr``: an XLM-R-shaped SentencePiece Unigram model folder (``tiny_xlmr``).
"""

from __future__ import annotations

from pathlib import Path

import torch


def make_tiny_tokenizer(
    texts: list[str], *, vocab_size: int, min_frequency: int = 1, model_max_length: int = 512
):
    """A lower-casing (hence accent-stripping) WordPiece vocabulary of at most ``vocab_size``
    pieces trained on ``texts``, as a ``BertTokenizerFast`` with BERT's special tokens."""
    from tokenizers.implementations import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False
    )
    tok = BertTokenizerFast(tokenizer_object=wp._tokenizer, model_max_length=model_max_length)
    tok.add_special_tokens(
        {
            "pad_token": "[PAD]",
            "unk_token": "[UNK]",
            "cls_token": "[CLS]",
            "sep_token": "[SEP]",
            "mask_token": "[MASK]",
        }
    )
    return tok


def make_tiny_model(out_dir: Path, texts: list[str], *, seed: int = 0) -> Path:
    """Train a WordPiece vocabulary on ``texts``, build a 2-layer BERT with hidden size 32
    from a config, and save both like a hub model directory."""
    from transformers import BertConfig, BertModel

    tok = make_tiny_tokenizer(texts, vocab_size=600, model_max_length=128)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = BertModel(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def make_tiny_xlmr(out_dir: Path, texts: list[str], *, seed: int = 0) -> Path:
    """An XLM-R-shaped model: a SentencePiece Unigram vocabulary trained in-process with
    ``<s>=0, <pad>=1, </s>=2, <unk>=3`` and ``<mask>`` (XLM-R's special-token layout), no
    ``token_type_ids``, and a 2-layer ``XLMRobertaConfig(hidden_size=32)``; saved like a hub
    model directory (``AutoModel`` / ``AutoTokenizer`` load it)."""
    from tokenizers import SentencePieceUnigramTokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizer

    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(
        texts,
        vocab_size=500,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        show_progress=False,
    )
    sp.add_special_tokens(["<mask>"])
    backend = sp._tokenizer
    # XLM-R's templates: <s> A </s> and <s> A </s></s> B </s>
    backend.post_processor = TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tok = XLMRobertaTokenizer(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=128,
    )
    assert tok.pad_token_id == 1 and "token_type_ids" not in tok.model_input_names
    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,  # XLM-R positions start after the pad id: 128 + 2
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = XLMRobertaModel(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir
