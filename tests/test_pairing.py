"""The paired estimate of the count family's held-out loss (`estimators/pairing.py`)."""
import numpy as np
import pytest

from estimators import blending, context_mixing, count_family, panel, synthetic
from estimators.holdout import LEARNING, Holdout
from estimators.pairing import RECOVERY, PairedLoss

SIZE = 64 << 10
HOLDOUT = Holdout.for_size(SIZE)  # 256-byte blocks, strata of 16: 16 held out
SIZES = {cfg.name: cfg for cfg in count_family.SIZES}


def filled(online_per_stratum: np.ndarray, paired_per_block: np.ndarray) -> PairedLoss:
    """A PairedLoss as a pass over all SIZE bytes leaves it, from bits per byte."""
    pairing = PairedLoss(HOLDOUT, SIZE)
    for stratum, loss in enumerate(online_per_stratum):
        count = pairing.stratum - 256
        begin = stratum * pairing.stratum
        training = next(p for p in range(begin, begin + pairing.stratum)
                        if not pairing._after_block(p))  # not a block, nor just after one
        pairing.add_training(training, loss * count, count)
    for index, loss in enumerate(paired_per_block):
        pairing.add_paired(index, loss * 256, 256)
    return pairing


def test_where_the_final_model_follows_the_online_code_each_stratum_is_priced_at_its_mean():
    rng = np.random.default_rng(0)
    strata = rng.uniform(1, 3, 16)  # each stratum's training bytes, bits/byte online
    blocks = strata + rng.normal(0.2, 0.1, 16)  # held-out blocks that happen to be harder
    final = blocks - 0.2  # the final model codes each 0.2 bits/byte below the online code
    count = np.full(16, 256)
    bits, slope = filled(strata, blocks).corrected(final * count, count, SIZE)
    whole = (15 * strata + blocks) / 16  # 3,840 training bytes a stratum, and its block
    assert slope == pytest.approx(1.0)
    assert bits[1:] / count[1:] == pytest.approx(whole[1:] - 0.2)
    assert bits[0] == final[0] * count[0]  # no bytes around it were coded: left as it is
    assert (final - (strata - 0.2)).mean() > 0.1  # uncorrected, the draw was off


def test_an_unbalanced_draw_is_corrected_to_the_mean_of_the_whole_stratum():
    # each stratum: 8 blocks of random bytes (8 bits/byte) and 8 of zeros (0), one held out;
    # 4 of the 16 held out are random. Compared with the rest of its stratum alone, a zero
    # block was priced at 8 * 8/15 = 4.27 and a random one at 7 * 8/15 = 3.73 (L = 4.13)
    blocks = np.array([8.0 if k % 4 == 0 else 0.0 for k in range(16)])
    strata = (64.0 - blocks) / 15  # the 15 training blocks' mean
    count = np.full(16, 256)
    bits, slope = filled(strata, blocks).corrected(blocks * count, count, SIZE)
    assert slope == pytest.approx(1.0)
    assert bits[1:] / count[1:] == pytest.approx(np.full(15, 4.0))


def test_nothing_is_corrected_where_the_final_model_does_not_follow_the_online_code():
    rng = np.random.default_rng(1)
    strata = np.full(16, 8.0)
    blocks = strata + rng.normal(0, 1, 16)  # repeats the online code had not seen yet
    final = np.zeros(16)  # and the final model knows them all
    count = np.full(16, 256)
    bits, slope = filled(strata, blocks).corrected(final * count, count, SIZE)
    assert slope == 0.0 and (bits == 0).all()


def test_a_block_far_harder_than_its_stratum_that_stays_as_hard_is_corrected_in_full():
    # stratum 9 is random bytes (8 bits/byte) giving way to text (0) a quarter from its end,
    # and its block fell in the random part; the final model codes it as the online code did.
    # Clipped at three times the other gaps' median, its stratum was priced as wholly random.
    strata = np.r_[np.full(9, 8.0), 6.0, np.zeros(6)]
    blocks = strata.copy()
    blocks[9] = 8.0
    blocks += np.random.default_rng(5).normal(0, 0.01, 16)
    count = np.full(16, 256)
    bits, slope = filled(strata, blocks).corrected(blocks * count, count, SIZE)
    assert slope == pytest.approx(1.0, abs=0.01)
    assert bits[9] / 256 == pytest.approx((15 * 6.0 + blocks[9]) / 16, abs=0.02)


