"""Frozen-feature probing: image features of an encoder, k-NN scores, and the NN monitor that
pre-training runs and every evaluation shares."""
