"""The cached-feature logistic-regression probe on hand-made cases."""

import torch

from latentmim.ablate.logreg_probe import logreg_probe_accuracy


def test_probe_separates_a_linearly_separable_set_and_reads_labels_in_order():
    train_x = torch.tensor([[-2.0, 5.0], [-1.0, 5.0], [1.0, 5.0], [2.0, 5.0]])  # class = sign of x0
    train_y = torch.tensor([0, 0, 1, 1])
    val_x = torch.tensor([[-3.0, 5.0], [0.5, 5.0], [3.0, 5.0]])
    assert logreg_probe_accuracy(train_x, train_y, val_x, torch.tensor([0, 1, 1])) == 100.0
    # flipping one validation label costs exactly one of three
    assert abs(logreg_probe_accuracy(train_x, train_y, val_x, torch.tensor([0, 0, 1])) - 200 / 3) < 1e-9


def test_probe_is_at_chance_on_features_unrelated_to_labels():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 8, generator=g)
    y = torch.randint(0, 4, (2000,), generator=g)
    acc = logreg_probe_accuracy(x[:1000], y[:1000], x[1000:], y[1000:])
    assert 18.0 < acc < 32.0  # 4 classes: 25% +- 4.5 standard errors
