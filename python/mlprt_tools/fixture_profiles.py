"""The build profile a zoo fixture is run with (tests/fixtures and bench/run_fixtures.py)."""


def profile_flags(model, entry):
    """mlprt build flags for `entry`'s run shapes: dynamic dims (dim_param) get min 1, opt =
    the run size, max = twice it; [] for a static model."""
    flags = {"--minShapes": [], "--optShapes": [], "--maxShapes": []}
    dynamic = False
    declared = {i.name: i for i in model.graph.input}
    for inp in entry["inputs"]:
        dims = declared[inp["name"]].type.tensor_type.shape.dim
        lo, hi = [], []
        for d, size in zip(dims, inp["shape"]):
            is_dyn = not d.HasField("dim_value")
            dynamic |= is_dyn
            lo.append(1 if is_dyn else size)
            hi.append(2 * size if is_dyn else size)
        for flag, shape in (("--minShapes", lo), ("--optShapes", inp["shape"]),
                            ("--maxShapes", hi)):
            flags[flag].append(f"{inp['name']}:{'x'.join(map(str, shape))}")
    return [f"{k}={','.join(v)}" for k, v in flags.items()] if dynamic else []
