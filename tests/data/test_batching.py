"""The bucketing sampler across ranks and across an interruption."""

from __future__ import annotations

import itertools

import numpy as np

from distillab.data.batching import BucketBatchSampler

LENGTHS = np.random.default_rng(0).integers(1, 30, size=203).tolist()


def test_ranks_share_the_global_batches_of_one_process():
    one = BucketBatchSampler(LENGTHS, batch_size=8, shuffle=True, seed=3, bucket_multiplier=4)
    ranks = [
        BucketBatchSampler(
            LENGTHS, 4, shuffle=True, seed=3, bucket_multiplier=4, num_replicas=2, rank=r
        )
        for r in range(2)
    ]
    global_batches = list(one)
    shares = [list(r) for r in ranks]
    assert len(shares[0]) == len(shares[1]) == len(global_batches) == len(ranks[0])
    for whole, a, b in zip(global_batches, *shares, strict=True):
        assert sorted(a + b) == sorted(whole) and a and b


def test_evaluation_examples_are_dealt_out_once():
    ranks = [
        BucketBatchSampler(LENGTHS, 32, shuffle=False, num_replicas=3, rank=r) for r in range(3)
    ]
    seen = [i for r in ranks for batch in r for i in batch]
    assert sorted(seen) == list(range(len(LENGTHS)))
    assert all(len(list(r)) == len(r) > 0 for r in ranks)


def test_resume_at_continues_the_interrupted_pass():
    full = BucketBatchSampler(LENGTHS, 8, shuffle=True, seed=1)
    first_two = [list(full) for _ in range(2)]  # epochs 0 and 1
    resumed = BucketBatchSampler(LENGTHS, 8, shuffle=True, seed=1)
    resumed.resume_at(epoch=1, batches=5)
    assert list(resumed) == first_two[1][5:]
    assert list(itertools.islice(resumed, 1)) == [list(full)[0]]  # then epoch 2 as usual
