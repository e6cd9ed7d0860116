"""The preset table: every named model in the zoo, as data.

A preset names its task (``classifier`` unless told), an encoder per modality, a fusion
and a head, with options and data defaults (the schema: `mmzoo.registry.normalize_preset`).
`mmzoo.build(name, **overrides)` merges overrides onto it. ``params`` is the parameter count
at the preset's defaults (with ``num_classes=10``), pinned by a test.
Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from typing import Any, Dict

from mmzoo.registry import PRESETS, normalize_preset

_AUDIO = {"sample_rate": 16000, "audio_samples": 16000}

PRESET_TABLE: Dict[str, Dict[str, Any]] = {
    "cnn_gru_concat": dict(
        description="The classic two-branch model: Conv2D(32)+MaxPool+Conv2D(64)+MaxPool+Flatten "
        "and Embedding(128)+BiGRU(64)+Dense(64)+Dropout(0.5), concatenated, Dense(64), Dense(classes).",
        image="cnn", text="bigru", fusion="concat", params=2_189_770,
    ),
    "cnn_gru_attention": dict(
        description="CNN patches and BiGRU tokens attend to each other (cross-modal attention).",
        image="cnn", text="bigru", fusion="attention", fusion_options={"positions": True},
        params=1_443_466,
    ),
    "cnn_gru_film": dict(
        description="The question modulates the image feature map (FiLM), VQA-style.",
        image="cnn", text="bigru", fusion="film", fusion_options={"coordinates": True},
        encoder_options={"text": {"dropout": 0.1}}, params=1_487_946,
    ),
    "cnn_gru_late": dict(
        description="Late fusion: one classifier per modality, logits averaged.",
        image="cnn", text="bigru", fusion="late", params=2_190_484,
    ),
    "cnn_gru_multilabel": dict(
        description="Classic two-branch model with a sigmoid multilabel head.",
        image="cnn", text="bigru", fusion="concat", head="multilabel",
        defaults={"task": "multilabel"}, params=2_189_770,
    ),
    "cnn_gru_multitask": dict(
        description="Shared fusion, two named outputs: an answer class and a regression score.",
        image="cnn", text="bigru", fusion="gated", head="multitask",
        defaults={"task": "multitask", "tasks": {
            "answer": {"task": "classification", "num_classes": 10},
            "score": {"task": "regression", "num_classes": 1},
        }},
        params=3_808_011,
    ),
    "resnet_bilstm_gated": dict(
        description="Small ResNet and BiLSTM joined by a gated multimodal unit.",
        image="resnet", text="bilstm", fusion="gated", params=1_737_706,
    ),
    "resnet_transformer_attention": dict(
        description="Small ResNet patches and transformer tokens with cross-modal attention.",
        image="resnet", text="transformer", fusion="attention", fusion_options={"positions": True},
        params=1_091_242,
    ),
    "mobilenet_textcnn_concat": dict(
        description="Edge-sized: depthwise-separable CNN and TextCNN, concatenated.",
        image="mobilenet", text="textcnn", fusion="concat", params=1_418_474,
    ),
    "cnn_transformer_conv": dict(
        description="CNN and transformer vectors stacked and convolved across modalities.",
        image="cnn", text="transformer", fusion="conv", params=753_994,
        encoder_options={"image": {"pooling": "avg"}},
    ),
    "mlp_gru_concat": dict(
        description="Tabular user/item features (MLP) with text (BiGRU), concatenated (recommendation-style).",
        tabular="mlp", text="bigru", fusion="concat", params=1_376_426,
    ),
    "cnn_mlp_regression": dict(
        description="Image and tabular features, gated, regressing a number.",
        image="cnn", tabular="mlp", fusion="gated", head="regression",
        defaults={"task": "regression", "num_classes": 1}, params=2_449_377,
        encoder_options={"image": {"pooling": "flatten"}},
    ),
    "cnn_gru_melcnn_concat": dict(
        description="Image + text + audio: CNN, BiGRU and log-mel CNN, concatenated.",
        image="cnn", text="bigru", audio="melcnn", fusion="concat", defaults=_AUDIO, params=2_291_310,
    ),
    "cnn_gru_melcnn_attention": dict(
        description="Image + text + audio tokens with cross-modal attention.",
        image="cnn", text="bigru", audio="melcnn", fusion="attention", fusion_options={"positions": True},
        defaults=_AUDIO, params=1_566_446,
    ),
    "cnn_gru_melcnn_film": dict(
        description="Image + text + audio: question and audio condition the image map (FiLM).",
        image="cnn", text="bigru", audio="melcnn", fusion="film", fusion_options={"coordinates": True},
        # the audio branch of its shipped shapes_vqa checkpoint (before melcnn's defaults grew)
        encoder_options={"text": {"dropout": 0.1}, "audio": {"filters": (16, 32, 64), "pooling": "avg"}},
        defaults=_AUDIO, params=1_532_062,
    ),
    "cnn_gru_melcnn_tensor": dict(
        description="Image + text + audio tensor fusion (outer product of 16-d projections).",
        image="cnn", text="bigru", audio="melcnn", fusion="tensor", defaults=_AUDIO, params=1_794_782,
        encoder_options={"image": {"pooling": "avg"}},
    ),
    "cnn_gru_melcnn_lowrank": dict(
        description="Image + text + audio low-rank multimodal fusion (rank 4).",
        image="cnn", text="bigru", audio="melcnn", fusion="low_rank", defaults=_AUDIO, params=1_546_674,
        encoder_options={"image": {"pooling": "avg"}},
    ),
    "mobilenet_textcnn_melcnn_weighted": dict(
        description="Edge-sized image + text + audio with a learned weighted sum.",
        image="mobilenet", text="textcnn", audio="melcnn", fusion="weighted_sum", defaults=_AUDIO,
        params=1_524_305,
    ),
    "resnet_gru_crnn_gated": dict(
        description="ResNet + BiGRU + CRNN audio joined by a gated multimodal unit.",
        image="resnet", text="bigru", audio="crnn", fusion="gated", defaults=_AUDIO, params=1_815_102,
    ),
    "cnn_gru_crnn_recurrent": dict(
        description="Image + text + CRNN audio; a GRU runs over the modality sequence.",
        image="cnn", text="bigru", audio="crnn", fusion="recurrent", defaults=_AUDIO, params=1_497_310,
        encoder_options={"image": {"pooling": "avg"}},
    ),
    # ------------------------------------------------------------------ retrieval (dual encoders)
    "cnn_gru_clip": dict(
        task="retriever", description="Text -> image retrieval: BiGRU query tower and CNN image tower in a "
        "shared 128-d space, trained with the CLIP loss (symmetric InfoNCE, learned temperature).",
        reference="Radford et al. 2021, Learning Transferable Visual Models From Natural Language Supervision",
        image="cnn", text="bigru", head="retrieval", query="text", candidate="image", params=2_996_226,
    ),
    "cnn_gru_siglip": dict(
        task="retriever", description="Text -> image retrieval as cnn_gru_clip, with SigLIP's sigmoid loss "
        "(each pair a yes/no decision, no softmax over the batch).",
        reference="Zhai et al. 2023, Sigmoid Loss for Language Image Pre-Training",
        image="cnn", text="bigru", head="retrieval", head_options={"loss": "siglip"}, query="text",
        candidate="image", params=2_996_226,
    ),
    "melcnn_gru_clip": dict(
        task="retriever", description="Text -> audio retrieval: BiGRU query tower and log-mel CNN audio tower, "
        "CLIP loss (CLAP-style).",
        reference="Elizalde et al. 2023, CLAP: Learning Audio Concepts From Natural Language Supervision",
        audio="melcnn", text="bigru", head="retrieval", query="text", candidate="audio", defaults=_AUDIO,
        params=1_480_934,
    ),
    # ------------------------------------------------------------------ recommendation (two towers)
    "bag_cnn_gru_twotower": dict(
        task="recommender", description="Two-tower recommender: a user tower (id embedding, the mean of the "
        "history's item vectors, an MLP of the user's features) and an item tower (id embedding, CNN picture, BiGRU "
        "description, MLP attributes), each concatenated, 128-d, CLIP loss over in-batch items.",
        reference="Yi et al. 2019, Sampling-Bias-Corrected Neural Modeling for Large Corpus Item Recommendations",
        user="user_embedding", history="bag", profile="profile_mlp", item="item_embedding", image="cnn",
        text="bigru", tabular="mlp", head="retrieval", query=["user", "history", "profile"],
        candidate=["item", "image", "text", "tabular"], encoder_options={"image": {"pooling": "avg"}},
        params=1_560_330,
    ),
    "gru_cnn_gru_twotower": dict(
        task="recommender", description="Two-tower recommender as bag_cnn_gru_twotower, with a GRU over the "
        "history in time order (what the user chose lately counts more).",
        reference="Hidasi et al. 2016, Session-based Recommendations with Recurrent Neural Networks",
        user="user_embedding", history="gru", profile="profile_mlp", item="item_embedding", image="cnn",
        text="bigru", tabular="mlp", head="retrieval", query=["user", "history", "profile"],
        candidate=["item", "image", "text", "tabular"], encoder_options={"image": {"pooling": "avg"}},
        params=1_585_290,
    ),
    # ------------------------------------------------------------------ captioning (encoder + decoder)
    "cnn_transformer_captioner": dict(
        task="captioner", description="Image captioning: CNN patches as the memory of a 2-layer Transformer "
        "decoder (causal self-attention, cross-attention, 128-d), greedy or beam search with a key/value cache.",
        reference="Vaswani et al. 2017, Attention Is All You Need; Xu et al. 2015, Show, Attend and Tell",
        image="cnn", head="transformer_decoder", params=472_906,
    ),
    "cnn_gru_captioner": dict(
        task="captioner", description="Image captioning: CNN patches attended by a GRU decoder (Luong attention, "
        "128-d state started from the mean patch), greedy or beam search over its state.",
        reference="Xu et al. 2015, Show, Attend and Tell; Luong et al. 2015, Effective Approaches to Attention-based "
        "Neural Machine Translation",
        image="cnn", head="gru_decoder", params=253_130,
    ),
    "melcnn_transformer_captioner": dict(
        task="captioner", description="Audio captioning (describe a sound clip): log-mel CNN frames as the memory "
        "of a 2-layer Transformer decoder.",
        reference="Mei et al. 2021, Audio Captioning Transformer",
        audio="melcnn", head="transformer_decoder", defaults=_AUDIO, params=530_862,
    ),
}


#: `mmzoo train` without a preset takes the first of these that fits the data's inputs and
#: target, else any preset that fits, else it composes one from `DEFAULT_ENCODERS`. For image +
#: text + audio, FiLM beat attention with the training defaults on two small-data benchmark
#: tasks (select 0.984 vs 0.980 in 326 s vs 421 s; glyphs 0.47 vs 0.13), 2026-12-01; with its
#: position maps, glyphs 0.836 (2026-12-03; attention with positions not re-measured).
DEFAULT_CHOICE = (
    "cnn_gru_melcnn_film",
    "cnn_gru_attention",
    "cnn_gru_multilabel",
    "cnn_gru_multitask",
    "cnn_mlp_regression",
    "mlp_gru_concat",
    "cnn_gru_clip",
    "melcnn_gru_clip",
    "bag_cnn_gru_twotower",
    "cnn_transformer_captioner",
    "melcnn_transformer_captioner",
)
DEFAULT_ENCODERS = {"image": "cnn", "text": "bigru", "audio": "melcnn", "tabular": "mlp"}


def register_preset(name: str, **config: Any) -> dict:
    """Register a preset: a dict of task, encoder/fusion/head choices and defaults.

    Example:
    >>> mmzoo.register_preset("my_preset", image="cnn", text="bigru",
    ...                       fusion="gated", description="...")  # doctest: +SKIP
    """
    preset = normalize_preset(name, config)
    PRESETS.add(name, preset)
    return preset


for _name, _config in PRESET_TABLE.items():
    register_preset(_name, **_config)
