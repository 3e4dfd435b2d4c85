"""The one place that counts FLOPs: training 6*N*D, evaluation 2*N*D, N = all parameters."""
from __future__ import annotations


def train_flops(params: int, tokens: int) -> float:
    return 6.0 * params * tokens


def eval_flops(params: int, tokens: int) -> float:
    return 2.0 * params * tokens


def count_params(vocab_size: int, width: int, depth: int, context: int) -> int:
    """Parameters of `models.GPT` without building it (embeddings, blocks, norms, readout)."""
    block = 12 * width * width + 4 * width  # qkv, proj, up, down; two LayerNorms
    return 2 * vocab_size * width + context * width + depth * block + 2 * width


def sample_flops(params: int, tokens: int) -> float:
    """Drawing tokens one at a time with cached keys and values: one forward pass each."""
    return 2.0 * params * tokens


# The count-based family (estimators/context_mixing.py) goes on the same axis, counted in
# operations rather than multiply-adds of matrices: every load, compare, shift, add and
# multiply of its kernel counts one, per binary decision (eight per byte). Per decision and
# per mixer input (one per context, plus the match model): predicting takes a counter load,
# shift, stretch lookup and a multiply-add into each of four weight sets (11); learning adds
# four weight updates (8) and a counter update (unpack, rate lookup, subtract, multiply,
# shift, add, clamp, pack, store: 12). Fixed per decision: the squash (~20), two interpolated
# probability maps (10), the final blend (two stretch lookups 8, three multiply-adds 6, a
# squash 20), clip and product (5); learning adds the error, the rate and two map updates
# (10), and the blend's error and three weight updates (8). Per byte and context: the running
# hash and two bucket lookups with checksum (14); per byte the match model's lookups, inserts
# and follow-up (20), the logarithm (10) and, per nibble, the third weight set chosen from two
# counters' counts (2 x 10).
CM_PREDICT_PER_INPUT, CM_LEARN_PER_INPUT = 11, 20
CM_PREDICT_FIXED, CM_LEARN_FIXED = 69, 18
CM_PER_CONTEXT_BYTE, CM_PER_BYTE = 14, 50
# Sizes with a column context also look for the record length of rows without newlines
# (`context_mixing._track_record`): per guess of one distance at a sampled byte, three
# visibility loads, a hash of three bytes (5), a table load, compare and store, two count
# updates, the byte above compared and counted (2), and the byte that last followed it
# loaded, compared, counted and stored (5).
CM_RECORD_PER_GUESS = 19
# The delta model of the sizes that have one (`delta_model.DELTA_STRIDES`), one more mixer
# input: per byte, each of four strides' row (visibility, compare, address: 8) and, learning,
# the code length of its difference and the count (logarithm 10, update 6); the same for plain
# counts; where it is open, the row summed (2 per difference: 512); per bit, two masses of
# the range left (8) and the stretch (4).
CM_DELTA_PER_BYTE = 4 * 24 + 16 + 512
CM_DELTA_PER_BIT = 12


def _context_mixing_predict_ops(contexts: int, delta: bool) -> tuple[int, int]:
    """(per bit, per byte) operations of predicting a byte, learning nothing; `delta`: with a
    delta model (counted as open on every byte)."""
    per_bit = (contexts + 1 + delta) * CM_PREDICT_PER_INPUT + CM_PREDICT_FIXED \
        + delta * CM_DELTA_PER_BIT
    return per_bit, CM_PER_CONTEXT_BYTE * contexts + CM_PER_BYTE + delta * CM_DELTA_PER_BYTE


def context_mixing_train_ops(contexts: int, tokens: int, record_guesses: float = 0.0,
                             delta: bool = False) -> float:
    """Operations to code `tokens` bytes with a context-mixing model and learn from them,
    making `record_guesses` guesses of the record length on the way."""
    per_bit, per_byte = _context_mixing_predict_ops(contexts, delta)
    per_bit += (contexts + 1 + delta) * CM_LEARN_PER_INPUT + CM_LEARN_FIXED
    return float(tokens) * (8 * per_bit + per_byte) + CM_RECORD_PER_GUESS * record_guesses


def context_mixing_eval_ops(contexts: int, tokens: int, warm: int, delta: bool = False) -> float:
    """Operations to code `tokens` held-out bytes both ways (`ContextMixingModel.evaluate`):
    frozen, and adaptively, learning from `warm` training bytes first and from each held-out
    byte after coding it (rolling back what is learned is a store per write: counted in
    learning's operations)."""
    per_bit, per_byte = _context_mixing_predict_ops(contexts, delta)
    frozen = float(tokens) * (8 * per_bit + per_byte)
    return frozen + context_mixing_train_ops(contexts, tokens + warm, delta=delta)


# The blending sizes (estimators/blending.py), counted the same way, per byte and order: a hash
# step, the slot's address and check (8); its observations, distinct bytes, the escape
# estimate's cell and a division (12); the count of the byte and the blend (6). Learning adds
# the escape estimate's update (5) and the count's, its sum's and its distinct bytes' (6). Per
# byte: the held-out test and the logarithm (15).
BLEND_PREDICT_PER_ORDER, BLEND_LEARN_PER_ORDER, BLEND_PER_BYTE = 26, 11, 15
# A Bayes size mixes `predictors` an order (`blending.BAYES_CONCENTRATIONS`) instead of
# blending, per order: the pair's second slot and its check (4); per predictor, its probability
# (two multiply-adds and a division: 5) and its share of the mixture (2); learning, the weight's
# update (multiply, divide, floor, sum: 4) and its normalisation (1). Per byte: the base
# probability (6), and the uniform code's share (2) and weight (5).
BAYES_PER_ORDER, BAYES_PREDICT_PER_PREDICTOR, BAYES_LEARN_PER_PREDICTOR, BAYES_PER_BYTE = \
    4, 7, 5, 13


def _blending_predict_ops(orders: int, predictors: int) -> float:
    """Operations per byte of predicting, learning nothing (`predictors`: a Bayes size's per
    order; 0: the blend)."""
    bayes = orders * (BAYES_PER_ORDER + predictors * BAYES_PREDICT_PER_PREDICTOR) \
        + BAYES_PER_BYTE if predictors else 0
    return orders * BLEND_PREDICT_PER_ORDER + BLEND_PER_BYTE + bayes


def blending_train_ops(orders: int, tokens: int, predictors: int = 0) -> float:
    """Operations to code `tokens` bytes with a blending model and learn from them."""
    learn = orders * (BLEND_LEARN_PER_ORDER + predictors * BAYES_LEARN_PER_PREDICTOR)
    return float(tokens) * (_blending_predict_ops(orders, predictors) + learn)


def blending_eval_ops(orders: int, tokens: int, warm: int, predictors: int = 0) -> float:
    """Operations to code `tokens` held-out bytes frozen and adaptively after `warm` bytes
    relearned (`BlendingModel.evaluate`; saving and restoring a slot counted in learning's)."""
    frozen = float(tokens) * _blending_predict_ops(orders, predictors)
    return frozen + blending_train_ops(orders, tokens + warm, predictors)