def test_a_block_far_easier_than_a_stratum_like_the_rest_is_corrected_in_full():
    # a stationary source: strata alike, and two held-out blocks that fell on runs of likely
    # symbols, which the final model codes as cheaply as the online code did. Clipped at three
    # times the other gaps' median, they were corrected by half and L came out 0.008 under.
    rng = np.random.default_rng(7)
    strata = 1.17 + rng.normal(0, 0.01, 16)
    blocks = strata + rng.normal(0, 0.02, 16)
    blocks[[4, 13]] -= 0.12
    count = np.full(16, 256)
    bits, slope = filled(strata, blocks).corrected(blocks * count, count, SIZE)
    whole = (15 * strata + blocks) / 16
    assert slope == pytest.approx(1.0)
    assert bits[[4, 13]] / 256 == pytest.approx(whole[[4, 13]])


def test_a_block_is_judged_far_easier_alike_for_h_and_for_s():
    # Block 12 is 0.42 bits/byte easier than its stratum's training bytes, and the final model
    # codes it as the online code did; counted in, its own bytes bring the whole stratum's
    # online code 0.026 nearer, and judged against that it is not far enough from the level the
    # final model codes blocks in to be an easier block: clipped for H. It was corrected in
    # full for S, and S + H moved with that knife edge (real CSV files, 0.015-0.018 bits/byte).
    rng = np.random.default_rng(3)
    strata = 1.75 + rng.normal(0, 0.02, 16)
    blocks = strata + rng.normal(0, 0.06, 16)
    blocks[12] = strata[12] - 0.42
    final = blocks + 0.19  # the final model's level, 1.94, near the strata's online code
    final[12] = blocks[12] + 0.01
    count = np.full(16, 256)
    pairing = filled(strata, blocks)
    whole, slope = pairing.corrected(final * count, count, SIZE)
    training, _ = pairing.corrected(final * count, count, SIZE, whole=False)
    assert slope == pytest.approx(1.0)
    assert whole[12] / 256 < (15 * strata[12] + blocks[12]) / 16 - 0.1  # clipped, not in full
    assert training[12] / 256 < strata[12] - 0.1  # and alike for S


def test_a_block_easier_than_a_stratum_raised_by_learning_stays_clipped():
    # a random pattern repeated every stratum: stratum 1 pays 8 bits/byte to learn the copy of
    # the block held out of the first, and its own block is as free as the rest of it
    strata = np.r_[8.0, 8.0 * 256 / 3840, np.zeros(14)]
    blocks = np.r_[8.0, np.zeros(15)]
    count = np.full(16, 256)
    bits, _ = filled(strata, blocks).corrected(blocks * count, count, SIZE)
    assert bits[1:].sum() == 0.0


def test_a_block_is_corrected_only_once_its_whole_stratum_is_coded():
    strata = np.full(16, 2.0)
    blocks = strata + np.random.default_rng(2).normal(0, 0.3, 16)
    count = np.full(16, 256)
    final = blocks * count  # the final model codes each block as the online code did
    pairing = filled(strata, blocks)
    bits, slope = pairing.corrected(final, count, 6 * pairing.stratum + 10)
    assert slope == pytest.approx(1.0)
    whole = (15 * strata + blocks) / 16  # the stratum's mean, its block counted in
    assert (bits[6:] == final[6:]).all() and bits[1:6] == pytest.approx(whole[1:6] * count[1:6])
    untouched, slope = pairing.corrected(final, count, 4 * pairing.stratum)  # too few pairs
    assert slope == 0.0 and (untouched == final).all()


