"""misrank.py: the pair shares by length quartile add up to 1 - AUC and land in the right bins."""

import unittest

import numpy as np

from misrank import misranked_by_quartile, quartile_bins
from train import roc_auc


class MisrankTest(unittest.TestCase):
    def test_shares_sum_to_one_minus_auc(self) -> None:
        rng = np.random.RandomState(3)
        y = np.array([0] * 40 + [1] * 20)
        score = rng.rand(60) + 0.3 * y  # no ties
        lengths = rng.randint(10, 500, 60)
        q = misranked_by_quartile(y, score, lengths)
        for side in ("scam", "normal"):
            self.assertAlmostEqual(sum(q[side]), 1 - roc_auc(y, score), places=9)

    def test_bins(self) -> None:
        # One scam, the shortest, ranked below every normal: all its wrong pairs fall in the
        # scams' first quartile; the others are ranked above every normal.
        y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
        score = np.array([0.5, 0.5, 0.5, 0.5, 0.1, 0.9, 0.9, 0.9])
        lengths = np.array([100, 200, 300, 400, 10, 20, 30, 40])
        q = misranked_by_quartile(y, score, lengths)
        self.assertEqual(q["scam"], [4 / 16, 0.0, 0.0, 0.0])
        self.assertAlmostEqual(sum(q["normal"]), 4 / 16)
        cuts, bins = quartile_bins(np.array([1, 2, 3, 4]))
        self.assertEqual(list(bins), [0, 1, 2, 3])
        self.assertEqual(len(cuts), 3)


if __name__ == "__main__":
    unittest.main()
