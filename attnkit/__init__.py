"""attnkit — attention mechanisms, implemented once and tested.

Shape legend (used in every docstring and shape comment):

=====  =====================================================
B      batch size
H      number of heads
L      number of queries (query length)
S      number of keys and values (key length)
D      query/key feature size (per head)
Dv     value feature size (per head)
M      number of random features, buckets, landmarks or codewords (VQ); the state size (SSM)
R      number of hash rounds (LSH); rows of the strided grid
C      number of chunks or blocks; ``b``/``c`` positions per block/chunk
W      keys in a block's window (blocked local attention)
G      number of global tokens
N      number of positions or points (a table's rows, ``max_len``)
E      output feature size (``W_o``'s rows); the model width of a block, a GAU
Dq     query input size; ``Dk`` key input size; ``Dvin`` value input size
h      hidden size of additive scoring; ``Dh`` a hidden or fused feature size (FFN, GAU)
P      number of feature vectors fused; ``A`` attention size (fusion)
K      kernel size of a convolution (as attention: ``H = K`` heads)
n      sequence length when queries and keys are one sequence (``L = S = n``)
l      stride of the strided pattern (a grid of ``⌈n/l⌉`` rows of ``l`` positions)
d      dilation (a window over ``d`` interleaved sub-sequences of ``nb`` blocks each)
=====  =====================================================

Single-head functions take ``(..., L, D)``; mechanisms take ``(B, H, L, D)``.
A boolean mask is ``True`` where attention is *allowed* and broadcasts to
``(B, H, L, S)`` (or ``(B, L, S)`` for single-head code). A key-padding tensor is
boolean ``(B, S)``, ``True`` = a real key.
"""