def test_the_first_strata_block_is_compared_with_the_trend_of_the_online_code():
    # the online code falls as the pass learns, by 0.6 bits/byte each time the bytes seen
    # double, so the first stratum's mean says more of that trend than of its block; and the
    # two training blocks just before the block fell on a burst (1 bit/byte dearer), which the
    # blocks either side of it, as it was compared before, took for the level there
    pairing, position = PairedLoss(HOLDOUT, SIZE), 0
    first = int(pairing.starts[0])
    assert 0 < first < pairing.stratum

    def online(position: float) -> float:
        return 10.0 - 0.6 * np.log2(position)

    def training(position: float) -> float:
        return online(position) + (first - 512 <= position < first)
    harder = np.r_[0.25, np.random.default_rng(4).normal(0, 0.2, 15)]  # block 0: harder
    while position < SIZE:
        held = pairing.held_out_at(position)
        if held is not None:
            centre = int(pairing.starts[held]) + 128
            pairing.add_paired(held, (online(centre) + harder[held]) * 256, 256)
        end = pairing.next_stop(position)
        start = position + 256 if held is not None else position  # the block is not training
        if end > start:
            pairing.add_training(position, training((start + end) / 2) * (end - start),
                                 end - start)
        position = end
    count = np.full(16, 256)
    final = (np.array([online(s + 128) for s in pairing.starts]) + harder - 0.3) * count
    bits, slope = pairing.corrected(final, count, SIZE)
    assert slope == pytest.approx(1.0)
    assert bits[0] / 256 == pytest.approx(online(first + 128) - 0.3, abs=0.1)  # before: 0.5 over
    stratum_mean = pairing.training[0, 0] / pairing.training[0, 1]
    assert stratum_mean - online(first + 128) > 0.3  # the whole stratum: learning, not the block
    before = pairing.corrected(final, count, pairing.stratum - 1)[0]  # its stratum not yet coded
    assert before[0] == final[0]


def test_the_bursts_of_a_nearly_deterministic_chain_are_corrected_in_full():
    # an order-3 chain over 2 symbols (Dirichlet(0.3) rows, 256 KiB, `blend-order4`): its rare
    # symbols come in bursts, and held-out blocks of 1 KiB that fell on one cost 3-10 times
    # their strata (bits/byte, online), where the final model codes each as the online code did.
    # Clipped at three times the median gap, they left H 84% above the sample's oracle.
    strata = np.array([0.0231, 0.0114, 0.0183, 0.0388, 0.0110, 0.0122, 0.0259, 0.0102, 0.0189,
                       0.0118, 0.0045, 0.0143, 0.0134, 0.0210, 0.0234, 0.0229])
    blocks = np.array([0.0152, 0.0003, 0.0004, 0.1751, 0.0005, 0.0005, 0.0004, 0.0697, 0.0851,
                       0.0960, 0.0482, 0.0003, 0.1546, 0.0003, 0.2219, 0.0004])
    count = np.full(16, 256)
    bits, slope = filled(strata, blocks).corrected(blocks * count, count, SIZE)
    assert slope == pytest.approx(1.0)
    whole = (15 * strata + blocks) / 16
    assert bits[1:] / 256 == pytest.approx(whole[1:], abs=1e-4)


def test_the_bytes_just_after_a_held_out_block_count_in_no_stratum():
    # the pass skips a held-out block unread, so the contexts of the bytes after it are cut:
    # counted in, they made every stratum dearer than its block and pushed L up
    pairing = PairedLoss(HOLDOUT, SIZE)
    start = int(pairing.starts[3])
    stratum = start // pairing.stratum
    after = start + 256 + RECOVERY
    assert pairing.next_stop(start) == min(after, (stratum + 1) * pairing.stratum)
    # wherever the pass was cut (a progress tick, a budget), the bytes up to `after` count nowhere
    assert pairing.next_stop(start + 300) == min(after, (stratum + 1) * pairing.stratum)
    pairing.add_training(start, 300.0, RECOVERY)  # the stretch over the block and just after
    pairing.add_training(start + 300, 9.0, after - start - 300)
    pairing.add_training(after, 50.0, 25)
    assert tuple(pairing.training[stratum]) == (50.0, 25)


