"""The estimators a job may choose: one table, one row per (task, name).

A row says everything the rest of the package needs: the scikit-learn class (imported only
when a model is built, so job specs and DAG files stay cheap to load), its fixed settings,
whether numbers are scaled first, the types its fitted form holds that model files must be
allowed to load, and how the model card describes it. Adding an estimator is adding a row.
"""

from dataclasses import dataclass, field
from importlib import import_module

from pipeline.errors import SpecError

# Types in every fitted pipeline that skops does not trust by default.
COMMON_TRUSTED_TYPES = ("numpy.dtype",)


@dataclass(frozen=True)
class Estimator:
    task: str
    name: str
    cls: str  # "module:Class"
    settings: dict = field(default_factory=dict)  # fixed keyword arguments besides the seed
    scale: bool = False  # standardise numeric features first (linear models)
    trusted_types: tuple[str, ...] = ()
    card: str = ""

    def build(self, seed: int, params: dict, job: str):
        """The estimator with its settings, seed and the spec's params (checked by name)."""
        module, _, name = self.cls.partition(":")
        estimator = getattr(import_module(module), name)(random_state=seed, **self.settings)
        valid = estimator.get_params()
        for key in params:
            if key not in valid:
                raise SpecError(
                    f"job {job}: model.params.{key}: not a parameter of "
                    f"{name} (valid: {', '.join(sorted(valid))})"
                )
        return estimator.set_params(**params)


HGB_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)
TREE_TYPES = ("sklearn.tree._tree.Tree",)
HGB_CARD = "gradient-boosted trees on histogram bins (handles missing values natively)"
FOREST_CARD = "a random forest of 200 trees"
# Forests run single-threaded: with n_jobs=-1 scikit-learn sums the trees' predictions in
# whatever order its threads finish, and the last bits of a score change from call to call.

ESTIMATORS: dict[tuple[str, str], Estimator] = {
    (e.task, e.name): e
    for e in (
        Estimator(
            "classification",
            "hist_gradient_boosting",
            "sklearn.ensemble:HistGradientBoostingClassifier",
            trusted_types=HGB_TYPES,
            card=HGB_CARD,
        ),
        Estimator(
            "classification",
            "logistic_regression",
            "sklearn.linear_model:LogisticRegression",
            settings={"max_iter": 1000},
            scale=True,
            card="a logistic regression on standardised numbers and one-hot categories",
        ),
        Estimator(
            "classification",
            "random_forest",
            "sklearn.ensemble:RandomForestClassifier",
            settings={"n_estimators": 200},
            trusted_types=TREE_TYPES,
            card=FOREST_CARD,
        ),
        Estimator(
            "regression",
            "hist_gradient_boosting",
            "sklearn.ensemble:HistGradientBoostingRegressor",
            trusted_types=HGB_TYPES,
            card=HGB_CARD,
        ),
        Estimator(
            "regression",
            "ridge",
            "sklearn.linear_model:Ridge",
            scale=True,
            card="a ridge regression on standardised numbers and one-hot categories",
        ),
        Estimator(
            "regression",
            "random_forest",
            "sklearn.ensemble:RandomForestRegressor",
            settings={"n_estimators": 200},
            trusted_types=TREE_TYPES,
            card=FOREST_CARD,
        ),
    )
}


def names(task: str) -> list[str]:
    """The estimator names a job of `task` may choose, in table order."""
    return [name for (t, name) in ESTIMATORS if t == task]


def trusted_types() -> list[str]:
    """Every type a model file of any estimator may hold beyond skops' defaults."""
    types = {*COMMON_TRUSTED_TYPES}
    for estimator in ESTIMATORS.values():
        types.update(estimator.trusted_types)
    return sorted(types)