from .alternatives import relu_weights, sigmoid_weights, softmax_weights
from .attention import (
    AdditiveAttention,
    BilinearAttention,
    DotProductAttention,
    additive_attention,
    attend,
    bilinear_attention,
    dot_product_attention,
)
from .block import (
    PositionWiseFFN,
    TransformerBlock,
    TransformerStack,
    position_wise_ffn,
    residual,
    transformer_block,
)
from .blocksparse import (
    BigBirdAttention,
    LongformerAttention,
    bigbird_attention,
    bigbird_attention_naive,
    bigbird_layout,
    block_sparse_attention,
    block_sparse_loop,
    dilated_attention,
    dilated_attention_naive,
    dilated_layout,
)
from .convolution import (
    conv1d_weights_as_attention,
    convolution_as_attention,
    layer_parameter_counts,
    offset_attention_weights,
)
from .fusion import AttentionFusion, attention_fusion
from .gau import (
    GatedAttentionUnit,
    SquaredReLUAttention,
    gated_attention_unit,
    gau_naive,
    mixed_chunk_attention,
    mixed_chunk_attention_naive,
    squared_relu_attention,
)
from .hashing import (
    angular_hash,
    hyperplane_bits,
    hyperplane_collision_probability,
    hyperplane_hash,
    random_hyperplanes,
    random_rotations,
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
    mask_key_features,
    relu_feature_map,
)
from .local import (
    LocalAttention,
    block_attention,
    local_attention,
    local_attention_naive,
)
from .lsh import (
    LSHAttention,
    chunk_layout,
    lsh_attention,
    lsh_attention_naive,
    sort_by_bucket,
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
    Mechanism,
    SoftmaxAttention,
    key_padding_from_mask,
    softmax_attention_naive,
)
from .multihead import (
    MultiHeadAttention,
    merge_heads,
    multi_head_attention,
    split_heads,
    valid_lens_to_mask,
)
from .nystrom import (
    NystromAttention,
    iterative_pinv,
    nystrom_attention,
    nystrom_attention_naive,
    nystrom_matrices,
    segment_means,
)
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
from .positional import PositionalEncoding, add_positional_encoding, sinusoidal_encoding
from .random_features import (
    RFA,
    PerformerAttention,
    arccos_attention,
    arccos_attention_naive,
    arccos_features,
    arccos_kernel,
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
from .registry import MECHANISMS, get_mechanism_class, make_mechanism
from .reversible import (
    ReversibleBlock,
    ReversibleStack,
    chunked_feed_forward,
    reversible_forward,
    reversible_inverse,
    reversible_stack,
    reversible_stack_naive,
)
from .scoring import additive_scores, bilinear_scores, dot_product_scores
from .sparse import (
    atrous_pattern,
    bigbird_pattern,
    bigbird_random_blocks,
    density,
    dilated_pattern,
    fixed_pattern,
    local_pattern,
    longformer_pattern,
    sparse_attention_naive,
    strided_pattern,
)
from .ssm import gated_rfa_ssm, linear_attention_ssm, ssm_scan
from .strided import (
    StridedAttention,
    fixed_attention,
    fixed_layout,
    strided_attention,
    strided_attention_naive,
    strided_layout,
)
from .synthesizer import (
    DenseSynthesizer,
    FactorizedDenseSynthesizer,
    FactorizedRandomSynthesizer,
    RandomSynthesizer,
    SynthesizerMixture,
    dense_synthesizer_logits,
    factorized_dense_logits,
    factorized_random_logits,
    synthesizer_attention,
    synthesizer_attention_naive,
)
from .vq import vq_attention, vq_attention_naive, vq_quantize

__version__ = "0.1.0"

__all__ = [
    "add_positional_encoding",
    "arccos_attention",
    "arccos_attention_naive",
    "arccos_features",
    "arccos_kernel",
    "additive_attention",
    "additive_scores",
    "AdditiveAttention",
    "BilinearAttention",
    "bilinear_attention",
    "bilinear_scores",
    "angular_hash",
    "apply_mask",
    "atrous_pattern",
    "attend",
    "attention_fusion",
    "AttentionFusion",
    "average_pooling",
    "bigbird_pattern",
    "block_attention",
    "build_mask",
    "causal_mask",
    "check_mask",
    "chunk_layout",
    "combine_masks",
    "dense_synthesizer_logits",
    "DenseSynthesizer",
    "density",
    "dot_product_attention",
    "dot_product_scores",
    "DotProductAttention",
    "elu_feature_map",
    "factorized_dense_logits",
    "factorized_random_logits",
    "FactorizedDenseSynthesizer",
    "FactorizedRandomSynthesizer",
    "gaussian_kernel_weights",
    "gaussian_matrix",
    "get_mechanism_class",
    "hard_lookup",
    "hyperplane_bits",
    "hyperplane_collision_probability",
    "hyperplane_hash",
    "iterative_pinv",
    "key_padding_from_mask",
    "lengths_to_mask",
    "linear_attention",
    "linear_attention_chunked",
    "linear_attention_cumsum",
    "linear_attention_init_state",
    "linear_attention_naive",
    "linear_attention_noncausal",
    "linear_attention_recurrent",
    "linear_attention_step",
    "LinearAttention",
    "LinearState",
    "local_attention",
    "local_attention_naive",
    "local_pattern",
    "LocalAttention",
    "longformer_pattern",
    "lsh_attention",
    "lsh_attention_naive",
    "LSHAttention",
    "make_mechanism",
    "make_regression_data",
    "mask_key_features",
    "masked_softmax",
    "Mechanism",
    "MECHANISMS",
    "merge_heads",
    "multi_head_attention",
    "MultiHeadAttention",
    "nadaraya_watson",
    "NWKernelRegression",
    "nystrom_attention",
    "nystrom_attention_naive",
    "nystrom_matrices",
    "NystromAttention",
    "orthogonal_matrix",
    "performer_attention",
    "performer_attention_naive",
    "performer_features",
    "PerformerAttention",
    "PositionalEncoding",
    "positive_features",
    "random_hyperplanes",
    "random_projection",
    "random_rotations",
    "RandomSynthesizer",
    "regression_target",
    "relu_feature_map",
    "RFA",
    "rfa_attention",
    "rfa_attention_naive",
    "segment_means",
    "sequence_mask",
    "show_heatmaps",
    "sinusoidal_encoding",
    "softmax_attention_naive",
    "softmax_one",
    "SoftmaxAttention",
    "sort_by_bucket",
    "sparse_attention_naive",
    "split_heads",
    "squared_distances",
    "strided_pattern",
    "synthesizer_attention",
    "synthesizer_attention_naive",
    "SynthesizerMixture",
    "trig_features",
    "valid_lens_to_mask",
    "__version__",
]
# chapter 5: block-sparse patterns beyond the window
__all__ += [
    "BigBirdAttention",
    "LongformerAttention",
    "bigbird_attention",
    "bigbird_attention_naive",
    "bigbird_layout",
    "block_sparse_attention",
    "block_sparse_loop",
    "dilated_attention",
    "dilated_attention_naive",
    "dilated_layout",
    "bigbird_random_blocks",
    "dilated_pattern",
    "fixed_pattern",
    "StridedAttention",
    "fixed_attention",
    "fixed_layout",
    "strided_attention",
    "strided_attention_naive",
    "strided_layout",
]
# chapter 3: softmax alternatives
__all__ += [
    "relu_weights",
    "sigmoid_weights",
    "softmax_weights",
]
# chapter 4: the Transformer block, attention as convolution
__all__ += [
    "position_wise_ffn",
    "residual",
    "transformer_block",
    "PositionWiseFFN",
    "TransformerBlock",
    "TransformerStack",
    "convolution_as_attention",
    "conv1d_weights_as_attention",
    "offset_attention_weights",
    "layer_parameter_counts",
]
# chapter 6: reversible layers and the chunked feed-forward network
__all__ += [
    "reversible_forward",
    "reversible_inverse",
    "reversible_stack",
    "reversible_stack_naive",
    "ReversibleBlock",
    "ReversibleStack",
    "chunked_feed_forward",
]
# chapter 7: what linear attention led to (GAU/FLASH, VQ keys, state-space models)
__all__ += [
    "squared_relu_attention",
    "SquaredReLUAttention",
    "gated_attention_unit",
    "gau_naive",
    "mixed_chunk_attention",
    "mixed_chunk_attention_naive",
    "GatedAttentionUnit",
    "vq_quantize",
    "vq_attention",
    "vq_attention_naive",
    "ssm_scan",
    "linear_attention_ssm",
    "gated_rfa_ssm",
]