@pytest.mark.parametrize("name", ["blend-order4", "cm-order4"])
def test_pairing_a_held_out_block_changes_nothing_the_pass_learns(name):
    data = np.frombuffer(synthetic.MarkovSource(2, 8, seed=3).sample(SIZE, seed=4), np.uint8)
    fitted = SIZES[name].fitted(SIZE)
    alone, paired = fitted.model(), fitted.model()
    bits_alone, _ = alone.code(data, 0, SIZE, HOLDOUT)
    pairing, bits_paired, position = PairedLoss(HOLDOUT, SIZE), 0.0, 0
    while position < SIZE:
        held = pairing.held_out_at(position)
        if held is not None:
            block_bits, block_bytes = paired.code_held_out(data, position, HOLDOUT)
            assert block_bytes == 256 and 256 < block_bits < 8 * 256
        end = pairing.next_stop(position)
        bits_paired += paired.code(data, position, end, HOLDOUT)[0]
        position = end
    assert bits_paired == pytest.approx(bits_alone, abs=1e-6)
    arrays = [name for name, value in vars(alone).items() if isinstance(value, np.ndarray)]
    assert len(arrays) >= 5
    assert all(np.array_equal(getattr(alone, name), getattr(paired, name)) for name in arrays)
    # all it leaves is where each held-out block's repeat stood as the pass reached it
    alone.repeats_at = getattr(paired, "repeats_at", {})
    assert (alone.evaluate(data, SIZE, HOLDOUT)[0] == paired.evaluate(data, SIZE, HOLDOUT)[0]).all()


@pytest.mark.parametrize("name", ["blend-order4", "cm-order4"])
def test_a_paired_block_costs_what_the_online_pass_pays_for_it_as_a_training_block(name):
    data = np.frombuffer(synthetic.MarkovSource(1, 16, seed=5).sample(SIZE, seed=6), np.uint8)
    begin = int(HOLDOUT.block_starts(SIZE)[5])
    model = SIZES[name].fitted(SIZE).model()
    model.code(data, 0, begin, HOLDOUT)
    paired, count = model.code_held_out(data, begin, HOLDOUT)
    # the pass's own kernel, told that this block is the one it may learn from
    as_training = HOLDOUT.view(begin + 256, begin, LEARNING)
    if name.startswith("blend"):
        online, _ = blending._code(data, begin, begin + 256, as_training, True, *model._args(),
                                   np.zeros(1), False, *model._saves(1))
    else:
        online, _, _ = context_mixing._code(
            data, begin, begin + 256, as_training, True, *model._kernel_args(), model.state,
            model.stretch, model.rates, np.zeros(1), False, np.zeros(1, dtype=np.int64),
            np.zeros(1), 0)
    assert count == 256 and paired == pytest.approx(online, rel=1e-12)


def test_a_lone_gap_far_beyond_the_others_is_learning_and_barely_moves_the_loss():
    # a random pattern's second period: online, it pays for the held-out block of the first,
    # which it never learned; its own held-out block it codes for free, as the final model does
    strata = np.r_[8.0, 0.54, np.full(14, 0.0)]
    blocks = np.r_[8.0, np.zeros(15)] + np.random.default_rng(3).normal(0, 0.001, 16)
    count = np.full(16, 256)
    bits, _ = filled(strata, blocks).corrected(np.zeros(16), count, SIZE)
    assert bits.sum() / count.sum() < 0.001  # uncapped: 0.034


@pytest.mark.slow
@pytest.mark.parametrize("name, data", [
    ("python", panel.python_source(128 << 10)),
    ("chain", synthetic.MarkovSource(2, 16, 0.3, seed=5).sample(64 << 10, seed=1))])
def test_every_rotation_of_the_slice_finds_the_corrected_loss_nearer_the_truth(name, data):
    # Between them the 16 rotations hold out every block once: what their final models code
    # all the blocks in is the loss one slice estimates. Corrected, each slice's L lies 2.3-3x
    # nearer it (blend-order4: 0.050 against 0.146 bits/byte on the text, 0.0097 against 0.0227
    # on the chain), and the standard error a run reports is about that error.
    runs, truth = count_family.every_rotation(SIZES["blend-order4"],
                                              np.frombuffer(data, dtype=np.uint8))
    uncorrected, corrected = (np.array([r[key] for r in runs]) - truth
                              for key in ("uncorrected", "corrected"))
    rms = np.sqrt((corrected ** 2).mean())
    assert rms < 0.5 * np.sqrt((uncorrected ** 2).mean())
    assert abs(corrected.mean()) < 0.3 * rms + 0.002
    assert 0.6 * rms < np.mean([r["stderr"] for r in runs]) < 2 * rms
