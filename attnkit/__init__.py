"""attnkit — attention mechanisms, implemented once and tested.

Shape legend (used in every docstring and shape comment):

====  =====================================================
B     batch size
H     number of heads
L     number of queries (query length)
S     number of keys and values (key length)
D     query/key feature size (per head)
Dv    value feature size (per head)
M     number of random features, buckets or landmarks
====  =====================================================

Single-head functions take ``(..., L, D)``; mechanisms take ``(B, H, L, D)``.
A boolean mask is ``True`` where attention is *allowed* and broadcasts to
``(B, H, L, S)`` (or ``(B, L, S)`` for single-head code).
"""
from .attention import (
    AdditiveAttention,
    DotProductAttention,
    additive_attention,
    attend,
    dot_product_attention,
)
from .linear import (
    LinearAttention,
    LinearState,
    elu_feature_map,
    linear_attention,
    linear_attention_chunked,
    linear_attention_cumsum,
    linear_attention_init_state,
    linear_attention_naive,
    linear_attention_noncausal,
    linear_attention_recurrent,
    linear_attention_step,
    relu_feature_map,
)
from .masking import (
    apply_mask,
    build_mask,
    causal_mask,
    check_mask,
    combine_masks,
    lengths_to_mask,
    masked_softmax,
    sequence_mask,
    softmax_one,
)
from .mechanisms import (
    SoftmaxAttention,
    check_mechanism_inputs,
    key_padding_from_mask,
    softmax_attention_naive,
)
from .multihead import MultiHeadAttention, merge_heads, multi_head_attention, split_heads, valid_lens_to_mask
from .positional import PositionalEncoding, sinusoidal_encoding
from .fusion import AttentionFusion, attention_fusion
from .plot import show_heatmaps
from .pooling import (
    NWKernelRegression,
    average_pooling,
    gaussian_kernel_weights,
    hard_lookup,
    make_regression_data,
    nadaraya_watson,
    regression_target,
    squared_distances,
)
from .registry import MECHANISMS, make_mechanism
from .scoring import additive_scores, dot_product_scores
from .local import LocalAttention, local_attention, local_attention_naive
from .lsh import LSHAttention, lsh_attention, lsh_attention_naive
from .sparse import (
    atrous_pattern,
    bigbird_pattern,
    density,
    local_pattern,
    longformer_pattern,
    sparse_attention_naive,
    strided_pattern,
)
from .random_features import (
    RFA,
    PerformerAttention,
    gaussian_matrix,
    orthogonal_matrix,
    performer_attention,
    performer_attention_naive,
    performer_features,
    positive_features,
    random_projection,
    rfa_attention,
    rfa_attention_naive,
    trig_features,
)
from .nystrom import NystromAttention, iterative_pinv, nystrom_attention, nystrom_attention_naive, segment_means
from .synthesizer import (
    DenseSynthesizer,
    FactorizedDenseSynthesizer,
    FactorizedRandomSynthesizer,
    RandomSynthesizer,
    SynthesizerMixture,
    synthesizer_attention,
    synthesizer_attention_naive,
)

__version__ = "0.1.0"
