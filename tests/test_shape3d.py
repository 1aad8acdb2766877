import numpy as np

from evpcli.face.parts import mouth_aspect_ratio
from evpcli.face.shape3d import ShapeModel, default_shape_model, learn_bases


def test_default_model_bases_mean_what_their_names_say():
    m = default_shape_model()
    assert m.mean.shape == (68, 3) and m.identity_basis.shape[1:] == (68, 3) and m.expression_basis.shape[1:] == (68, 3)
    assert len(m.expression_names) == m.n_expression and len(m.identity_names) == m.n_identity
    e = dict(zip(m.expression_names, np.eye(m.n_expression), strict=True))
    frontal = lambda s: s[:, :2]  # noqa: E731
    open_ = m.shape(expression=2 * e["jaw_open"])
    assert mouth_aspect_ratio(frontal(open_)) > 2 * mouth_aspect_ratio(frontal(m.mean))
    assert open_[8, 1] > m.mean[8, 1] + 10  # chin drops (y down), mm
    assert np.allclose(open_[17:48], m.mean[17:48])  # brows, nose bridge and eyes stay
    raised = m.shape(expression=e["brow_raise"])
    assert (raised[17:27, 1] < m.mean[17:27, 1]).all()
    wide = m.shape(expression=e["lip_stretch"])
    assert np.linalg.norm(wide[54] - wide[48]) > np.linalg.norm(m.mean[54] - m.mean[48]) + 5
    closed = m.shape(expression=e["eye_close"])
    assert closed[37, 1] - closed[41, 1] > m.mean[37, 1] - m.mean[41, 1]  # upper lid comes down
    # one unit of every basis is a few mm: the fitting's unit priors assume it
    for basis in np.concatenate([m.identity_basis, m.expression_basis]):
        assert 0.5 < np.sqrt((basis ** 2).sum(-1).mean()) < 8


def test_shape_model_save_load_roundtrip(tmp_path):
    m = default_shape_model()
    path = m.save(tmp_path / "m.npz")
    back = ShapeModel.load(path)
    assert back.expression_names == m.expression_names and back.source == m.source
    np.testing.assert_array_equal(back.expression_basis, m.expression_basis)
    coef = np.linspace(-1, 1, m.n_expression)
    np.testing.assert_allclose(back.shape(np.ones(m.n_identity), coef), m.shape(np.ones(m.n_identity), coef))


def test_learn_bases_recovers_the_directions_in_the_data():
    rng = np.random.default_rng(0)
    m = default_shape_model()
    true_expr = m.expression_basis[[0, 6]]  # jaw open, brow raise
    true_id = m.identity_basis[[0, 3]]  # face width, eye spacing
    actors = np.repeat(np.arange(6), 200)
    ident = rng.normal(0, 1, (6, 2))[actors]
    expr = rng.normal(0, 1, (len(actors), 2))
    shapes = (m.mean + np.tensordot(ident, true_id, axes=(1, 0)) + np.tensordot(expr, true_expr, axes=(1, 0))
              + rng.normal(0, 0.05, (len(actors), 68, 3)))
    learned = learn_bases(shapes, actors.astype(str), m.mean, n_identity=2, n_expression=2)
    # shapes are compared up to translation, so the learned directions are the centred true ones
    true_expr = true_expr - true_expr.mean(axis=1, keepdims=True)
    true_id = true_id - true_id.mean(axis=1, keepdims=True)

    def subspace_cos(a, b):  # cosines of the principal angles between span(a) and span(b)
        qa, _ = np.linalg.qr(a.reshape(len(a), -1).T)
        qb, _ = np.linalg.qr(b.reshape(len(b), -1).T)
        return np.linalg.svd(qa.T @ qb, compute_uv=False)

    assert subspace_cos(learned.expression_basis, true_expr).min() > 0.99
    assert subspace_cos(learned.identity_basis, true_id).min() > 0.9  # only 6 actors
    # components are scaled to one standard deviation of the data
    norms = np.linalg.norm(learned.expression_basis.reshape(2, -1), axis=1)
    assert np.allclose(sorted(norms), sorted(np.linalg.norm(true_expr.reshape(2, -1), axis=1)), rtol=0.15)
